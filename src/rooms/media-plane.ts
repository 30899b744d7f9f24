import { getOpusModule } from '../codec/wasm.ts';
import { VoxError, isVoxError } from '../errors.ts';
import { logger } from '../log.ts';
import type {
  ClientMediaMessage,
  MediaParticipant,
  MediaPlane,
  MediaRoomEvent,
  MediaRoomMode,
  MediaRoomOptions,
  MediaSink,
  RecordingState,
  ServerMediaMessage,
} from './media-types.ts';
import { RoomMetrics } from './metrics.ts';
import { RoomPool, type RoomPoolOptions } from './pool.ts';
import type { RoomRequests } from './room-protocol.ts';
import type { RoomTask } from './room-task.ts';

/**
 * The MediaPlane the signalling layer talks to, on the main thread. Each room is one task on a
 * worker thread (pool.ts); join/leave/signal/setMuted are requests on that room's channel, the
 * room's media events go to the MediaSink. The first join opens the room task, the last leave
 * closes it. The plane remembers who is in each room (and muted), because that is what it
 * needs when a worker dies: it re-places the room on a live thread, re-joins everyone there and
 * tells each client `media_reconnect` so the SDK negotiates a fresh peer by itself.
 */

export interface MediaPlaneOptions {
  /** Room settings shared by all rooms (the media section of the config). */
  room: Omit<MediaRoomOptions, 'roomId'>;
  pool?: RoomPoolOptions;
  /**
   * Re-placements allowed per room within `recoveryWindowMs` (default 3 per 60 s). A room whose
   * task keeps dying (a bug that kills every thread it lands on) is dropped instead of taking
   * down every thread in turn; its clients get `media_reconnect` with reason `room_failed`.
   */
  maxRecoveries?: number;
  recoveryWindowMs?: number;
}

interface Member {
  participant: MediaParticipant;
  muted: boolean;
  /** Set while the member is being re-joined on a re-placed room; its requests wait for it. */
  rejoined: Promise<void> | null;
}

interface RoomState {
  readonly roomId: string;
  /** Fixed when the room opens (the first joiner's `roomMode`, else the configured mode); kept across re-placements. */
  readonly mode: MediaRoomMode;
  task: RoomTask;
  readonly members: Map<string, Member>;
  /** Set while the room is being re-placed (all re-joins). */
  recovering: Promise<void> | null;
  recoveries: number[];
  /** Who started the running recording; a re-placed room starts a new one in its new worker. */
  recordingBy: string | null;
}

const log = logger('media-plane');

/**
 * The media config section (src/config.ts `media`) → plane options. The pool knobs are optional
 * there (defaults below); `listenIp` becomes the peers' bind address unless it is 0.0.0.0.
 */
export function mediaPlaneOptionsFromConfig(media: {
  workers: number;
  announcedIp: string;
  listenIp?: string;
  rtcMinPort: number;
  rtcMaxPort: number;
  slots: number;
  mode?: MediaRoomMode;
  /** Worker load report and room stats period, ms (default 1000). */
  statsIntervalMs?: number;
  /** Main↔worker request timeout, ms (default 5000). */
  requestTimeoutMs?: number;
  /** Rooms per worker thread before new rooms queue (default 10000). */
  maxRoomsPerWorker?: number;
  /** Packets per second counted as one fully loaded thread in placement (default 20000). */
  ppsCapacity?: number;
  /** Re-placements per room per minute after worker deaths (default 3). */
  maxRecoveries?: number;
  /** Folder for recordings (config `recording.dir`); unset → rooms refuse `record`. */
  recordingDir?: string;
  /** Config `recording.segmentSeconds` × 1000: recordings roll into segments this long (0/unset: one segment). */
  recordingSegmentMs?: number;
  /** Config `metrics.roomLabels`: false → per-room series carry `room="_all"` (src/rooms/metrics.ts). Default true. */
  roomLabels?: boolean;
  /** Forwarded audio through VoxLink's own SRTP straight onto the socket (docs/media.md "Fast path"; default true). */
  fastSrtp?: boolean;
  /** One UDP port per worker thread, worker k on udpPort + k (docs/media.md "Transport"); unset: a port per peer. */
  udpPort?: number;
  /** RED and audio NACK (config `media.resilience`, docs/audio.md "Resilience"); unset: all on with defaults. */
  resilience?: MediaRoomOptions['resilience'];
  /** Room mixer knobs (`mix`/`hybrid` rooms); unset ones keep RoomMixer's / MixRoomAudio's defaults. */
  mixing?: {
    voiceThresholdDbfs?: number;
    hangoverMs?: number;
    opusProfile?: NonNullable<MediaRoomOptions['mixing']>['opusProfile'];
  };
}): MediaPlaneOptions {
  const mixing = media.mixing;
  return {
    room: {
      slots: media.slots,
      announcedIp: media.announcedIp,
      rtcMinPort: media.rtcMinPort,
      rtcMaxPort: media.rtcMaxPort,
      mode: media.mode ?? 'sfu',
      ...(media.listenIp !== undefined && media.listenIp !== '0.0.0.0' ? { bindIp: media.listenIp } : {}),
      ...(media.recordingDir === undefined ? {} : { recordingDir: media.recordingDir }),
      ...(media.recordingSegmentMs ? { recordingSegmentMs: media.recordingSegmentMs } : {}),
      ...(media.fastSrtp === undefined ? {} : { fastSrtp: media.fastSrtp }),
      ...(media.udpPort === undefined ? {} : { udpPort: { base: media.udpPort, count: media.workers } }),
      ...(media.resilience === undefined ? {} : { resilience: media.resilience }),
      // Plain data only: the room options are cloned to the worker thread.
      ...(mixing === undefined
        ? {}
        : {
            mixing: {
              mixer: { voiceThresholdDbfs: mixing.voiceThresholdDbfs, hangoverMs: mixing.hangoverMs },
              opusProfile: mixing.opusProfile,
            },
          }),
    },
    pool: {
      workers: media.workers,
      statsIntervalMs: media.statsIntervalMs,
      requestTimeoutMs: media.requestTimeoutMs,
      maxRoomsPerWorker: media.maxRoomsPerWorker,
      placement: { ppsCapacity: media.ppsCapacity },
      ...(media.roomLabels === false ? { metrics: new RoomMetrics(undefined, { roomLabels: false }) } : {}),
    },
    maxRecoveries: media.maxRecoveries,
  };
}

