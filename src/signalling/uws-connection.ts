import type { WebSocket } from 'uWebSockets.js';
import { logger } from '../log.ts';
import { signallingMetrics } from '../metrics/registry.ts';
import { stampSeqInto } from '../protocol/codec.ts';
import type { Connection } from './transport.ts';
import { uwsNative } from './uws.ts';

const log = logger('server');

/**
 * uWS user data: the socket's Connection. The JS fallback has no user data (no upgrade handler),
 * so there `connectionOf` holds it instead.
 */
export interface SocketData {
  conn?: UwsConnection;
  /** Remote address, counted against limits.maxConnectionsPerIp until the close (server.ts). */
  ip?: string;
}
export const connectionOf = new WeakMap<WebSocket<SocketData>, UwsConnection>();

// ------------------------------------------------------------------------------------------------
// Outgoing frames are coalesced per connection and written once per event-loop turn inside
// `ws.cork()` (uWS user manual, "Corking"): uWS corks only the socket whose callback is running, so
// without this a room event costs one write syscall per recipient, and a recipient that gets k
// events in one turn costs k syscalls; corked, it costs one.
//
// Queued frames live in module-level parallel arrays as one linked list per connection (a
// connection holds two indices, no array of its own), so idle connections pay nothing for the queue.
// Sequenced frames are queued as (shared body, seq) and stamped at write time into one reused scratch
// buffer: uWS `send` copies the bytes into its cork or backpressure buffer before returning
// (WebSocket::send formats the frame into the socket's send buffer), so the scratch is free again
// for the next frame.

const queuedFrames: (Uint8Array | undefined)[] = [];
const queuedSeqs: number[] = [];
const queuedNext: number[] = [];
let queuedCount = 0;
/** Connections with queued frames, in the order they got their first one this turn. */
const dirty: UwsConnection[] = [];
let flushScheduled = false;

function flushAll(): void {
  // Writing can run uWS's close handler synchronously (closeOnBackpressureLimit), and the core may
  // queue more frames from there: those land at the end of `dirty` and go out in this same pass.
  // A throw must not stop the pass: `flushScheduled` would stay set and every later send stall.
  for (let i = 0; i < dirty.length; i++) {
    try {
      dirty[i].flush();
    } catch (err) {
      signallingMetrics.internalErrors.inc();
      log.error({ err }, 'flushing queued frames failed');
    }
  }
  dirty.length = 0;
  queuedFrames.fill(undefined, 0, queuedCount);
  queuedCount = 0;
  flushScheduled = false;
}

const INITIAL_SCRATCH = 4096;
let scratch = new Uint8Array(INITIAL_SCRATCH);
/** Views of `scratch` by length, made once: no view object per frame either. */
let scratchViews: (Uint8Array | undefined)[] = [];

/** `body` stamped with `seq`, in the scratch buffer; valid until the next call. */
function stamped(body: Uint8Array, seq: number): Uint8Array {
  const max = body.length + 13; // stampSeq adds at most a 5-byte map header + "seq" key + 9-byte uint64 − 1-byte header
  if (max > scratch.length) {
    let size = scratch.length;
    while (size < max) size *= 2;
    scratch = new Uint8Array(size);
    scratchViews = [];
  }
  const n = stampSeqInto(body, seq, scratch);
  return (scratchViews[n] ??= scratch.subarray(0, n));
}

/** The connection whose uWS callback is running (uWS has corked its socket for us). */
let inCallback: UwsConnection | null = null;
/** server.ts sets it around each uWS open/message callback (no closure per message). */
export function setCallbackConnection(conn: UwsConnection | null): void {
  inCallback = conn;
}
/** The connection being flushed, for `writeQueued` (one shared cork callback, no closure per flush). */
let flushing: UwsConnection | null = null;
function writeQueued(): void {
  (flushing as UwsConnection).writeQueued();
}

/** Connection (transport.ts) on a uWS WebSocket; ignores calls after the socket closed. */
export class UwsConnection implements Connection {
  readonly #ws: WebSocket<SocketData>;
  #open = true;
  /** First and last queued frame (indices into queuedFrames), -1 when none. */
  #head = -1;
  #tail = -1;
  #queuedBytes = 0;
  /** uWS had no backpressure for this socket when last asked, and nothing was written since. */
  #drained = true;

  constructor(ws: WebSocket<SocketData>) {
    this.#ws = ws;
  }

  markClosed(): void {
    this.#open = false;
    this.#head = this.#tail = -1;
    this.#queuedBytes = 0;
  }

  send(bytes: Uint8Array): void {
    this.#enqueue(bytes, 0, bytes.length);
  }

  sendSequenced(body: Uint8Array, seq: number): void {
    this.#enqueue(body, seq, body.length + 9);
  }

  #enqueue(frame: Uint8Array, seq: number, size: number): void {
    if (!this.#open) return;
    if (inCallback === this && this.#head < 0) {
      // Inside this socket's own callback uWS has corked it already, and nothing queued earlier
      // would be overtaken: write now.
      this.#ws.send(seq === 0 ? frame : stamped(frame, seq), true, false);
      this.#drained = false;
      return;
    }
    const i = queuedCount++;
    queuedFrames[i] = frame;
    queuedSeqs[i] = seq;
    queuedNext[i] = -1;
    if (this.#head < 0) {
      this.#head = i;
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    } else {
      queuedNext[this.#tail] = i;
    }
    this.#tail = i;
    this.#queuedBytes += size;
  }

  /** Write every queued frame in one cork (one syscall when the socket takes it all). */
  flush(): void {
    if (!this.#open || this.#head < 0) return;
    flushing = this;
    try {
      this.#ws.cork(writeQueued);
    } finally {
      flushing = null;
      this.#head = this.#tail = -1;
      this.#queuedBytes = 0;
    }
    if (this.#open) this.#drained = this.#ws.getBufferedAmount() === 0;
  }

  writeQueued(): void {
    const ws = this.#ws;
    for (let i = this.#head; i >= 0 && this.#open; i = queuedNext[i]) {
      const seq = queuedSeqs[i];
      const frame = queuedFrames[i] as Uint8Array;
      ws.send(seq === 0 ? frame : stamped(frame, seq), true, false);
    }
  }

  close(code: number, reason: string): void {
    if (!this.#open) return;
    this.flush(); // what was queued goes out before the close frame
    if (!this.#open) return;
    this.#open = false;
    this.#ws.end(code, reason);
  }

  /** Queued bytes plus uWS's backpressure; uWS is asked only when it may have some. */
  bufferedAmount(): number {
    if (!this.#open) return 0;
    if (this.#drained) return this.#queuedBytes;
    const buffered = this.#ws.getBufferedAmount();
    this.#drained = buffered === 0;
    return buffered + this.#queuedBytes;
  }
}

export function connOf(ws: WebSocket<SocketData>): UwsConnection | undefined {
  return uwsNative ? ws.getUserData().conn : connectionOf.get(ws);
}

