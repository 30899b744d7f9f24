import type { Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { copyPrefix } from './bytes.ts';

/**
 * One datagram out per call on a `dgram.Socket`, without what `Socket#send` costs per call on
 * Node 20 (lib/dgram.js): a `dns.lookup` of the (already numeric) address that finishes on the
 * next tick, a closure, a list array, a view of the buffer's used part, a `SendWrap` object, and
 * one more `process.nextTick` for the completion callback. Here the packet is copied into a slot
 * this sender owns and handed straight to the socket's libuv handle; the caller's buffer is free
 * again on return.
 *
 * Two ways the handle sends (docs/media.md "Batched sends"):
 * - By default Node first tries `uv_udp_try_send`: one `sendmsg` system call per datagram, done
 *   before `send` returns (the handle returns size + 1), and the slot is free at once.
 * - With Node's `--test-udp-no-try-send` (the media worker threads get it, `media.udpBatch`),
 *   every datagram goes through `uv_udp_send`. The first of a burst is sent at once; the rest of
 *   the burst queue behind it (the handle returns 0) and libuv sends them at the start of the next
 *   event-loop turn with `sendmmsg`, up to 20 per system call. A queued slot stays untouched until
 *   libuv is done with it.
 *
 * Knowing when libuv is done without a callback per datagram: libuv finishes one handle's sends in
 * the order they were queued, so only every FENCE_EVERY-th queued datagram (and the last one
 * before the free slots run out) asks for a completion callback, and that callback frees every
 * slot queued up to and including its own. Slots are made on demand, up to MAX_SLOTS per socket;
 * each keeps its request object and, for datagrams up to VIEW_CACHE_BYTES, one cached
 * exact-length view per length, so a warm audio path allocates nothing per packet.
 *
 * This leans on Node internals (docs/architecture.md "Threads and what each owns"): the socket's
 * state symbol and handle, and `SendWrap` from `process.binding('udp_wrap')`, checked on Node 20
 * (20.20.2). `directSenderFor` returns null when any of them is missing, or when
 * `directUdp.enabled` is off, and callers keep using `Socket#send`.
 */

interface UdpHandle {
  send(req: object, list: Uint8Array[], count: number, port: number, address: string, hasCallback: boolean): number;
}
interface SocketState {
  handle: UdpHandle | null;
}
interface SendRequest {
  oncomplete?: (status: number) => void;
}
type SendWrapClass = new () => SendRequest;

/** The largest datagram this sender copies (an Ethernet MTU); larger ones go through `Socket#send`. */
const SLOT_BYTES = 1500;
/** Datagrams up to this size go out through a cached view (audio); longer ones (video) get a view per send. */
const VIEW_CACHE_BYTES = 400;
/** One completion callback per this many queued datagrams. */
const FENCE_EVERY = 32;
/** Slots per socket at most (24 MB of copies in flight, made only when a burst needs them: one inbound packet per listener of a 1000-person room, times the 32 datagrams libuv reads per turn); past that a datagram is dropped and counted. */
export const MAX_SLOTS = 16_384;

class Slot {
  readonly buf = Buffer.allocUnsafeSlow(SLOT_BYTES); // its own ArrayBuffer, not a slice of the pool
  /** `views[n]` = `buf[0, n)`, made the first time a packet of n bytes goes out. */
  readonly views = new Array<Buffer | undefined>(VIEW_CACHE_BYTES + 1).fill(undefined); // dense: a fast indexed load
  readonly req: SendRequest;

  constructor(SendWrap: SendWrapClass, onFence: (slot: Slot, status: number) => void) {
    this.req = new SendWrap();
    this.req.oncomplete = (status) => onFence(this, status);
  }
}

export class DirectUdpSender {
  /** Datagrams the handle queued (sent by libuv after `send` returned): batched, or under backpressure. */
  queued = 0;
  /** Datagrams the socket refused, or whose queued send failed (seen at a fence). */
  errors = 0;
  /** Datagrams dropped because MAX_SLOTS were all in flight. */
  dropped = 0;
  readonly #state: SocketState;
  readonly #SendWrap: SendWrapClass;
  readonly #list: Uint8Array[] = [Buffer.alloc(0)];
  readonly #free: Slot[] = [];
  /** Queued slots in send order: a ring (grown by doubling, up to MAX_SLOTS), `#head` the oldest, `#count` of them. */
  #inFlight: (Slot | undefined)[] = new Array<Slot | undefined>(64).fill(undefined);
  #head = 0;
  #count = 0;
  #made = 0;
  #sinceFence = 0;
  readonly #onFence = (slot: Slot, status: number): void => this.#releaseThrough(slot, status);

  constructor(state: SocketState, SendWrap: SendWrapClass) {
    this.#state = state;
    this.#SendWrap = SendWrap;
  }

  /**
   * Sends `buf[0, length)` to `address:port` (a numeric IP of the socket's family). True when the
   * datagram is the kernel's or queued by libuv; false when the socket is closed, refused it, or
   * every slot is in flight. `buf` is free again on return either way.
   */
  send(buf: Buffer, length: number, port: number, address: string): boolean {
    const handle = this.#state.handle;
    if (handle === null || length > SLOT_BYTES) return false;
    const slot = this.#free.pop() ?? this.#make();
    if (slot === null) {
      this.dropped++;
      return false;
    }
    copyPrefix(buf, length, slot.buf, 0);
    this.#list[0] = length <= VIEW_CACHE_BYTES ? (slot.views[length] ??= slot.buf.subarray(0, length)) : slot.buf.subarray(0, length);
    // A fence every FENCE_EVERY queued datagrams, and on the last free slot so a full ring always
    // has a callback coming that frees it.
    const fence = this.#sinceFence >= FENCE_EVERY - 1 || (this.#free.length === 0 && this.#made >= MAX_SLOTS);
    const r = handle.send(slot.req, this.#list, 1, port, address, fence);
    if (r > 0) {
      this.#free.push(slot); // sent now (size + 1): the kernel has the bytes
      return true;
    }
    if (r === 0) {
      this.queued++;
      this.#sinceFence = fence ? 0 : this.#sinceFence + 1;
      if (this.#count === this.#inFlight.length) this.#growRing();
      this.#inFlight[(this.#head + this.#count) % this.#inFlight.length] = slot;
      this.#count++;
      return true;
    }
    this.#free.push(slot);
    this.errors++;
    return false;
  }

  /** Slots made so far (one for unbatched sends; about a burst's worth plus FENCE_EVERY when batched). */
  get slots(): number {
    return this.#made;
  }

  /** Queued datagrams whose slots are not yet known to be free. */
  get inFlight(): number {
    return this.#count;
  }

  /** Twice the ring, oldest first (only while a burst is larger than any before). */
  #growRing(): void {
    const old = this.#inFlight;
    const ring = new Array<Slot | undefined>(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#count; i++) ring[i] = old[(this.#head + i) % old.length];
    this.#inFlight = ring;
    this.#head = 0;
  }

  #make(): Slot | null {
    if (this.#made >= MAX_SLOTS) return null;
    this.#made++;
    return new Slot(this.#SendWrap, this.#onFence);
  }

  /** libuv finished `fence` (and, in order, everything queued before it): their slots are free. */
  #releaseThrough(fence: Slot, status: number): void {
    if (status < 0) this.errors++;
    while (this.#count > 0) {
      const slot = this.#inFlight[this.#head]!;
      this.#inFlight[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#inFlight.length;
      this.#count--;
      this.#free.push(slot);
      if (slot === fence) return;
    }
  }
}

/**
 * Node's option (one it keeps for its own tests, in Node 20 and later) that skips
 * `uv_udp_try_send` in the thread it is given to: UDP sends then queue and leave in sendmmsg
 * batches. The media worker threads get it with `media.udpBatch` (RoomPoolOptions.udpBatch;
 * docs/architecture.md "Threads and what each owns").
 */
export const UDP_BATCH_FLAG = '--test-udp-no-try-send';

/** This thread sends UDP in batches (it runs with UDP_BATCH_FLAG). */
export const udpBatching = process.execArgv.includes(UDP_BATCH_FLAG);

/**
 * On in a batching thread: there `Socket#send` would cost a JavaScript completion callback per
 * datagram (Node calls it from libuv for every queued send), where this sender asks for one per
 * FENCE_EVERY. Elsewhere opt-in with `VOXLINK_DIRECT_UDP=1` (benches and tests flip it): sending
 * one by one, it measured no faster than `Socket#send` in the whole forwarding server
 * (docs/media.md "Fast path"), and it leans on Node internals.
 */
export const directUdp = { enabled: process.env.VOXLINK_DIRECT_UDP === '1' || udpBatching };

let SendWrap: SendWrapClass | null | undefined;

function sendWrapClass(): SendWrapClass | null {
  if (SendWrap !== undefined) return SendWrap;
  SendWrap = null;
  try {
    const binding = (process as unknown as { binding(name: string): { SendWrap?: SendWrapClass } }).binding('udp_wrap');
    if (typeof binding.SendWrap === 'function') SendWrap = binding.SendWrap;
  } catch {
    // Not available on this Node: Socket#send it is.
  }
  return SendWrap;
}

const senders = new WeakMap<Socket, DirectUdpSender | null>();

/**
 * The direct sender of a bound socket (one per socket), or null: when it is off, where Node's
 * internals differ, or when `address` (if given) is not a numeric IP of the socket's family (a
 * hostname, as an mDNS candidate would give, needs `Socket#send`'s lookup).
 */
export function directSenderFor(socket: Socket, address?: string): DirectUdpSender | null {
  if (!directUdp.enabled) return null;
  if (address !== undefined) {
    const family = isIP(address);
    const type = (socket as unknown as { type?: string }).type; // set by dgram, not in its typings
    if (!((family === 4 && type === 'udp4') || (family === 6 && type === 'udp6'))) return null;
  }
  const known = senders.get(socket);
  if (known !== undefined) return known;
  let sender: DirectUdpSender | null = null;
  const wrap = sendWrapClass();
  if (wrap !== null) {
    const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
    const state = symbol === undefined ? undefined : ((socket as unknown as Record<symbol, unknown>)[symbol] as SocketState | undefined);
    if (state !== undefined && state.handle !== null && typeof state.handle?.send === 'function') sender = new DirectUdpSender(state, wrap);
  }
  senders.set(socket, sender);
  return sender;
}
