import type { Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { copyPrefix } from './bytes.ts';

/**
 * One datagram out per call on a `dgram.Socket`, without what `Socket#send` costs per call on
 * Node 20 (lib/dgram.js): a `dns.lookup` of the (already numeric) address that finishes on the
 * next tick, a closure, a list array, a view of the buffer's used part, a `SendWrap` object, and
 * one more `process.nextTick` for the completion callback. Here the packet goes straight to the
 * socket's libuv handle, which sends it at once (`uv_udp_try_send`) when the kernel takes it and
 * returns its size + 1; only then is the caller's buffer free again, so the packet is first copied
 * into a staging buffer this sender owns, sent through a cached exact-length view of it.
 *
 * Backpressure (the kernel's socket buffer is full): libuv queues the datagram and keeps pointing at
 * the staging buffer until it is sent. That buffer is then set aside with its request object until
 * the completion callback, and the next packets use another staging buffer (made on demand: the
 * only allocation, and only under backpressure).
 *
 * This leans on Node internals (docs/architecture.md "Threads and what each owns"): the socket's
 * state symbol and handle, and `SendWrap` from `process.binding('udp_wrap')`, checked on Node 20
 * (20.20.2). `directSenderFor` returns null when any of them is missing, or unless
 * `VOXLINK_DIRECT_UDP=1` turned it on, and callers keep using `Socket#send`.
 */

interface UdpHandle {
  send(req: object, list: Uint8Array[], count: number, port: number, address: string, hasCallback: boolean): number;
}
interface SocketState {
  handle: UdpHandle | null;
}
type SendWrapClass = new () => { oncomplete?: (status: number) => void };

/** The largest datagram this sender copies; larger ones go through `Socket#send`. */
const STAGING_BYTES = 1500;

class Staging {
  readonly buf = Buffer.alloc(STAGING_BYTES); // its own ArrayBuffer, not a slice of the pool
  /** `views[n]` = `buf[0, n)`, made the first time a packet of n bytes goes out. */
  readonly views: (Buffer | undefined)[] = [];
  req: { oncomplete?: (status: number) => void };
  busy = false;

  constructor(SendWrap: SendWrapClass) {
    this.req = this.#request(SendWrap);
  }

  /** A fresh request object: each in-flight send keeps its own until libuv is done with it. */
  renew(SendWrap: SendWrapClass): void {
    this.req = this.#request(SendWrap);
  }

  #request(SendWrap: SendWrapClass): { oncomplete?: (status: number) => void } {
    const req = new SendWrap();
    req.oncomplete = () => {
      this.busy = false;
    };
    return req;
  }
}

export class DirectUdpSender {
  /** Datagrams that waited for the kernel (backpressure) and datagrams the socket refused. */
  queued = 0;
  errors = 0;
  readonly #state: SocketState;
  readonly #SendWrap: SendWrapClass;
  readonly #list: Uint8Array[] = [Buffer.alloc(0)];
  #staging: Staging;
  readonly #spare: Staging[] = [];

  constructor(state: SocketState, SendWrap: SendWrapClass) {
    this.#state = state;
    this.#SendWrap = SendWrap;
    this.#staging = new Staging(SendWrap);
  }

  /**
   * Sends `buf[0, length)` to `address:port` (a numeric IP of the socket's family). True when the
   * datagram is the kernel's or queued by libuv; false when the socket is closed or refused it.
   * `buf` is free again on return either way.
   */
  send(buf: Buffer, length: number, port: number, address: string): boolean {
    const handle = this.#state.handle;
    if (handle === null || length > STAGING_BYTES) return false;
    let staging = this.#staging;
    if (staging.busy) staging = this.#free();
    copyPrefix(buf, length, staging.buf, 0);
    const view = (staging.views[length] ??= staging.buf.subarray(0, length));
    this.#list[0] = view;
    const r = handle.send(staging.req, this.#list, 1, port, address, true);
    if (r > 0) return true; // sent now: size + 1
    if (r === 0) {
      // Queued by libuv: this staging buffer and its request are in flight until oncomplete.
      this.queued++;
      staging.busy = true;
      staging.renew(this.#SendWrap);
      this.#staging = this.#free();
      return true;
    }
    this.errors++;
    return false;
  }

  /** Staging buffers made so far (one, plus one per datagram queued at once under backpressure). */
  get stagingBuffers(): number {
    return 1 + this.#spare.length;
  }

  #free(): Staging {
    const current = this.#staging;
    if (current.busy) this.#spare.push(current);
    const i = this.#spare.findIndex((s) => !s.busy);
    const next = i < 0 ? new Staging(this.#SendWrap) : this.#spare.splice(i, 1)[0]!;
    this.#staging = next;
    return next;
  }
}

/**
 * Opt-in with `VOXLINK_DIRECT_UDP=1` (benches and tests flip it). Not the default: in the whole
 * forwarding server it measured no faster than `Socket#send` (docs/media.md "Fast path"), and it
 * leans on Node internals.
 */
export const directUdp = { enabled: process.env.VOXLINK_DIRECT_UDP === '1' };

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
