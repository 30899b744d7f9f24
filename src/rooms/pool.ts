import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { VoxError } from '../errors.ts';
import { createPortClaims, releaseClaimsOf } from '../media/port-allocator.ts';
import { UDP_BATCH_FLAG } from '../media/udp-direct.ts';
import { logger } from '../log.ts';
import { ChannelClient, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_TIMEOUT_MS } from './channel.ts';
import type { MediaRoomOptions } from './media-types.ts';
import { RoomMetrics } from './metrics.ts';
import { pickWorker, type PlacementOptions, type WorkerLoad } from './placement.ts';
import {
  isWorkerLoadReport,
  type WorkerLoadReport,
  type RoomEvents,
  type RoomRequests,
  type RoomTaskArgument,
  type RoomWorkerData,
} from './room-protocol.ts';
import { RoomTask, type RoomTaskHandlers } from './room-task.ts';

/**
 * The media worker pool: piscina 5 threads, each hosting many rooms as long-lived tasks
 * (piscina's message-port pattern: the task gets a MessagePort, transferred with the task, and
 * runs until its room closes). Rooms are placed on the thread with the lowest measured load
 * (placement.ts) via a custom piscina load balancer that honours the chosen thread. A thread
 * that dies is reported once (`workerdied`) and fails every room task it hosted; piscina starts
 * a replacement thread (min = max threads).
 */

export interface RoomPoolOptions {
  /** Worker threads (min = max). Default: `os.availableParallelism()`. */
  workers?: number;
  /** Worker entry point. Default: workers/room.ts of this checkout (dist/workers/room.js in the bundle). */
  filename?: string;
  /** Worker execArgv. Default: `['--import', 'tsx']` for a .ts entry, else inherited. */
  execArgv?: string[];
  /**
   * The threads run with Node's `--test-udp-no-try-send` (added to execArgv): a UDP send queues
   * behind one in flight, and libuv sends the queue with sendmmsg (docs/media.md "Batched sends").
   * Worth it only when many peers share a socket (config `media.udpPort`). Default false.
   */
  udpBatch?: boolean;
  /**
   * Rooms one thread may host (piscina `concurrentTasksPerWorker`). Default 10000: a room task is
   * an idle wait on its port, the real limit is the measured load placement already weighs.
   * Rooms beyond the cap on every thread queue in piscina until one closes.
   */
  maxRoomsPerWorker?: number;
  /** How often threads report load and rooms report stats, ms. Default 1000. */
  statsIntervalMs?: number;
  /** Per-request timeout on room channels, ms. Default 5000. */
  requestTimeoutMs?: number;
  /** Largest channel frame, bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  placement?: PlacementOptions;
  /**
   * The compiled Opus module handed to every room task, so threads instantiate it without
   * compiling (src/codec/wasm.ts `instantiateOpus`). Default null: each thread compiles its own.
   */
  opusModule?: WebAssembly.Module | null;
  /** Metrics sink; default: a RoomMetrics with its own registry. */
  metrics?: RoomMetrics;
  /**
   * How long a thread started to replace a dead one waits before loading the media code, ms
   * (workers/room.ts), so its start does not compete with the dead thread's rooms being re-placed
   * on the surviving threads. Default 3000; 0 starts replacements at once.
   */
  replacementHoldMs?: number;
}

export interface RoomPoolEvents {
  /** Once per thread that exited while the pool was open. Its rooms are failed right after. */
  workerdied: [threadId: number, error: VoxError];
  load: [load: WorkerLoad];
}

const log = logger('room-pool');

// From source (tsx) this file is src/rooms/pool.ts and the entry workers/room.ts; inside the esbuild
// bundle it is part of dist/src/main.js and the entry is the bundled dist/workers/room.js.
const defaultFilename = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../../workers/room.ts' : '../workers/room.js', import.meta.url),
);

interface TaskQueueOptions {
  threadId: number;
}

export class RoomPool extends EventEmitter<RoomPoolEvents> {
  readonly metrics: RoomMetrics;
  readonly #piscina: Piscina<RoomTaskArgument, unknown>;
  readonly #loads = new Map<number, WorkerLoad>();
  readonly #reported = new Set<number>();
  readonly #tasks = new Map<number, Set<RoomTask>>();
  readonly #portClaims = createPortClaims();
  /** RoomWorkerData.replacementHold: until when a newly started thread waits (Date.now ms). */
  readonly #replacementHold = new Float64Array(new SharedArrayBuffer(8));
  readonly #known = new WeakSet<Worker>();
  /** The threads' execArgv (undefined: inherited from this process). */
  readonly execArgv: string[] | undefined;
  readonly #options: Required<Pick<RoomPoolOptions, 'requestTimeoutMs' | 'maxMessageBytes'>> & RoomPoolOptions;
  readonly #opusModule: WebAssembly.Module | null;
  #closing: Promise<void> | null = null;

