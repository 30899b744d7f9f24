import type { ServerObserver } from '../signalling/observer.ts';
import { counter } from './registry.ts';

/**
 * Counters fed by the server observer (src/signalling/observer.ts), so metrics need no hook inside
 * the signalling code. Counters, not gauges: several servers in one process (tests) add up.
 */
const serverEventMetrics = {
  roomsCreated: counter('voxlink_rooms_created_total', 'Rooms created (first participant joined)'),
  joins: counter('voxlink_participant_joins_total', 'Participants that joined a room'),
  leaves: counter('voxlink_participant_leaves_total', 'Participants that left a room, by reason', ['reason']),
  recordings: counter('voxlink_recording_events_total', 'Recordings started and stopped as rooms were told, by event and reason', [
    'event',
    'reason',
  ]),
  mediaReconnects: counter('voxlink_media_reconnects_total', 'Participants told to reconnect their media, by reason', ['reason']),
};

/** Counts `observer`'s events (call once per observer); returns the unsubscribe. */
export function countServerEvents(observer: ServerObserver): () => void {
  const offs = [
    observer.on('room_created', () => serverEventMetrics.roomsCreated.inc()),
    observer.on('participant_joined', () => serverEventMetrics.joins.inc()),
    observer.on('participant_left', (e) => serverEventMetrics.leaves.inc({ reason: e.reason })),
    observer.on('recording_started', () => serverEventMetrics.recordings.inc({ event: 'started', reason: 'started' })),
    observer.on('recording_stopped', (e) => serverEventMetrics.recordings.inc({ event: 'stopped', reason: e.reason })),
    observer.on('media_reconnect', (e) => serverEventMetrics.mediaReconnects.inc({ reason: e.reason })),
  ];
  return () => {
    for (const off of offs) off();
  };
}
