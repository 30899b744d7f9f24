import type { MessagePort } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import { VoxError, type VoxErrorCode } from '../errors.ts';
import { logger } from '../log.ts';

/**
 * The typed request/reply channel between the main thread and one room task in a worker
 * (mediasoup's `Channel.request()` is the model). Both ends speak the same frames over one
 * MessagePort, encoded with msgpackr so every frame's size is known and checked before it is
 * posted (a runaway SDP or stats blob must fail one request, not stall the worker):
 *
 *   request  [0, id, method, data]     main → worker, answered by exactly one reply
 *   ok       [1, id, result]           worker → main
 *   error    [2, id, code, message]    worker → main, becomes a VoxError with the same code
 *   event    [3, name, data]           either way, unanswered (media for clients, stats)
 *
 * Besides the frames, `ChannelClient.attach` hands the worker what MessagePack cannot carry
 * (SharedArrayBuffers, MessagePorts: a spilled room's links to its other workers) as one
 * structured-clone message `{ voxlinkAttach: name, value }`, in order with the frames.
 *
 * `ChannelClient` is the requesting side (main thread), `ChannelServer` the answering side
 * (worker). Closing either end rejects everything pending on the client with CHANNEL_CLOSED.
 */

/** Request methods: `{ method: { data; result } }` (an interface works: no index signature needed). */
export type RequestMap<R> = { [M in keyof R]: { data: unknown; result: unknown } };
/** Events: `{ name: payload }`. */
export type EventMap = object;

export interface ChannelOptions {
  /** Largest encoded frame either way, bytes. Default 1 MiB: an SDP is a few KiB, stats far less. */
  maxMessageBytes?: number;
  /** Default per-request timeout, ms. Default 5000: a worker that can't answer a join in 5 s is lost anyway. */
  timeoutMs?: number;
  /** Name used in logs and error messages (the room id). */
  name?: string;
}

const FRAME_REQUEST = 0;
const FRAME_OK = 1;
const FRAME_ERROR = 2;
const FRAME_EVENT = 3;

export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 5000;

const log = logger('channel');

// Plain MessagePack (no msgpackr records): both ends are ours, but plain frames are easy to
// inspect and cost nothing extra for messages this small.
const packr = new Packr({ useRecords: false, moreTypes: false });

function encode(frame: unknown[]): Uint8Array<ArrayBuffer> {
  const packed = packr.pack(frame);
  // msgpackr returns a view on its reusable buffer; posting that view would clone the whole
  // buffer, so copy exactly the frame and transfer the copy's ArrayBuffer instead.
  return new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength).slice();
}

function decode(bytes: Uint8Array): unknown[] | null {
  try {
    const frame = packr.unpack(bytes) as unknown;
    return Array.isArray(frame) ? frame : null;
  } catch {
    return null;
  }
}

function errorCode(error: unknown): VoxErrorCode {
  return error instanceof VoxError ? error.code : 'INTERNAL';
}

interface Pending {
  resolve: (value: never) => void;
  reject: (error: VoxError) => void;
  timer: NodeJS.Timeout;
  method: string;
}

type EventListener<E extends EventMap> = <K extends keyof E & string>(name: K, data: E[K]) => void;

/** Main-thread end: numbered requests, a map of pending promises, per-request timeouts. */
export class ChannelClient<R extends RequestMap<R>, E extends EventMap> {
  readonly #port: MessagePort;
  readonly #pending = new Map<number, Pending>();
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #name: string;
  #nextId = 1;
  #closed = false;
  #onEvent: EventListener<E> | null = null;
  #onClose: (() => void) | null = null;

