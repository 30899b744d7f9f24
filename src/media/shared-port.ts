import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { logger } from '../log.ts';
import { claimPort, unclaimPort } from './port-allocator.ts';

/**
 * One UDP port for every peer of a media worker thread (config `media.udpPort`; docs/media.md
 * "Transport"): STUN, DTLS and SRTP of all peers arrive on one socket and are told apart here.
 *
 * Demultiplexing (RFC 7983 §7 first-byte ranges; ICE usernames per RFC 8445 §7.2.2):
 * - A STUN Binding request (first byte 0..3, magic cookie, method Binding, class request) goes to
 *   the peer whose local ufrag is the part of its USERNAME before the colon, and teaches the port
 *   the request's source address for that peer. This is how a client's first check finds its peer.
 * - Everything else (STUN responses, DTLS 20..63, RTP/RTCP 128..191) goes to the peer that owns the
 *   source address: one learned from a request as above, or one the peer itself sent to (its own
 *   connectivity checks, whose responses come back from there).
 * - A datagram from an address no peer owns is dropped and counted (`unknownSource`,
 *   `voxlink_srtp_rejected_total{reason="unknown_source"}`): it never reaches werift.
 *
 * An address belongs to the first peer that learned it (a later STUN request for another ufrag
 * from the same address still reaches that other peer by ufrag, but does not take the address
 * over), and each peer learns at most MAX_ADDRESSES_PER_PEER addresses. Whoever learns an address
 * still has to pass that peer's STUN MESSAGE-INTEGRITY, DTLS handshake and SRTP tags: the demux
 * only decides which peer's checks a datagram meets.
 *
 * The per-packet path (known address) is two Map lookups keyed by what Node's dgram already made
 * (the address string and the port number): no string building, no allocation of ours.
 */
const log = logger('shared-udp-port');

/** A peer on the shared port: its local ICE ufrag and where its datagrams go. */
export interface SharedPortPeer {
  readonly ufrag: string;
  /** `rinfo` is Node's object for this datagram; STUN needs the address, media does not. */
  deliver(data: Buffer, rinfo: RemoteInfo): void;
}

/** Addresses one peer may own: its client's host, srflx and relayed candidates, with room to spare. */
export const MAX_ADDRESSES_PER_PEER = 16;

const STUN_MAGIC_COOKIE = 0x2112a442;
const STUN_HEADER = 20;
const STUN_BINDING_REQUEST = 0x0001;
const STUN_ATTR_USERNAME = 0x0006;
const COLON = 0x3a;

/**
 * The recipient's ufrag from a STUN Binding request's USERNAME ("RFRAG:LFRAG", RFC 8445 §7.2.2),
 * or null if `data` is not a well-formed Binding request with one.
 */
export function bindingRequestUfrag(data: Buffer): string | null {
  if (data.length < STUN_HEADER || data.readUInt16BE(0) !== STUN_BINDING_REQUEST) return null;
  if (data.readUInt32BE(4) !== STUN_MAGIC_COOKIE) return null;
  const end = Math.min(data.length, STUN_HEADER + data.readUInt16BE(2));
  for (let at = STUN_HEADER; at + 4 <= end; ) {
    const type = data.readUInt16BE(at);
    const length = data.readUInt16BE(at + 2);
    const value = at + 4;
    if (value + length > end) return null;
    if (type === STUN_ATTR_USERNAME) {
      const colon = data.indexOf(COLON, value);
      if (colon < 0 || colon >= value + length || colon === value) return null;
      return data.toString('utf8', value, colon);
    }
    at = value + ((length + 3) & ~3);
  }
  return null;
}

export class SharedUdpPort {
  readonly socket: Socket;
  readonly port: number;
  /** Datagrams dropped because no peer owns their source address. */
  unknownSource = 0;
  readonly #byUfrag = new Map<string, SharedPortPeer>();
  readonly #byAddress = new Map<string, Map<number, SharedPortPeer>>();
  readonly #addressesOf = new Map<SharedPortPeer, [string, number][]>();
  #users = 0;
  #closed = false;
  readonly #onRelease: () => void;

