import { createSocket } from 'node:dgram';

/**
 * Hands out the UDP port of each server peer from the configured range, in pairs: werift
 * refuses a one-port `icePortRange`, so a peer gets [p, p+1], binds p, and p+1 is its spare.
 *
 * werift's own `icePortRange` search (findPort in werift-ice) probes a port by binding and closing
 * it, then binds it again later: two peers gathering at once in one thread can pick the same port,
 * and the loser's socket emits an unhandled EADDRINUSE that takes the process down. Each peer
 * here gets a one-port range from this allocator instead: ports in use by this thread are never
 * handed out twice, probes run one at a time, and released ports go to the back of the line
 * (werift closes sockets asynchronously after `pc.close()`).
 *
 * Worker threads have one allocator each, so the same race exists across threads: the pool hands
 * every thread one shared claim table (`createPortClaims`, via workerData) and a port is probed
 * only after this thread won it with an atomic compare-exchange. A claim holds the claiming
 * thread's id + 1, so the pool can free the claims of a thread that died (`releaseClaimsOf`).
 */

/** One Int32 per UDP port: 0 = free, else threadId + 1 of the thread that holds it. */
export function createPortClaims(): SharedArrayBuffer {
  return new SharedArrayBuffer(65536 * Int32Array.BYTES_PER_ELEMENT);
}

let sharedClaims: Int32Array | null = null;
let claimTag = 1;

/** Makes this thread's allocators claim ports in the table shared by every media thread. */
export function usePortClaims(buffer: SharedArrayBuffer, threadId: number): void {
  sharedClaims = new Int32Array(buffer);
  claimTag = threadId + 1;
}

/** Frees every port a (dead) thread held; its sockets are gone with it. */
export function releaseClaimsOf(buffer: SharedArrayBuffer, threadId: number): number {
  const claims = new Int32Array(buffer);
  let freed = 0;
  for (let port = 0; port < claims.length; port++) {
    if (Atomics.compareExchange(claims, port, threadId + 1, 0) === threadId + 1) freed++;
  }
  return freed;
}
/** Claims one port for this thread in the shared table (always true without one). */
export function claimPort(port: number): boolean {
  return sharedClaims === null || Atomics.compareExchange(sharedClaims, port, 0, claimTag) === 0;
}

/** Gives back a port `claimPort` took. */
export function unclaimPort(port: number): void {
  if (sharedClaims !== null) Atomics.compareExchange(sharedClaims, port, claimTag, 0);
}

export class PortAllocator {
  readonly min: number;
  readonly max: number;
  readonly #inUse = new Set<number>();
  #cursor: number;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(min: number, max: number) {
    this.min = min;
    this.max = max;
    this.#cursor = min;
  }

  get inUse(): number {
    return this.#inUse.size;
  }

  /** A free port p (with p+1 in the range), reserved until `release(p)`. Rejects when all are taken. */
  acquire(bindIp?: string): Promise<number> {
    const next = this.#queue.then(() => this.#find(bindIp));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  release(port: number): void {
    if (this.#inUse.delete(port) && sharedClaims !== null) Atomics.compareExchange(sharedClaims, port, claimTag, 0);
  }

  async #find(bindIp: string | undefined): Promise<number> {
    const pairs = Math.floor((this.max - this.min + 1) / 2);
    for (let i = 0; i < pairs; i++) {
      const port = this.#cursor;
      this.#cursor = port + 2 + 1 > this.max ? this.min : port + 2;
      if (this.#inUse.has(port)) continue;
      if (sharedClaims !== null && Atomics.compareExchange(sharedClaims, port, 0, claimTag) !== 0) continue;
      if (await probe(port, bindIp)) {
        this.#inUse.add(port);
        return port;
      }
      if (sharedClaims !== null) Atomics.store(sharedClaims, port, 0);
    }
    throw new RangeError(`no free UDP port pair in ${this.min}-${this.max} (${this.#inUse.size} in use here)`);
  }
}

function probe(port: number, address?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ port, address, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

const allocators = new Map<string, PortAllocator>();

/** The allocator of this thread for a range (rooms sharing a range share it). */
export function portAllocator(min: number, max: number): PortAllocator {
  const key = `${min}-${max}`;
  let a = allocators.get(key);
  if (a === undefined) allocators.set(key, (a = new PortAllocator(min, max)));
  return a;
}
