import type { MessagePort } from 'node:worker_threads';
import type { WorkerLoad } from './placement.ts';
import type { RecordingContinuation } from '../recording/layout.ts';
import type {
  ClientMediaMessage,
  MediaParticipant,
  MediaRoomEvent,
  MediaRoomOptions,
  MediaRoomStats,
  RecordingState,
  RemoteMember,
} from './media-types.ts';

/**
 * What the main thread and a room task say to each other over their channel (channel.ts), and
 * what every worker thread reports about its own load. Shared by both sides; types only.
 */

export interface RoomRequests {
  /**
   * `rejoin`: the participant is being moved here after its room's worker died. The client was
   * told `media_reconnect`; the offer the join makes goes out at once, marked `restart` (so the
   * client answers with a fresh peer, not its dead one), and the one `ice_restart` the client
   * sends for the `media_reconnect` is answered by that offer, not by a second fresh peer
   * (room-worker.ts).
   */
  join: { data: { participant: MediaParticipant; muted: boolean; rejoin: boolean }; result: null };
  leave: { data: { participantId: string }; result: null };
  signal: { data: { participantId: string; message: ClientMediaMessage }; result: null };
  setMuted: { data: { participantId: string; muted: boolean }; result: null };
  record: { data: { action: 'start' | 'stop'; participantId: string; continues?: RecordingContinuation }; result: RecordingState | null };
  stats: { data: null; result: MediaRoomStats };
  /**
   * A room over several workers (docs/media.md "Rooms over several workers"): participants on the
   * room's other workers, added/updated and removed. The links to those workers arrive as
   * `ChannelClient.attach('link', SpillLinkEnd)` (SharedArrayBuffers or a MessagePort).
   */
  remoteMembers: { data: { add: RemoteMember[]; remove: string[] }; result: null };
  unlinkShard: { data: { shard: number }; result: null };
  /** Ends the task: the worker closes the room (peers, sockets, timers), replies, then resolves the task. */
  close: { data: null; result: null };
  /**
   * Chaos testing only (the soak's worker kills, bench/soak): the thread throws an uncaught error
   * on its next turn, as a bug would, and dies. Refused (`MEDIA_NOT_ALLOWED`) unless the process
   * runs with `VOXLINK_CHAOS=1`; no client op reaches it.
   */
  crash: { data: null; result: null };
}

export interface RoomEvents {
  /** First frame from a task: the thread it actually landed on. */
  ready: { threadId: number };
  media: MediaRoomEvent;
  /** `MediaRoom.stats()`, polled by the worker every `statsIntervalMs`. */
  stats: MediaRoomStats;
}

/** The argument of one long-lived room task (piscina's message-port pattern). */
export interface RoomTaskArgument {
  /** Transferred with the task (transferList); the task lives until this channel closes. */
  port: MessagePort;
  roomId: string;
  options: MediaRoomOptions;
  /** The compiled Opus module, compiled once on the main thread; structured clone shares the code. */
  opusModule: WebAssembly.Module | null;
  maxMessageBytes: number;
}

export interface RoomTaskResult {
  roomId: string;
  threadId: number;
  /** Set when the room could not be created (bad options, no ports): a room failure, not a thread's. */
  error?: { code: string; message: string };
}

/**
 * Posted by every worker thread on its parentPort (piscina re-emits it as the pool's 'message'):
 * the thread's measured load, the same fields placement reads (placement.ts `WorkerLoad`, whose
 * placement-only counter stays on the main thread), tagged so the pool can tell it from other messages.
 */
export type WorkerLoadReport = Omit<WorkerLoad, 'placedSinceReport'> & { voxlinkLoad: 1 };

export function isWorkerLoadReport(value: unknown): value is WorkerLoadReport {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { voxlinkLoad?: unknown }).voxlinkLoad === 1 &&
    typeof (value as { threadId?: unknown }).threadId === 'number'
  );
}

/** Handed to `workerData` of every worker thread. */
export interface RoomWorkerData {
  statsIntervalMs: number;
  /** UDP port claims shared by every media thread (src/media/port-allocator.ts). */
  portClaims?: SharedArrayBuffer;
  /**
   * One Float64: the wall-clock ms (Date.now) until which a newly started thread waits before
   * loading the media code (workers/room.ts). The pool sets it when a thread dies.
   */
  replacementHold?: SharedArrayBuffer;
}
