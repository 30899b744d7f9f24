import { logger } from '../log.ts';
import type { ServerObserver } from './observer.ts';

const log = logger('events');

/**
 * The server's happenings in the log at `info` (`warn` for a dead worker), fed by the server
 * observer (observer.ts) like the metrics are (src/metrics/server-events.ts): rooms created and
 * closed, participants joined and left, recordings started and stopped, worker deaths, media
 * reconnects. Ids and names only, never tokens. startServer subscribes it; returns the unsubscribe.
 */
export function logServerEvents(observer: ServerObserver): () => void {
  const offs = [
    observer.on('room_created', (e) => log.info({ roomId: e.roomId, mode: e.mode }, 'room created')),
    observer.on('room_closed', (e) => log.info({ roomId: e.roomId }, 'room closed')),
    observer.on('participant_joined', (e) =>
      log.info({ roomId: e.roomId, participantId: e.participantId, userId: e.userId, name: e.name, sessionId: e.sessionId }, 'participant joined'),
    ),
    observer.on('participant_left', (e) =>
      log.info({ roomId: e.roomId, participantId: e.participantId, userId: e.userId, sessionId: e.sessionId, reason: e.reason }, 'participant left'),
    ),
    observer.on('recording_started', (e) =>
      log.info({ roomId: e.roomId, recordingId: e.recordingId, startedBy: e.startedBy }, 'recording started'),
    ),
    observer.on('recording_stopped', (e) =>
      log.info({ roomId: e.roomId, recordingId: e.recordingId, reason: e.reason, ...(e.stoppedBy ? { stoppedBy: e.stoppedBy } : {}) }, 'recording stopped'),
    ),
    observer.on('worker_died', (e) => log.warn({ threadId: e.threadId, message: e.message }, 'media worker died')),
    observer.on('media_reconnect', (e) => log.info({ roomId: e.roomId, participantId: e.participantId, reason: e.reason }, 'media reconnect')),
  ];
  return () => {
    for (const off of offs) off();
  };
}