  constructor(port: MessagePort, options: ChannelOptions = {}) {
    this.#port = port;
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#name = options.name ?? 'channel';
    port.on('message', (bytes: Uint8Array) => this.#receive(bytes));
    // The worker side closing (room task ended, or its thread died) ends this channel too.
    port.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** One listener for worker events (the room task wires exactly one consumer). */
  onEvent(listener: EventListener<E>): void {
    this.#onEvent = listener;
  }

  /** Called once when the channel closes, from either end. */
  onClose(listener: () => void): void {
    this.#onClose = listener;
  }

  request<M extends keyof R & string>(
    method: M,
    data: R[M]['data'],
    timeoutMs: number = this.#timeoutMs,
  ): Promise<R[M]['result']> {
    if (this.#closed) {
      return Promise.reject(new VoxError('CHANNEL_CLOSED', `${this.#name}: channel closed, cannot send ${method}`));
    }
    const id = this.#nextId;
    // Ids wrap well before 2^53; a reply is matched only while its request is pending.
    this.#nextId = id >= 0x7fffffff ? 1 : id + 1;
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = encode([FRAME_REQUEST, id, method, data]);
    } catch (error) {
      return Promise.reject(new VoxError('INVALID_ARGUMENT', `${this.#name}: ${method} data not encodable`, { cause: error }));
    }
    if (bytes.byteLength > this.#maxBytes) {
      return Promise.reject(
        new VoxError(
          'CHANNEL_MESSAGE_TOO_LARGE',
          `${this.#name}: ${method} request is ${bytes.byteLength} bytes, limit ${this.#maxBytes}`,
        ),
      );
    }
    return new Promise<R[M]['result']>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.delete(id)) {
          reject(new VoxError('CHANNEL_TIMEOUT', `${this.#name}: ${method} got no reply within ${timeoutMs} ms`));
        }
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (value: never) => void, reject, timer, method });
      this.#port.postMessage(bytes, [bytes.buffer]);
    });
  }

  /**
   * Posts `value` by structured clone (with `transfer`, e.g. MessagePorts) to the worker's
   * `onAttach` listener. False when the channel is closed.
   */
  attach(name: string, value: unknown, transfer: MessagePort[] = []): boolean {
    if (this.#closed) return false;
    this.#port.postMessage({ voxlinkAttach: name, value }, transfer);
    return true;
  }

  /** Idempotent: rejects every pending request with CHANNEL_CLOSED and closes the port. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(new VoxError('CHANNEL_CLOSED', `${this.#name}: channel closed before ${pending.method} was answered`));
    }
    this.#port.close();
    const onClose = this.#onClose;
    this.#onClose = null;
    onClose?.();
  }

  #receive(bytes: Uint8Array): void {
    if (this.#closed) return;
    if (!(bytes instanceof Uint8Array) || bytes.byteLength > this.#maxBytes) {
      log.warn({ channel: this.#name }, 'dropped an oversize or non-binary frame from the worker');
      return;
    }
    const frame = decode(bytes);
    if (frame === null) {
      log.warn({ channel: this.#name }, 'dropped an undecodable frame from the worker');
      return;
    }
    const type = frame[0];
    if (type === FRAME_EVENT) {
      try {
        this.#onEvent?.(frame[1] as keyof E & string, frame[2] as E[keyof E & string]);
      } catch (error) {
        // A consumer bug must not take the channel down with it.
        log.error({ channel: this.#name, err: error }, 'event listener threw');
      }
      return;
    }
    const pending = this.#pending.get(frame[1] as number);
    if (pending === undefined) return; // already timed out
    this.#pending.delete(frame[1] as number);
    clearTimeout(pending.timer);
    if (type === FRAME_OK) pending.resolve(frame[2] as never);
    else pending.reject(new VoxError(frame[2] as VoxErrorCode, String(frame[3])));
  }
}

export type RequestHandler<R extends RequestMap<R>, M extends keyof R> = (
  data: R[M]['data'],
) => R[M]['result'] | Promise<R[M]['result']>;

/** Worker end: dispatches requests to handlers, replies once each, sends events. */
export class ChannelServer<R extends RequestMap<R>, E extends EventMap> {
  readonly #port: MessagePort;
  readonly #handlers = new Map<string, (data: unknown) => unknown>();
  readonly #maxBytes: number;
  readonly #name: string;
  #closed = false;
  #onClose: (() => void) | null = null;
  #onAttach: ((name: string, value: unknown) => void) | null = null;

  constructor(port: MessagePort, options: ChannelOptions = {}) {
    this.#port = port;
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#name = options.name ?? 'channel';
    port.on('message', (bytes: Uint8Array) => void this.#receive(bytes));
    port.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  handle<M extends keyof R & string>(method: M, handler: RequestHandler<R, M>): void {
    this.#handlers.set(method, handler as (data: unknown) => unknown);
  }

  onClose(listener: () => void): void {
    this.#onClose = listener;
  }

  /** One listener for `ChannelClient.attach` messages. */
  onAttach(listener: (name: string, value: unknown) => void): void {
    this.#onAttach = listener;
  }

  /** Returns false when the event was not sent (channel closed, or the event exceeds the size limit). */
  emit<K extends keyof E & string>(name: K, data: E[K]): boolean {
    if (this.#closed) return false;
    const bytes = encode([FRAME_EVENT, name, data]);
    if (bytes.byteLength > this.#maxBytes) {
      log.warn({ channel: this.#name, event: name, bytes: bytes.byteLength }, 'dropped an oversize event');
      return false;
    }
    this.#port.postMessage(bytes, [bytes.buffer]);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.close();
    const onClose = this.#onClose;
    this.#onClose = null;
    onClose?.();
  }

  async #receive(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return;
    if (!(bytes instanceof Uint8Array) && typeof (bytes as { voxlinkAttach?: unknown } | null)?.voxlinkAttach === 'string') {
      const { voxlinkAttach: name, value } = bytes as unknown as { voxlinkAttach: string; value: unknown };
      try {
        this.#onAttach?.(name, value);
      } catch (error) {
        log.error({ channel: this.#name, err: error, attach: name }, 'attach listener threw');
      }
      return;
    }
    const frame = bytes instanceof Uint8Array && bytes.byteLength <= this.#maxBytes ? decode(bytes) : null;
    if (frame === null || frame[0] !== FRAME_REQUEST) {
      log.warn({ channel: this.#name }, 'dropped a malformed frame from the main thread');
      return;
    }
    const id = frame[1] as number;
    const method = frame[2] as string;
    const handler = this.#handlers.get(method);
    let reply: unknown[];
    if (handler === undefined) {
      reply = [FRAME_ERROR, id, 'CHANNEL_UNKNOWN_METHOD', `${this.#name}: no handler for ${method}`];
    } else {
      try {
        reply = [FRAME_OK, id, await handler(frame[3])];
      } catch (error) {
        reply = [FRAME_ERROR, id, errorCode(error), error instanceof Error ? error.message : String(error)];
      }
    }
    if (this.#closed) return;
    let out: Uint8Array<ArrayBuffer>;
    try {
      out = encode(reply);
    } catch (error) {
      out = encode([FRAME_ERROR, id, 'INTERNAL', `${this.#name}: ${method} result not encodable`]);
    }
    if (out.byteLength > this.#maxBytes) {
      out = encode([
        FRAME_ERROR,
        id,
        'CHANNEL_MESSAGE_TOO_LARGE',
        `${this.#name}: ${method} reply is ${out.byteLength} bytes, limit ${this.#maxBytes}`,
      ]);
    }
    this.#port.postMessage(out, [out.buffer]);
  }
}
