import type { MessagePort } from 'node:worker_threads';
import { VoxError, type VoxErrorCode } from '../errors.ts';
import { logger } from '../log.ts';
import type { ChannelClient } from './channel.ts';
import type { MediaRoomEvent, MediaRoomStats } from './media-types.ts';
import type { RoomEvents, RoomRequests, RoomTaskResult } from './room-protocol.ts';

/**
 * The main thread's handle on one long-lived room task: its channel, the piscina task promise,
 * and the thread it runs on. It ends in exactly one of two ways, each reported once:
 * `close()` (graceful: the worker closes the room and the task resolves) or failure → `onDied`:
 * the thread died (the task rejected, or the pool saw the thread exit; a port closed under us
 * waits for that), or the room could not be created in the worker.
 */

export interface RoomTaskHandlers {
  onMedia(event: MediaRoomEvent): void;
  onStats(stats: MediaRoomStats): void;
  onDied(error: VoxError): void;
  /** The thread the task actually landed on (normally the one placement chose). */
  onReady(threadId: number): void;
  /** After a graceful `close()` finished. */
  onClosed?(): void;
}

const log = logger('room-task');

/** How long `close()` waits for the worker to close the room before dropping the channel anyway. */
const CLOSE_TIMEOUT_MS = 5000;
/** How long a port closed under us may wait for its thread's exit before the task counts as dead. */
const ORPHAN_PORT_MS = 2000;

export class RoomTask {
  readonly roomId: string;
  #threadId: number;
  readonly #channel: ChannelClient<RoomRequests, RoomEvents>;
  readonly #handlers: RoomTaskHandlers;
  readonly #task: Promise<unknown>;
  #closing: Promise<void> | null = null;
  #ended = false;
  #failure: VoxError | null = null;
  #resolveEnded!: () => void;
  /** Settles when the task is closed or dead, whichever comes first. */
  readonly ended: Promise<void> = new Promise((resolve) => (this.#resolveEnded = resolve));

  constructor(
    roomId: string,
    threadId: number,
    channel: ChannelClient<RoomRequests, RoomEvents>,
    task: Promise<unknown>,
    handlers: RoomTaskHandlers,
  ) {
    this.roomId = roomId;
    this.#threadId = threadId;
    this.#channel = channel;
    this.#handlers = handlers;
    this.#task = task.then(
      (result) => {
        const error = (result as RoomTaskResult | undefined)?.error;
        this.fail(
          error === undefined
            ? new VoxError('ROOM_WORKER_DIED', `room ${roomId}: task ended without being closed`)
            : new VoxError(error.code as VoxErrorCode, `room ${roomId}: ${error.message}`),
        );
      },
      (cause: unknown) =>
        this.fail(new VoxError('ROOM_WORKER_DIED', `room ${roomId}: worker ${this.#threadId} failed: ${String(cause)}`, { cause })),
    );
    channel.onEvent((name, data) => {
      if (name === 'media') handlers.onMedia(data as MediaRoomEvent);
      else if (name === 'stats') handlers.onStats(data as MediaRoomStats);
      else if (name === 'ready') {
        this.#threadId = (data as RoomEvents['ready']).threadId;
        handlers.onReady(this.#threadId);
      }
    });
    // The port closing while we did not ask for it means the thread is going away. Its exit
    // (or the task's rejection) follows within milliseconds and reports the death: waiting for it
    // keeps a re-placement off the dying thread. The timer only covers a port closed by a thread
    // that lives on.
    channel.onClose(() => {
      if (this.#ended) return;
      setTimeout(
        () => this.fail(new VoxError('ROOM_WORKER_DIED', `room ${roomId}: channel to worker ${this.#threadId} closed`)),
        ORPHAN_PORT_MS,
      ).unref();
    });
  }

  get threadId(): number {
    return this.#threadId;
  }

  /** False once closed or dead; requests then reject with CHANNEL_CLOSED. */
  get alive(): boolean {
    return !this.#ended;
  }

  /**
   * Why the task ended, when it ended by failing rather than by `close()`: ROOM_WORKER_DIED for a
   * thread that died (the room can be re-placed), another code for a room that could not run.
   */
  get failure(): VoxError | null {
    return this.#failure;
  }

  request<M extends keyof RoomRequests & string>(
    method: M,
    data: RoomRequests[M]['data'],
  ): Promise<RoomRequests[M]['result']> {
    return this.#channel.request(method, data);
  }

  /** Hands the worker what MessagePack cannot carry (a spill link's SharedArrayBuffers or port); false once ended. */
  attach(name: string, value: unknown, transfer: MessagePort[] = []): boolean {
    return !this.#ended && this.#channel.attach(name, value, transfer);
  }

  /** Graceful and idempotent: asks the worker to close the room, then waits for the task to end. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    try {
      await this.#channel.request('close', null, CLOSE_TIMEOUT_MS);
    } catch (error) {
      log.warn({ room: this.roomId, err: error }, 'room did not close cleanly');
    }
    this.#channel.close();
    // A wedged thread must not wedge shutdown: the task normally ends right after the close reply.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#task, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    this.#resolveEnded();
    this.#handlers.onClosed?.();
  }

  /** Marks the task dead (idempotent; a no-op after close): rejects pending requests, reports once. */
  fail(error: VoxError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#failure = error;
    this.#channel.close();
    try {
      this.#handlers.onDied(error);
    } catch (listenerError) {
      log.error({ room: this.roomId, err: listenerError }, 'onDied handler threw');
    }
    this.#resolveEnded();
  }
}
