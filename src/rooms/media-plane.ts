import { getOpusModule } from '../codec/wasm.ts';
import { VoxError, isVoxError } from '../errors.ts';
import { logger } from '../log.ts';
import type { RecordingContinuation } from '../recording/layout.ts';
import type {
  ClientMediaMessage,
  MediaParticipant,
  MediaPlane,
  MediaRoomEvent,
  MediaRoomMode,
  MediaRoomOptions,
  MediaRoomStats,
  MediaSink,
  RecordingState,
  ServerMediaMessage,
} from './media-types.ts';
import { RoomMetrics } from './metrics.ts';
import { RoomPool, type RoomPoolOptions } from './pool.ts';
import type { RoomRequests } from './room-protocol.ts';
import type { RoomTask } from './room-task.ts';
import {
  allShards,
  linkShards,
  MemberNumbers,
  remoteMember,
  shardSummary,
  sumShardStats,
  type Shard,
  type ShardSummary,
  type SpilledRoom,
  type SpillTransport,
} from './room-shards.ts';

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
  /**
   * Peers one worker hosts of one `sfu` room before the room's next participants go to another
   * worker (docs/media.md "Rooms over several workers"). 0: a room stays on one worker.
   */
  roomWorkerCapacity?: number;
  /** How a spilled room's workers pass packets: a SharedArrayBuffer ring (default) or batched postMessage. */
  spillTransport?: SpillTransport;
}

interface Member {
  participant: MediaParticipant;
  muted: boolean;
  /** Set while the member is being re-joined on a re-placed room; its requests wait for it. */
  rejoined: Promise<void> | null;
  /** The worker of the room its peer is on (null only while it is being placed). */
  shard: Shard | null;
}

