import type { ParticipantLeftMessage, RoomMode } from '../protocol/messages.ts';
import { logger } from '../log.ts';

/**
 * What happened on the server, typed, for whoever listens outside the signalling code: tests,
 * metrics (src/metrics/server-events.ts), later webhooks. Each event is emitted exactly once per
 * happening, after the state changed (docs/architecture.md "The server observer"):
 *
 * - `room_created` / `room_closed`: the room's first participant joined / its last one left
 *   (signalling presence, not the media room).
 * - `participant_joined` / `participant_left`: one per presence entry; a drop within the resume
 *   grace period is neither (the participant stays), its expiry is a `participant_left`.
 * - `recording_started` / `recording_stopped`: the room's recording as presence tells it to
 *   clients. A restart after a worker death is a stop of the old id and a start of the new one;
 *   a recording still running when its room closes stops with `reason: 'room_closed'`.
 * - `recording_uploaded`: every object of a finished recording (its files and manifest) is confirmed
 *   in the bucket (`recording.storage` s3, src/recording/uploader.ts); `objects` counts the manifest.
 * - `transcript_ready`: the offline transcription of a stopped recording finished
 *   (src/transcription/; one event per recording, its tracks listed, failed ones counted).
 * - `worker_died`: a media worker thread died (fed by `reportWorkerDeaths`).
 * - `media_reconnect`: a participant was told to reconnect its media (worker died, room failed).
 */
export interface ServerEvents {
  room_created: { roomId: string; mode: RoomMode };
  room_closed: { roomId: string };
  participant_joined: { roomId: string; participantId: string; userId: string; name: string; sessionId: string };
  participant_left: {
    roomId: string;
    participantId: string;
    userId: string;
    sessionId: string;
    reason: ParticipantLeftMessage['reason'];
  };
  recording_started: { roomId: string; recordingId: string; startedBy: string; startedAt: number };
  recording_stopped: {
    roomId: string;
    recordingId: string;
    /** `stopped`: a `record stop`; `lost`: the media plane ended it (its room failed, or a restart failed); `replaced`: a worker death restarted it under a new id; `room_closed`: everyone left. */
    reason: 'stopped' | 'lost' | 'replaced' | 'room_closed';
    /** Participant id of who stopped it (`stopped` only). */
    stoppedBy?: string;
  };
  recording_uploaded: { roomId: string; recordingId: string; objects: number; bytes: number };
  transcript_ready: TranscriptReady;
  worker_died: { threadId: number; message: string };
  media_reconnect: { roomId: string; participantId: string; reason: string };
}

/** One participant track's transcript, written beside its Ogg Opus file in the recording's folder. */
export interface TranscriptTrack {
  participantId: string;
  name: string | null;
  /** The track's audio file and its transcript's files, all in the recording's folder. */
  file: string;
  vtt: string;
  json: string;
  words: number;
}

export interface TranscriptReady {
  roomId: string;
  recordingId: string;
  tracks: TranscriptTrack[];
  /** Tracks whose transcription failed (logged with the reason). */
  failed: number;
}

export type ServerEventName = keyof ServerEvents;
export type ServerEventListener<K extends ServerEventName> = (event: Readonly<ServerEvents[K]>) => void;

const log = logger('observer');

/**
 * One small typed emitter (mediasoup's EnhancedEventEmitter is the model): listeners run in the
 * order they were added, synchronously, and a listener that throws is logged and never breaks the
 * emitter, the other listeners or the signalling code that emitted. Emitting with no listener
 * costs one map lookup, so emitters need not check first.
 */
export class ServerObserver {
  readonly #listeners = new Map<ServerEventName, Array<ServerEventListener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends ServerEventName>(event: K, listener: ServerEventListener<K>): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener as ServerEventListener<never>);
    this.#listeners.set(event, list);
    return () => this.off(event, listener);
  }

  off<K extends ServerEventName>(event: K, listener: ServerEventListener<K>): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    const i = list.indexOf(listener as ServerEventListener<never>);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(event);
  }

  listenerCount(event: ServerEventName): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** For the server's own parts (and `reportWorkerDeaths`); listeners never see a thrown error. */
  emit<K extends ServerEventName>(event: K, payload: ServerEvents[K]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    // A copy: a listener may add or remove listeners while we iterate.
    for (const listener of [...list]) {
      try {
        (listener as ServerEventListener<K>)(payload);
      } catch (err) {
        log.error({ err, event }, 'server observer listener threw');
      }
    }
  }
}

/** What `reportWorkerDeaths` needs of a worker pool (src/rooms/pool.ts RoomPool's `workerdied`). */
export interface WorkerDeathSource {
  on(event: 'workerdied', listener: (threadId: number, error: Error) => void): unknown;
  off(event: 'workerdied', listener: (threadId: number, error: Error) => void): unknown;
}

/**
 * Forwards a pool's worker deaths to the observer as `worker_died` (the pool reports each dead
 * thread once). The composition root wires it (main.ts); returns the unsubscribe.
 */
export function reportWorkerDeaths(observer: ServerObserver, pool: WorkerDeathSource): () => void {
  const listener = (threadId: number, error: Error): void => observer.emit('worker_died', { threadId, message: error.message });
  pool.on('workerdied', listener);
  return () => void pool.off('workerdied', listener);
}