/**
 * Starts the worker pool and returns the plane. Compiles opus.wasm once here (unless
 * `pool.opusModule` is given) so worker threads only instantiate it.
 */
export function createMediaPlane(options: MediaPlaneOptions): PooledMediaPlane {
  let opusModule = options.pool?.opusModule;
  if (opusModule === undefined) {
    try {
      opusModule = getOpusModule();
    } catch (error) {
      log.warn({ err: error }, 'opus.wasm not compiled on the main thread; each worker compiles its own');
      opusModule = null;
    }
  }
  return new PooledMediaPlane({ ...options, pool: { ...options.pool, opusModule } });
}

export class PooledMediaPlane implements MediaPlane {
  readonly pool: RoomPool;
  readonly #options: MediaPlaneOptions;
  readonly #rooms = new Map<string, RoomState>();
  #sink: MediaSink | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: MediaPlaneOptions) {
    this.#options = options;
    this.pool = new RoomPool(options.pool);
  }

  attach(sink: MediaSink): void {
    this.#sink = sink;
  }

  async join(p: MediaParticipant): Promise<void> {
    this.#assertOpen();
    const state = this.#rooms.get(p.roomId) ?? this.#openRoom(p.roomId, this.#modeFor(p));
    const member: Member = { participant: { ...p, grants: { ...p.grants } }, muted: false, rejoined: null };
    const previous = state.members.get(p.participantId);
    if (previous === undefined) state.members.set(p.participantId, member);
    try {
      await this.#request(state, member, 'join', { participant: member.participant, muted: false, rejoin: false });
    } catch (error) {
      // Its worker died mid-join: the recovery re-joins every member, this one included.
      if (isVoxError(error, 'ROOM_WORKER_DIED') && state.members.get(p.participantId) === member && !this.#closing) {
        await state.recovering;
        return;
      }
      if (state.members.get(p.participantId) === member) {
        state.members.delete(p.participantId);
        if (state.members.size === 0) await this.#closeRoom(state);
      }
      throw error;
    }
  }

  async leave(roomId: string, participantId: string): Promise<void> {
    const state = this.#rooms.get(roomId);
    const member = state?.members.get(participantId);
    if (state === undefined || member === undefined) return;
    state.members.delete(participantId);
    if (state.members.size === 0) {
      await this.#closeRoom(state);
      return;
    }
    try {
      await this.#request(state, member, 'leave', { participantId });
    } catch (error) {
      // A dead worker took the peer with it and the recovery skips members who left.
      if (!isVoxError(error, 'ROOM_WORKER_DIED')) throw error;
    }
  }

  async signal(roomId: string, participantId: string, message: ClientMediaMessage): Promise<void> {
    const [state, member] = this.#member(roomId, participantId);
    await this.#request(state, member, 'signal', { participantId, message });
  }

  async setMuted(roomId: string, participantId: string, muted: boolean): Promise<void> {
    const [state, member] = this.#member(roomId, participantId);
    member.muted = muted;
    await this.#request(state, member, 'setMuted', { participantId, muted });
  }

  async record(roomId: string, participantId: string, action: 'start' | 'stop'): Promise<RecordingState | null> {
    const [state, member] = this.#member(roomId, participantId);
    // A stop is a stop even if its request fails (e.g. the worker died): recovery must not restart it.
    if (action === 'stop') state.recordingBy = null;
    const result = await this.#request(state, member, 'record', { action, participantId });
    if (action === 'start' && result !== null) state.recordingBy = result.startedBy;
    return result;
  }

  stats(): { workers: number; rooms: number } {
    return { workers: this.pool.workerCount, rooms: this.#rooms.size };
  }

  /** Where a room currently runs (thread id), for diagnostics and tests; undefined when not open. */
  workerOf(roomId: string): number | undefined {
    return this.#rooms.get(roomId)?.task.threadId;
  }

  /** Closes every room (peers, sockets, timers in the workers), then the threads. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const rooms = [...this.#rooms.values()];
      await Promise.allSettled(rooms.map((state) => this.#closeRoom(state)));
      await this.pool.close();
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closing) throw new VoxError('POOL_CLOSED', 'media plane closed');
  }

  #member(roomId: string, participantId: string): [RoomState, Member] {
    this.#assertOpen();
    const state = this.#rooms.get(roomId);
    const member = state?.members.get(participantId);
    if (state === undefined || member === undefined) {
      throw new VoxError('ROOM_NOT_FOUND', `${participantId} is not in media room ${roomId}`);
    }
    return [state, member];
  }

  /** The mode a room opened by `p` runs in. `p2p`/`auto` are signalling's (signalling/p2p.ts), never a media room's: refused. */
  #modeFor(p: MediaParticipant): MediaRoomMode {
    const mode = p.roomMode ?? this.#options.room.mode;
    if (mode === 'p2p' || mode === 'auto') throw new VoxError('MEDIA_UNSUPPORTED', `media room ${p.roomId}: ${mode} is not a media room mode`);
    return mode;
  }

  #openRoom(roomId: string, mode: MediaRoomMode): RoomState {
    const state: RoomState = {
      roomId,
      mode,
      task: null as unknown as RoomTask,
      members: new Map(),
      recovering: null,
      recoveries: [],
      recordingBy: null,
    };
    state.task = this.#startTask(state);
    this.#rooms.set(roomId, state);
    return state;
  }

  #startTask(state: RoomState): RoomTask {
    const task: RoomTask = this.pool.openRoom(
      { ...this.#options.room, mode: state.mode, roomId: state.roomId },
      {
        onMedia: (event) => this.#deliver(state.roomId, event),
        onStats: (stats) => this.pool.metrics.roomStats(state.roomId, stats),
        onReady: () => undefined,
        onDied: (error) => {
          if (state.task !== task) return;
          if (error.code === 'ROOM_WORKER_DIED') {
            void this.#recover(state, error);
            return;
          }
          // The room itself cannot run (e.g. bad options): re-placing would fail the same way.
          log.error({ room: state.roomId, err: error }, 'media room failed');
          this.#drop(state);
        },
      },
    );
    return task;
  }

  /**
   * Waits until the member is re-joined if its room is being re-placed (only its own re-join:
   * one slow peer does not hold up the others' `ice_restart`), and turns "the channel closed
   * under us" into ROOM_WORKER_DIED once the task's death is confirmed (recovery has started).
   */
  async #request<M extends keyof RoomRequests & string>(
    state: RoomState,
    member: Member,
    method: M,
    data: RoomRequests[M]['data'],
  ): Promise<RoomRequests[M]['result']> {
    if (member.rejoined !== null) await member.rejoined;
    const task = state.task;
    try {
      return await task.request(method, data);
    } catch (error) {
      if (isVoxError(error, 'CHANNEL_CLOSED') && !this.#closing) {
        await task.ended;
        const failure = task.failure;
        if (failure !== null) {
          throw failure.code === 'ROOM_WORKER_DIED'
            ? new VoxError('ROOM_WORKER_DIED', `media room ${state.roomId}: its worker died during ${method}`, { cause: error })
            : failure;
        }
      }
      throw error;
    }
  }

  #deliver(roomId: string, event: MediaRoomEvent): void {
    const sink = this.#sink;
    if (sink === null) return;
    if (event.to === 'participant') sink.toParticipant(roomId, event.participantId, event.message);
    else sink.toRoom(roomId, event.message);
  }

  async #closeRoom(state: RoomState): Promise<void> {
    if (this.#rooms.get(state.roomId) === state) this.#rooms.delete(state.roomId);
    state.members.clear();
    this.pool.metrics.roomClosed(state.roomId);
    await state.task.close();
  }

  /**
   * The room's task died (its thread exited or the task threw). Re-place it on a live thread,
   * re-join every member there (muted state kept), and tell each client `media_reconnect`: the
   * SDK answers with `ice_restart` and gets a fresh server peer and a restart offer. The re-joins'
   * own offers are held back in the worker (RoomRequests.join `rejoin`), since the client would
   * answer them with its dead peer; its `ice_restart` queues behind the re-joins.
   */
  #recover(state: RoomState, error: VoxError): Promise<void> {
    if (this.#closing || this.#rooms.get(state.roomId) !== state) return Promise.resolve();
    const now = Date.now();
    const window = this.#options.recoveryWindowMs ?? 60_000;
    state.recoveries = state.recoveries.filter((at) => now - at < window);
    if (state.recoveries.length >= (this.#options.maxRecoveries ?? 3)) {
      log.error({ room: state.roomId, err: error }, 'media room keeps failing; dropped');
      this.#tell(state, 'room_failed');
      this.#drop(state);
      return Promise.resolve();
    }
    state.recoveries.push(now);
    log.warn({ room: state.roomId, err: error, members: state.members.size }, 'media room lost its worker; re-placing');
    this.pool.metrics.roomRestarted(state.roomId);
    this.pool.metrics.roomRecovered();
    let task: RoomTask;
    try {
      task = this.#startTask(state);
    } catch (startError) {
      log.error({ room: state.roomId, err: startError }, 'media room re-placement failed');
      this.#recordingLost(state);
      return Promise.resolve();
    }
    state.task = task;
    const rejoins = [...state.members.values()].map((member) => {
      const rejoined = task.request('join', { participant: member.participant, muted: member.muted, rejoin: true }).then(
        () => undefined,
        (joinError: unknown) => {
          log.error({ room: state.roomId, participant: member.participant.participantId, err: joinError }, 're-join failed');
        },
      );
      member.rejoined = rejoined;
      void rejoined.then(() => {
        if (member.rejoined === rejoined) member.rejoined = null;
      });
      return rejoined;
    });
    const recovery: Promise<void> = Promise.all(rejoins).then(async () => {
      if (state.recovering === recovery) state.recovering = null;
      // Everyone left while we were re-joining: close what we just opened.
      if (this.#rooms.get(state.roomId) !== state) {
        await task.close();
        return;
      }
      if (state.recordingBy !== null) await this.#resumeRecording(state, task, state.recordingBy);
    });
    // Set before telling clients: a client that reacts to media_reconnect at once (ice_restart)
    // must queue behind its re-join, not reach a room that does not know it yet.
    state.recovering = recovery;
    this.#tell(state, 'worker_died');
    return recovery;
  }

  /**
   * The recording died with the worker (its files end at the last flushed second). Start a new one
   * in the room's new task, so the call keeps being recorded, and tell the room either way.
   */
  async #resumeRecording(state: RoomState, task: RoomTask, startedBy: string): Promise<void> {
    let message: ServerMediaMessage;
    try {
      const result = await task.request('record', { action: 'start', participantId: startedBy });
      if (result === null) throw new VoxError('RECORDING_FAILED', 'record start returned nothing');
      message = { op: 'recording', room: state.roomId, recording: true, id: result.id, by: startedBy, startedAt: result.startedAt };
    } catch (error) {
      log.error({ room: state.roomId, err: error }, 'recording could not be resumed after re-placement');
      state.recordingBy = null;
      message = { op: 'recording', room: state.roomId, recording: false };
    }
    this.#sink?.toRoom(state.roomId, message);
  }

  /** The room's recording ended without a stop (its room failed for good): tell the room. */
  #recordingLost(state: RoomState): void {
    if (state.recordingBy === null) return;
    state.recordingBy = null;
    this.#sink?.toRoom(state.roomId, { op: 'recording', room: state.roomId, recording: false });
  }

  /** Forgets a room whose task is already gone. */
  #drop(state: RoomState): void {
    this.#recordingLost(state);
    if (this.#rooms.get(state.roomId) === state) this.#rooms.delete(state.roomId);
    state.members.clear();
    this.pool.metrics.roomClosed(state.roomId);
  }

  #tell(state: RoomState, reason: string): void {
    const sink = this.#sink;
    if (sink === null) return;
    for (const id of state.members.keys()) {
      const message: ServerMediaMessage = { op: 'media_reconnect', room: state.roomId, reason };
      sink.toParticipant(state.roomId, id, message);
    }
  }
}