  constructor(options: RoomPoolOptions = {}) {
    super();
    const workers = options.workers ?? availableParallelism();
    const filename = options.filename ?? defaultFilename;
    this.#options = {
      ...options,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    };
    this.metrics = options.metrics ?? new RoomMetrics();
    this.#opusModule = options.opusModule ?? null;
    const workerData: RoomWorkerData = {
      statsIntervalMs: options.statsIntervalMs ?? 1000,
      portClaims: this.#portClaims,
      replacementHold: this.#replacementHold.buffer as SharedArrayBuffer,
    };
    const maxRooms = options.maxRoomsPerWorker ?? 10_000;
    const base = options.execArgv ?? (filename.endsWith('.ts') ? ['--import', 'tsx'] : undefined);
    // With the flag, a given execArgv replaces the inherited one; nothing else is needed from it for
    // a .js entry (a .ts one has its loader in `base`), and the main thread's process-wide flags
    // would be refused in a worker.
    this.execArgv = options.udpBatch === true ? [...(base ?? []), UDP_BATCH_FLAG] : base;
    this.#piscina = new Piscina<RoomTaskArgument, unknown>({
      filename,
      execArgv: this.execArgv,
      minThreads: workers,
      maxThreads: workers,
      // Room tasks wait on their port, they don't spin: no Atomics.wait loop, never reap threads.
      atomics: 'disabled',
      idleTimeout: Infinity,
      concurrentTasksPerWorker: maxRooms,
      workerData,
      loadBalancer: (task, ready) => {
        const candidates = ready.filter((worker) => worker.currentUsage < maxRooms);
        const wanted = (task[Piscina.queueOptionsSymbol as never] as TaskQueueOptions | null)?.threadId;
        const exact = candidates.find((worker) => worker.id === wanted);
        if (exact !== undefined) return exact;
        // The chosen thread is still starting: wait for it. If it is gone, take the best ready one.
        if (wanted !== undefined && wanted >= 0 && this.#loads.has(wanted)) return null;
        const best = pickWorker(this.#placeable(new Set(candidates.map((worker) => worker.id))), this.#options.placement);
        return candidates.find((worker) => worker.id === best?.threadId) ?? candidates[0] ?? null;
      },
    });
    this.#piscina.on('workerCreate', () => this.#trackThreads());
    this.#piscina.on('message', (message: unknown) => {
      if (isWorkerLoadReport(message)) this.#onLoadReport(message);
    });
    // Without a listener piscina's 'error' (a thread failing with no task to reject) would crash the process.
    this.#piscina.on('error', (error: unknown) => log.error({ err: error }, 'worker thread error'));
    this.#trackThreads();
  }

  /** Live threads. */
  get workerCount(): number {
    return this.#loads.size;
  }

  /** Room tasks open on the main side (neither closed nor dead). */
  get roomCount(): number {
    let count = 0;
    for (const set of this.#tasks.values()) count += set.size;
    return count;
  }

  /** The pool's threads, e.g. for operators' diagnostics (`worker.performance`, heap snapshots). */
  get threads(): readonly Worker[] {
    return this.#piscina.threads;
  }

  /** Latest measured load of every live thread. */
  loads(): WorkerLoad[] {
    return [...this.#loads.values()].map((load) => ({ ...load }));
  }

  /** Resolves once every live thread has reported its load at least once. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#loads.size === 0 || [...this.#loads.keys()].some((id) => !this.#reported.has(id))) {
      if (this.#closing) throw new VoxError('POOL_CLOSED', 'room pool closed');
      if (Date.now() > deadline) throw new VoxError('TIMEOUT', `room pool threads not ready within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Whether a live thread other than those in `exclude` exists (where a spilled room's next shard could go). */
  hasThreadOutside(exclude: ReadonlySet<number>): boolean {
    for (const id of this.#loads.keys()) if (!exclude.has(id)) return true;
    return false;
  }

  /**
   * Starts a room task on the least-loaded thread (not one of `exclude`: the threads already
   * hosting a shard of a spilled room). Failures of the task arrive via `handlers.onDied`.
   */
  openRoom(options: MediaRoomOptions, handlers: RoomTaskHandlers, exclude?: ReadonlySet<number>): RoomTask {
    if (this.#closing) throw new VoxError('POOL_CLOSED', 'room pool closed');
    // No live thread (the only one just died): piscina queues the task for the replacement.
    const among = exclude === undefined ? undefined : new Set([...this.#loads.keys()].filter((id) => !exclude.has(id)));
    const target = pickWorker(this.#placeable(among), this.#options.placement);
    if (target !== null) target.placedSinceReport += 1;
    // Only a thread that is not up could take this room (a replacement held back): lift the hold.
    if (target !== null && !this.#reported.has(target.threadId)) this.#replacementHold[0] = 0;
    const threadId = target?.threadId ?? -1;
    const { port1, port2 } = new MessageChannel();
    const argument: RoomTaskArgument & { [key: symbol]: TaskQueueOptions } = {
      port: port2,
      roomId: options.roomId,
      options,
      opusModule: this.#opusModule,
      maxMessageBytes: this.#options.maxMessageBytes,
      // Read by our loadBalancer on the main thread only; structured clone drops symbol keys.
      [Piscina.queueOptionsSymbol]: { threadId },
    };
    const run = this.#piscina.run(argument, { transferList: [port2] });
    const channel = new ChannelClient<RoomRequests, RoomEvents>(port1, {
      name: options.roomId,
      timeoutMs: this.#options.requestTimeoutMs,
      maxMessageBytes: this.#options.maxMessageBytes,
    });
    const task: RoomTask = new RoomTask(options.roomId, threadId, channel, run, {
      ...handlers,
      onReady: (threadId) => {
        this.#move(task, threadId);
        handlers.onReady(threadId);
      },
      onDied: (error) => {
        this.#tasksOf(task.threadId).delete(task);
        handlers.onDied(error);
      },
      onClosed: () => {
        this.#tasksOf(task.threadId).delete(task);
        handlers.onClosed?.();
      },
    });
    this.#tasksOf(threadId).add(task);
    return task;
  }

  /** Closes every room task gracefully, then the threads. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const tasks = [...this.#tasks.values()].flatMap((set) => [...set]);
      await Promise.allSettled(tasks.map((task) => task.close()));
      this.#tasks.clear();
      await this.#piscina.destroy();
      for (const threadId of this.#loads.keys()) this.metrics.workerGone(threadId, false);
      this.#loads.clear();
    })();
    return this.#closing;
  }

  /**
   * Live threads (optionally only those in `among`) a room may go to: those that have reported
   * their load (they are up), or all of them when none has yet (the pool is starting). A thread
   * still starting (a replacement held back, workers/room.ts) would make the room wait for it.
   */
  #placeable(among?: Set<number>): WorkerLoad[] {
    const live = [...this.#loads.values()].filter((load) => among === undefined || among.has(load.threadId));
    const up = live.filter((load) => this.#reported.has(load.threadId));
    return up.length > 0 ? up : live;
  }

  #tasksOf(threadId: number): Set<RoomTask> {
    let set = this.#tasks.get(threadId);
    if (set === undefined) {
      set = new Set();
      this.#tasks.set(threadId, set);
    }
    return set;
  }

  #move(task: RoomTask, threadId: number): void {
    for (const set of this.#tasks.values()) set.delete(task);
    if (task.alive) this.#tasksOf(threadId).add(task);
  }

  /** Starts watching threads piscina created since the last call (initial ones and replacements). */
  #trackThreads(): void {
    for (const worker of this.#piscina.threads) {
      if (this.#known.has(worker)) continue;
      this.#known.add(worker);
      const threadId = worker.threadId;
      if (threadId < 0) continue; // already exited
      this.#loads.set(threadId, { threadId, rooms: 0, participants: 0, pps: 0, elu: 0, udpSockets: 0, placedSinceReport: 0 });
      // 'error' (uncaught exception) comes before 'exit' and before piscina's task rejections
      // reach us (those are promise reactions): whichever we see first marks the thread dead, so
      // no room is re-placed onto it.
      worker.once('error', (error) => this.#onThreadExit(threadId, `uncaught ${String(error)}`));
      worker.once('exit', (code) => this.#onThreadExit(threadId, `exit code ${code}`));
    }
  }

  #onLoadReport(report: WorkerLoadReport): void {
    const load = this.#loads.get(report.threadId);
    if (load === undefined) return;
    load.rooms = report.rooms;
    load.participants = report.participants;
    load.pps = report.pps;
    load.elu = report.elu;
    load.udpSockets = report.udpSockets;
    if (report.unknownSource !== undefined) load.unknownSource = report.unknownSource;
    if (report.udpBatch !== undefined) load.udpBatch = report.udpBatch;
    load.placedSinceReport = 0;
    this.#reported.add(report.threadId);
    this.metrics.workerLoad(load);
    this.#emitSafely('load', { ...load });
  }

  /** A listener that throws must not break the pool (these run inside piscina's and Node's handlers). */
  #emitSafely<K extends keyof RoomPoolEvents>(event: K, ...args: RoomPoolEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: RoomPoolEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      log.error({ err: error, event }, 'room pool listener threw');
    }
  }

  #onThreadExit(threadId: number, how: string): void {
    if (!this.#loads.delete(threadId)) return;
    this.#reported.delete(threadId);
    if (this.#closing) return;
    // Piscina starts the replacement thread now. While another thread is up to take the dead one's
    // rooms, the replacement waits before loading (workers/room.ts); with none, the rooms wait for
    // the replacement, so it must not.
    const othersUp = [...this.#loads.keys()].some((id) => this.#reported.has(id));
    this.#replacementHold[0] = othersUp ? Date.now() + (this.#options.replacementHoldMs ?? 3000) : 0;
    const error = new VoxError('ROOM_WORKER_DIED', `media worker ${threadId} died: ${how}`);
    const tasks = [...(this.#tasks.get(threadId) ?? [])];
    this.#tasks.delete(threadId);
    log.error({ threadId, how, rooms: tasks.length }, 'media worker died');
    this.metrics.workerGone(threadId, true);
    releaseClaimsOf(this.#portClaims, threadId);
    this.#emitSafely('workerdied', threadId, error);
    for (const task of tasks) task.fail(error);
  }
}