  constructor(socket: Socket, port: number, onRelease: () => void) {
    this.socket = socket;
    this.port = port;
    this.#onRelease = onRelease;
    socket.on('message', (data, rinfo) => this.#onMessage(data, rinfo));
    socket.on('error', (error) => log.warn({ err: error, port }, 'shared UDP port error'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get peers(): number {
    return this.#byUfrag.size;
  }

  /** Starts routing the peer's STUN by its ufrag. A ufrag already taken is refused (ufrags are random, 24+ bits). */
  add(peer: SharedPortPeer): void {
    if (this.#byUfrag.has(peer.ufrag)) throw new RangeError(`ICE ufrag ${peer.ufrag} already on port ${this.port}`);
    this.#byUfrag.set(peer.ufrag, peer);
    this.#addressesOf.set(peer, []);
  }

  /** Forgets the peer and every address it owned. */
  remove(peer: SharedPortPeer): void {
    if (this.#byUfrag.get(peer.ufrag) === peer) this.#byUfrag.delete(peer.ufrag);
    for (const [address, port] of this.#addressesOf.get(peer) ?? []) {
      const ports = this.#byAddress.get(address);
      if (ports?.get(port) === peer) {
        ports.delete(port);
        if (ports.size === 0) this.#byAddress.delete(address);
      }
    }
    this.#addressesOf.delete(peer);
  }

  /** The peer owns datagrams from address:port from now on, unless another peer owns them already. */
  learn(peer: SharedPortPeer, address: string, port: number): void {
    const owned = this.#addressesOf.get(peer);
    if (owned === undefined || owned.length >= MAX_ADDRESSES_PER_PEER) return;
    let ports = this.#byAddress.get(address);
    if (ports === undefined) this.#byAddress.set(address, (ports = new Map()));
    if (ports.has(port)) return;
    ports.set(port, peer);
    owned.push([address, port]);
  }

  #onMessage(data: Buffer, rinfo: RemoteInfo): void {
    const b0 = data.length > 0 ? data[0]! : 0xff;
    if (b0 < 4) {
      const ufrag = bindingRequestUfrag(data);
      if (ufrag !== null) {
        const peer = this.#byUfrag.get(ufrag);
        if (peer !== undefined) {
          this.learn(peer, rinfo.address, rinfo.port);
          peer.deliver(data, rinfo);
          return;
        }
      }
    }
    const peer = this.#byAddress.get(rinfo.address)?.get(rinfo.port);
    if (peer === undefined) {
      this.unknownSource++;
      unknownSourceTotal++;
      return;
    }
    peer.deliver(data, rinfo);
  }

  /** One more user (a peer being created); `release()` once per `retain()`. */
  retain(): void {
    this.#users++;
  }

  /** The last user gone: the socket closes and the port is free again. */
  release(): void {
    if (--this.#users > 0 || this.#closed) return;
    this.#closed = true;
    this.#onRelease();
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}

/** Datagrams from unknown addresses on every shared port this thread ever had (the worker load report). */
let unknownSourceTotal = 0;
export function sharedPortUnknownSourceTotal(): number {
  return unknownSourceTotal;
}

export interface SharedUdpPortOptions {
  /** The first port; this thread takes the lowest free one of base … base + count − 1. */
  base: number;
  count: number;
  bindIp?: string;
}

const open = new Map<string, Promise<SharedUdpPort>>();

/**
 * This thread's shared port for `options` (opened on first use, one per thread and range), retained
 * once for the caller. Worker threads claim their port in the pool's shared claim table, so worker
 * k of a pool of `count` ends up alone on one of base … base + count − 1.
 */
export async function acquireSharedUdpPort(options: SharedUdpPortOptions): Promise<SharedUdpPort> {
  const key = `${options.bindIp ?? '0.0.0.0'}|${options.base}|${options.count}`;
  for (;;) {
    let pending = open.get(key);
    if (pending === undefined) {
      pending = bindFirstFree(options, () => open.delete(key));
      open.set(key, pending);
      pending.catch(() => open.delete(key));
    }
    const port = await pending;
    // Its last user may have left while we waited: then open a fresh one.
    if (port.closed) continue;
    port.retain();
    return port;
  }
}

async function bindFirstFree(options: SharedUdpPortOptions, onRelease: () => void): Promise<SharedUdpPort> {
  if (!(Number.isInteger(options.base) && options.base > 0 && options.count >= 1 && options.base + options.count - 1 <= 65535)) {
    throw new RangeError(`bad shared UDP port range ${options.base}+${options.count}`);
  }
  for (let port = options.base; port < options.base + options.count; port++) {
    if (!claimPort(port)) continue;
    const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    const bound = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind({ port, address: options.bindIp, exclusive: true }, () => resolve(true));
    });
    if (bound) {
      return new SharedUdpPort(socket, port, () => {
        unclaimPort(port);
        onRelease();
      });
    }
    socket.close();
    unclaimPort(port);
  }
  throw new RangeError(`no free shared UDP port in ${options.base}-${options.base + options.count - 1}`);
}