interface RoomState extends SpilledRoom {
  readonly roomId: string;
  /** Fixed when the room opens (the first joiner's `roomMode`, else the configured mode); kept across re-placements. */
  readonly mode: MediaRoomMode;
  readonly members: Map<string, Member>;
  /** Set while the room is being re-placed (all re-joins). */
  recovering: Promise<void> | null;
  recoveries: number[];
  /** Who started the running recording; a re-placed room starts a new one in its new worker. */
  recordingBy: string | null;
  /** The running recording: its id and its place in a chain of continued recordings. */
  recording: { id: string; first: string; part: number } | null;
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
  /** With udpPort: batched sends on the worker threads (docs/media.md "Batched sends"; default false). */
  udpBatch?: boolean;
  /** Peers per worker of one `sfu` room before it spills onto another worker (0: never; docs/media.md "Rooms over several workers"). */
  roomWorkerCapacity?: number;
  /** Spill link transport: `ring` (SharedArrayBuffer, default) or `batch` (postMessage). */
  spillTransport?: SpillTransport;
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
      udpBatch: media.udpPort !== undefined && media.udpBatch === true,
      ...(media.roomLabels === false ? { metrics: new RoomMetrics(undefined, { roomLabels: false }) } : {}),
    },
    maxRecoveries: media.maxRecoveries,
    ...(media.roomWorkerCapacity === undefined ? {} : { roomWorkerCapacity: media.roomWorkerCapacity }),
    ...(media.spillTransport === undefined ? {} : { spillTransport: media.spillTransport }),
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
    if (state.members.has(p.participantId)) {
      throw new VoxError('MEDIA_ALREADY_JOINED', `${p.participantId} is already in media room ${p.roomId}`);
    }
    const participant: MediaParticipant = { ...p, grants: { ...p.grants }, memberNumber: state.numbers.take() };
    const member: Member = { participant, muted: false, rejoined: null, shard: null };
    state.members.set(p.participantId, member);
    try {
      this.#assign(state, member);
      await this.#request(state, member, 'join', { participant, muted: false, rejoin: false });
    } catch (error) {
      // Its worker died mid-join: the recovery re-joins every member of that worker, this one included.
      if (isVoxError(error, 'ROOM_WORKER_DIED') && state.members.get(p.participantId) === member && !this.#closing) {
        await state.recovering;
        await member.rejoined;
        return;
      }
      if (state.members.get(p.participantId) === member) {
        this.#forget(state, member);
        if (state.members.size === 0) await this.#closeRoom(state);
      }
      throw error;
    }
  }

  async leave(roomId: string, participantId: string): Promise<void> {
    const state = this.#rooms.get(roomId);
    const member = state?.members.get(participantId);
    if (state === undefined || member === undefined) return;
    const shard = member.shard;
    this.#forget(state, member);
    if (state.members.size === 0) {
      await this.#closeRoom(state);
      return;
    }
    if (shard === null || (shard.id !== 0 && !state.spills.has(shard.id))) return;
    try {
      await this.#request(state, member, 'leave', { participantId }, shard);
    } catch (error) {
      // A dead worker took the peer with it and the recovery skips members who left.
      if (!isVoxError(error, 'ROOM_WORKER_DIED') && !isVoxError(error, 'CHANNEL_CLOSED')) throw error;
    }
  }

  async signal(roomId: string, participantId: string, message: ClientMediaMessage): Promise<void> {
    const [state, member] = this.#member(roomId, participantId);
    await this.#request(state, member, 'signal', { participantId, message });
  }

  async setMuted(roomId: string, participantId: string, muted: boolean): Promise<void> {
    const [state, member] = this.#member(roomId, participantId);
    member.muted = muted;
    this.#tellShards(state, member.shard, { add: [remoteMember(member.participant, muted)], remove: [] });
    await this.#request(state, member, 'setMuted', { participantId, muted });
  }

  async record(roomId: string, participantId: string, action: 'start' | 'stop', continues?: RecordingContinuation): Promise<RecordingState | null> {
    const [state, member] = this.#member(roomId, participantId);
    // A stop is a stop even if its request fails (e.g. the worker died): recovery must not restart it.
    if (action === 'stop') {
      state.recordingBy = null;
      state.recording = null;
    }
    // The recorder stays home: it hears the room's other workers through their links.
    const data = continues === undefined ? { action, participantId } : { action, participantId, continues };
    const result = await this.#request(state, member, 'record', data, state.home);
    if (action === 'start' && result !== null) this.#recordingStarted(state, result);
    return result;
  }

  #recordingStarted(state: RoomState, result: RecordingState): void {
    state.recordingBy = result.startedBy;
    const chain = result.continues;
    state.recording = { id: result.id, first: chain?.first ?? result.id, part: chain?.part ?? 0 };
  }

  stats(): { workers: number; rooms: number } {
    return { workers: this.pool.workerCount, rooms: this.#rooms.size };
  }

  /** Where a room's home currently runs (thread id), for diagnostics and tests; undefined when not open. */
  workerOf(roomId: string): number | undefined {
    return this.#rooms.get(roomId)?.home.task.threadId;
  }

  /**
   * Chaos testing only: the thread hosting the room's home throws an uncaught error and dies, as a
   * bug would (RoomRequests `crash`; refused unless the process runs with VOXLINK_CHAOS=1). Resolves
   * once the request is answered; the death and the recovery follow.
   */
  async crashWorkerOf(roomId: string): Promise<void> {
    const state = this.#rooms.get(roomId);
    if (state === undefined) throw new VoxError('INVALID_ARGUMENT', `no media room ${roomId}`);
    await state.home.task.request('crash', null);
  }

  /** Every worker a room uses (home first) and how many participants each hosts; empty when not open. */
  shardsOf(roomId: string): ShardSummary[] {
    const state = this.#rooms.get(roomId);
    return state === undefined ? [] : shardSummary(state);
  }

  /** A room's stats now, asked of every worker it uses: the sum, and each shard's own (home first). Null when not open. */
  async roomStats(roomId: string): Promise<{ total: MediaRoomStats; shards: (ShardSummary & { stats: MediaRoomStats })[] } | null> {
    const state = this.#rooms.get(roomId);
    if (state === undefined) return null;
    const shards = allShards(state);
    const stats = await Promise.all(shards.map((s) => s.task.request('stats', null)));
    shards.forEach((s, i) => (s.stats = stats[i]!));
    const summary = shardSummary(state);
    return { total: sumShardStats(shards)!, shards: summary.map((s, i) => ({ ...s, stats: stats[i]! })) };
  }

  /** The thread a participant's peer is on. */
  workerOfParticipant(roomId: string, participantId: string): number | undefined {
    return this.#rooms.get(roomId)?.members.get(participantId)?.shard?.task.threadId;
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

  /** Whether rooms spread over workers: with a capacity set (any mode; a mixing room mixes on each of its workers). */
  #spreads(): boolean {
    return (this.#options.roomWorkerCapacity ?? 0) > 0;
  }

  #openRoom(roomId: string, mode: MediaRoomMode): RoomState {
    const state: RoomState = {
      roomId,
      mode,
      home: { id: 0, task: null as unknown as RoomTask, members: new Set(), stats: null },
      spills: new Map(),
      nextShard: 1,
      numbers: new MemberNumbers(),
      members: new Map(),
      recovering: null,
      recoveries: [],
      recordingBy: null,
      recording: null,
    };
    state.home.task = this.#startTask(state, state.home);
    this.#rooms.set(roomId, state);
    return state;
  }

  #startTask(state: RoomState, shard: Shard, exclude?: ReadonlySet<number>): RoomTask {
    const spill = this.#spreads() ? { spill: { shard: shard.id, home: shard.id === 0 } } : {};
    const task: RoomTask = this.pool.openRoom(
      { ...this.#options.room, mode: state.mode, roomId: state.roomId, ...spill },
      {
        onMedia: (event) => this.#deliver(state.roomId, event),
        onStats: (stats) => {
          shard.stats = stats;
          const sum = sumShardStats(allShards(state));
          if (sum !== null) this.pool.metrics.roomStats(state.roomId, sum);
          if (shard.id === 0) this.pool.metrics.roomWorkers(state.roomId, shardSummary(state));
        },
        onReady: () => undefined,
        onDied: (error) => {
          if (shard.task !== task) return;
          if (shard.id !== 0) {
            // A spill shard that died or could not start: its participants go elsewhere.
            if (state.spills.get(shard.id) === shard) void this.#recoverSpill(state, shard, error);
            return;
          }
          if (error.code === 'ROOM_WORKER_DIED') {
            void this.#recover(state, error);
            return;
          }
          // The room itself cannot run (e.g. bad options): re-placing would fail the same way.
          log.error({ room: state.roomId, err: error }, 'media room failed');
          this.#drop(state);
        },
      },
      exclude,
    );
    return task;
  }

  /**
   * Puts a member's peer on a worker of the room: the first shard below capacity, else a new
   * shard on a worker the room does not use yet, else the least full one. The other shards
   * learn it as a remote member.
   */
  #assign(state: RoomState, member: Member): void {
    let shard: Shard = state.home;
    const capacity = this.#options.roomWorkerCapacity ?? 0;
    if (this.#spreads()) {
      const shards = allShards(state);
      const free = shards.find((s) => s.members.size < capacity);
      if (free !== undefined) shard = free;
      else {
        const used = new Set(shards.map((s) => s.task.threadId));
        shard = this.pool.hasThreadOutside(used)
          ? this.#openSpill(state, used)
          : shards.reduce((a, b) => (b.members.size < a.members.size ? b : a));
      }
    }
    member.shard = shard;
    shard.members.add(member.participant.participantId);
    if (this.#spreads()) this.pool.metrics.roomWorkers(state.roomId, shardSummary(state));
    this.#tellShards(state, shard, { add: [remoteMember(member.participant, member.muted)], remove: [] });
  }

  /** A new shard on another worker: it learns every member placed so far, and is linked to every other shard. */
  #openSpill(state: RoomState, exclude: ReadonlySet<number>): Shard {
    const shard: Shard = { id: state.nextShard++, task: null as unknown as RoomTask, members: new Set(), stats: null };
    shard.task = this.#startTask(state, shard, exclude);
    const others = allShards(state);
    state.spills.set(shard.id, shard);
    const add = [...state.members.values()].filter((m) => m.shard !== null).map((m) => remoteMember(m.participant, m.muted));
    this.#requestShard(state, shard, 'remoteMembers', { add, remove: [] });
    for (const other of others) linkShards(other, shard, this.#options.spillTransport ?? 'ring');
    log.info({ room: state.roomId, shard: shard.id, threadId: shard.task.threadId, participants: state.members.size }, 'room spills onto another worker');
    return shard;
  }

  /** The member left the room: off its shard, its number freed, the other shards told; an empty spill shard closes. */
  #forget(state: RoomState, member: Member): void {
    const id = member.participant.participantId;
    state.members.delete(id);
    state.numbers.release(member.participant.memberNumber);
    const shard = member.shard;
    member.shard = null;
    if (shard === null) return;
    shard.members.delete(id);
    this.#tellShards(state, shard, { add: [], remove: [id] });
    if (this.#spreads() && state.members.size > 0) this.pool.metrics.roomWorkers(state.roomId, shardSummary(state));
    if (shard.id !== 0 && shard.members.size === 0 && state.spills.get(shard.id) === shard) this.#closeSpill(state, shard);
  }

  #closeSpill(state: RoomState, shard: Shard): void {
    state.spills.delete(shard.id);
    for (const other of allShards(state)) this.#requestShard(state, other, 'unlinkShard', { shard: shard.id });
    void shard.task.close();
  }

  /** Fire-and-forget to every shard but `except`: a failure there is that shard's death, handled by its recovery. */
  #tellShards(state: RoomState, except: Shard | null, data: RoomRequests['remoteMembers']['data']): void {
    if (!this.#spreads()) return;
    for (const shard of allShards(state)) if (shard !== except) this.#requestShard(state, shard, 'remoteMembers', data);
  }

  #requestShard<M extends 'remoteMembers' | 'unlinkShard'>(state: RoomState, shard: Shard, method: M, data: RoomRequests[M]['data']): void {
    shard.task.request(method, data).catch((error: unknown) => {
      if (!isVoxError(error, 'CHANNEL_CLOSED')) log.warn({ room: state.roomId, shard: shard.id, err: error, method }, 'shard request failed');
    });
  }

  /**
   * Waits until the member is re-joined if its room is being re-placed (only its own re-join:
   * one slow peer does not hold up the others' `ice_restart`), and turns "the channel closed
   * under us" into ROOM_WORKER_DIED once the task's death is confirmed (recovery has started).
   * The request goes to the member's shard, or to `to` (the home, for recording).
   */
  async #request<M extends keyof RoomRequests & string>(
    state: RoomState,
    member: Member,
    method: M,
    data: RoomRequests[M]['data'],
    to?: Shard,
  ): Promise<RoomRequests[M]['result']> {
    if (member.rejoined !== null) await member.rejoined;
    const task = (to ?? member.shard ?? state.home).task;
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
    const shards = allShards(state);
    state.spills.clear();
    await Promise.allSettled(shards.map((s) => s.task.close()));
  }

  /** Counts a re-placement; false when the room used up its re-placements in the window (then it is dropped). */
  #mayRecover(state: RoomState, error: VoxError): boolean {
    const now = Date.now();
    const window = this.#options.recoveryWindowMs ?? 60_000;
    state.recoveries = state.recoveries.filter((at) => now - at < window);
    if (state.recoveries.length >= (this.#options.maxRecoveries ?? 3)) {
      log.error({ room: state.roomId, err: error }, 'media room keeps failing; dropped');
      this.#tell(state, 'room_failed', [...state.members.keys()]);
      this.#drop(state);
      return false;
    }
    state.recoveries.push(now);
    return true;
  }

  /**
   * The room's home task died (its thread exited or the task threw). The whole room moves: its
   * spill shards close, a new home starts on a live thread, every member is placed again (spilling
   * as before) and re-joined there (muted state kept), and each client is told `media_reconnect`:
   * each re-join's offer goes out at once as a restart offer (RoomRequests.join `rejoin`), and the
   * `ice_restart` the SDK sends for the `media_reconnect` queues behind the re-join and is answered
   * by that offer (room-worker.ts), not by a second fresh peer.
   */
  #recover(state: RoomState, error: VoxError): Promise<void> {
    if (this.#closing || this.#rooms.get(state.roomId) !== state) return Promise.resolve();
    if (!this.#mayRecover(state, error)) return Promise.resolve();
    log.warn({ room: state.roomId, err: error, members: state.members.size }, 'media room lost its worker; re-placing');
    this.pool.metrics.roomRestarted(state.roomId);
    this.pool.metrics.roomRecovered();
    for (const spill of state.spills.values()) void spill.task.close();
    state.spills.clear();
    state.home.members.clear();
    state.home.stats = null;
    try {
      state.home.task = this.#startTask(state, state.home);
    } catch (startError) {
      log.error({ room: state.roomId, err: startError }, 'media room re-placement failed');
      this.#recordingLost(state);
      return Promise.resolve();
    }
    const members = [...state.members.values()];
    for (const member of members) member.shard = null;
    for (const member of members) this.#assign(state, member);
    const home = state.home.task;
    const recovery: Promise<void> = this.#rejoin(state, members).then(async () => {
      if (state.recovering === recovery) state.recovering = null;
      // Everyone left while we were re-joining: close what we just opened.
      if (this.#rooms.get(state.roomId) !== state) {
        await home.close();
        return;
      }
      if (state.recordingBy !== null) await this.#resumeRecording(state, home, state.recordingBy);
    });
    // Set before telling clients: a client that reacts to media_reconnect at once (ice_restart)
    // must queue behind its re-join, not reach a room that does not know it yet.
    state.recovering = recovery;
    this.#tell(state, 'worker_died', members.map((m) => m.participant.participantId));
    return recovery;
  }

  /**
   * A spill shard died: the rest of the room runs on. Its participants are placed again (on a
   * shard with room, or a new one) and told `media_reconnect`, like a dead room's.
   */
  #recoverSpill(state: RoomState, shard: Shard, error: VoxError): Promise<void> {
    state.spills.delete(shard.id);
    if (this.#closing || this.#rooms.get(state.roomId) !== state) return Promise.resolve();
    for (const other of allShards(state)) this.#requestShard(state, other, 'unlinkShard', { shard: shard.id });
    const moved = [...shard.members].map((id) => state.members.get(id)).filter((m): m is Member => m !== undefined);
    shard.members.clear();
    if (moved.length === 0) return Promise.resolve();
    if (!this.#mayRecover(state, error)) return Promise.resolve();
    log.warn({ room: state.roomId, shard: shard.id, err: error, members: moved.length }, 'spill worker of a media room died; re-placing its participants');
    this.pool.metrics.roomRecovered();
    for (const member of moved) member.shard = null;
    for (const member of moved) this.#assign(state, member);
    const done = this.#rejoin(state, moved);
    this.#tell(state, 'worker_died', moved.map((m) => m.participant.participantId));
    return done;
  }

  /** Re-joins members on their (new) shards, each request awaited by that member's later requests. */
  #rejoin(state: RoomState, members: readonly Member[]): Promise<void> {
    const rejoins = members.map((member) => {
      const task = member.shard!.task;
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
    return Promise.all(rejoins).then(() => undefined);
  }

  /**
   * The recording died with the worker (its files end at the last flushed second). Start a new one
   * in the room's new task, so the call keeps being recorded, and tell the room either way.
   */
  async #resumeRecording(state: RoomState, task: RoomTask, startedBy: string): Promise<void> {
    let message: ServerMediaMessage;
    try {
      const before = state.recording;
      const continues: RecordingContinuation | undefined =
        before === null ? undefined : { previous: before.id, first: before.first, part: before.part + 1, reason: 'worker_replaced' };
      const result = await task.request('record', { action: 'start', participantId: startedBy, ...(continues === undefined ? {} : { continues }) });
      if (result === null) throw new VoxError('RECORDING_FAILED', 'record start returned nothing');
      this.#recordingStarted(state, result);
      message = { op: 'recording', room: state.roomId, recording: true, id: result.id, by: startedBy, startedAt: result.startedAt };
    } catch (error) {
      log.error({ room: state.roomId, err: error }, 'recording could not be resumed after re-placement');
      state.recordingBy = null;
      state.recording = null;
      message = { op: 'recording', room: state.roomId, recording: false };
    }
    this.#sink?.toRoom(state.roomId, message);
  }

  /** The room's recording ended without a stop (its room failed for good): tell the room. */
  #recordingLost(state: RoomState): void {
    if (state.recordingBy === null) return;
    state.recordingBy = null;
    state.recording = null;
    this.#sink?.toRoom(state.roomId, { op: 'recording', room: state.roomId, recording: false });
  }

  /** Forgets a room whose home task is already gone (its spill shards are closed). */
  #drop(state: RoomState): void {
    this.#recordingLost(state);
    if (this.#rooms.get(state.roomId) === state) this.#rooms.delete(state.roomId);
    for (const spill of state.spills.values()) void spill.task.close();
    state.spills.clear();
    state.members.clear();
    this.pool.metrics.roomClosed(state.roomId);
  }

  #tell(state: RoomState, reason: string, participantIds: readonly string[]): void {
    const sink = this.#sink;
    if (sink === null) return;
    for (const id of participantIds) {
      const message: ServerMediaMessage = { op: 'media_reconnect', room: state.roomId, reason };
      sink.toParticipant(state.roomId, id, message);
    }
  }
}
