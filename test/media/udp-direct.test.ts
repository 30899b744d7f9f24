import { createSocket, type Socket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectUdpSender, directSenderFor, directUdp } from '../../src/media/udp-direct.ts';

directUdp.enabled = true; // opt-in (VOXLINK_DIRECT_UDP=1); this file tests it
const probe = fileURLToPath(new URL('../fixtures/udp-batch-probe.ts', import.meta.url));

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) {
    try {
      s.close();
    } catch {
      // closed by the test
    }
  }
});

async function bound(options: { recvBufferSize?: number } = {}): Promise<Socket> {
  const s = createSocket({ type: 'udp4', ...options });
  sockets.push(s);
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  return s;
}

/** A packet of `n` bytes that says its own index and length, so a receiver can check every byte. */
function fill(buf: Buffer, n: number, index: number): void {
  for (let i = 0; i < n; i++) buf[i] = (index * 7 + i) & 0xff;
}
function intact(m: Buffer, index: number): boolean {
  for (let i = 0; i < m.length; i++) if (m[i] !== ((index * 7 + i) & 0xff)) return false;
  return true;
}

describe('DirectUdpSender (straight to the socket handle)', () => {
  it('delivers each datagram whole at its own length, interleaved with Socket#send, and leaves the caller its buffer at once', async () => {
    const rx = await bound({ recvBufferSize: 4 << 20 });
    const received: Buffer[] = [];
    rx.on('message', (m) => received.push(m));
    const tx = await bound();
    const direct = directSenderFor(tx);
    expect(direct).not.toBeNull();
    expect(directSenderFor(tx)).toBe(direct); // one per socket
    const buf = Buffer.alloc(1600);
    const lengths: number[] = [];
    for (let i = 0; i < 600; i++) {
      const n = 1 + ((i * 97) % 1500);
      lengths.push(n);
      fill(buf, n, i);
      if (i % 5 === 4) {
        // Socket#send on the same socket in between: it keeps working beside the direct sends.
        await new Promise<void>((resolve, reject) => tx.send(Buffer.from(buf.subarray(0, n)), rx.address().port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
      } else {
        expect(direct!.send(buf, n, rx.address().port, '127.0.0.1')).toBe(true);
        buf.fill(0xee); // the caller reuses its buffer at once: what went out must not change
      }
    }
    const deadline = Date.now() + 5000;
    while (received.length < 600 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(received).toHaveLength(600);
    received.forEach((m, i) => {
      expect(m.length, `datagram ${i}`).toBe(lengths[i]);
      expect(intact(m, i), `datagram ${i} bytes`).toBe(true);
    });
    expect(direct!.errors).toBe(0);
  });

  it('refuses what it cannot send without throwing: a non-numeric address, a datagram over its staging size, a closed socket', async () => {
    const rx = await bound();
    const tx = await bound();
    const direct = directSenderFor(tx)!;
    // Only a numeric address of the socket's family: a hostname (an mDNS candidate) or an IPv6
    // address on a udp4 socket keeps Socket#send.
    expect(directSenderFor(tx, 'peer.local')).toBeNull();
    expect(directSenderFor(tx, '::1')).toBeNull();
    expect(directSenderFor(tx, '127.0.0.1')).toBe(direct);
    expect(direct.send(Buffer.alloc(2000), 1501, rx.address().port, '127.0.0.1')).toBe(false);
    tx.close();
    expect(direct.send(Buffer.alloc(100), 100, rx.address().port, '127.0.0.1')).toBe(false);
  });

  it('counts a datagram the kernel refuses (a port-0 destination) and goes on', async () => {
    const rx = await bound();
    const tx = await bound();
    const direct = directSenderFor(tx)!;
    expect(direct.send(Buffer.alloc(40), 40, 0, '127.0.0.1')).toBe(false);
    expect(direct.errors).toBe(1);
    const got = new Promise<Buffer>((resolve) => rx.once('message', resolve));
    const buf = Buffer.alloc(40, 0x33);
    expect(direct.send(buf, 40, rx.address().port, '127.0.0.1')).toBe(true);
    expect((await got).equals(buf)).toBe(true);
  });

  /*
   * Backpressure cannot be produced on this host with real sockets without batching: on Linux
   * loopback the kernel hands a UDP datagram to the receiver's queue (or drops it there) inside
   * sendmsg, so libuv never queues. The slot bookkeeping is checked here against a handle that
   * queues on command, with libuv's contract: size + 1 when sent, 0 when queued, and a queued
   * request's `oncomplete` (asked for with hasCallback) only after every request queued before it.
   */
  it('keeps a queued datagram untouched until a later fence completes, then reuses its slot', () => {
    const inFlight: { view: Uint8Array; copy: Buffer; req: { oncomplete?: (status: number) => void }; fence: boolean }[] = [];
    let queueNext = 0;
    const handle = {
      send(req: object, list: Uint8Array[], count: number, port: number, address: string, hasCallback: boolean): number {
        expect(count).toBe(1);
        expect([port, address]).toEqual([5000, '127.0.0.1']);
        const view = list[0]!;
        if (queueNext > 0) {
          queueNext--;
          inFlight.push({ view, copy: Buffer.from(view), req: req as { oncomplete?: (status: number) => void }, fence: hasCallback });
          return 0;
        }
        return view.length + 1;
      },
    };
    class FakeSendWrap {
      oncomplete?: (status: number) => void;
    }
    const direct = new DirectUdpSender({ handle }, FakeSendWrap);
    const buf = Buffer.alloc(200);
    let index = 0;
    const send = (): boolean => {
      const n = 100 + (index % 50);
      fill(buf, n, index++);
      return direct.send(buf, n, 5000, '127.0.0.1');
    };
    for (let i = 0; i < 10; i++) expect(send()).toBe(true);
    expect(direct.slots).toBe(1); // sent at once: one slot, reused
    queueNext = 70; // seventy datagrams wait in libuv while more go out
    for (let i = 0; i < 80; i++) expect(send()).toBe(true);
    expect(direct.queued).toBe(70);
    expect(direct.inFlight).toBe(70);
    // Each queued datagram still holds exactly what was sent, however many sends came after it.
    for (const f of inFlight) expect(Buffer.from(f.view).equals(f.copy)).toBe(true);
    expect(new Set(inFlight.map((f) => f.req)).size).toBe(70); // each in its own slot, with its own request
    // One completion callback per 32 queued datagrams, not one each.
    expect(inFlight.filter((f) => f.fence).map((f) => inFlight.indexOf(f))).toEqual([31, 63]);
    expect(direct.slots).toBe(71); // the 70 in flight, and one for the ten sent at once after them
    // libuv finishes them in order; the first fence frees the 32 slots up to it.
    inFlight[31]!.req.oncomplete!(0);
    expect(direct.inFlight).toBe(38);
    for (let i = 0; i < 32; i++) expect(send()).toBe(true); // sent at once, in freed slots
    expect(direct.slots).toBe(71);
    inFlight[63]!.req.oncomplete!(-111); // a failed queued send is counted
    expect(direct.inFlight).toBe(6);
    expect(direct.errors).toBe(1);
    for (const f of inFlight.slice(64)) expect(Buffer.from(f.view).equals(f.copy)).toBe(true);
  });

  it('batched (Node with --test-udp-no-try-send, as media threads run): every send queues, bursts arrive whole, slots stay bounded', () => {
    const batched = JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', '--test-udp-no-try-send', probe], { encoding: 'utf8' }),
    ) as Record<string, number>;
    expect(batched.corrupt).toBe(0);
    expect(batched.intact).toBe(batched.sent);
    expect(batched.queued).toBe(batched.directSent); // libuv queued every direct send: the flag took effect
    expect(batched.errors).toBe(0);
    expect(batched.dropped).toBe(0);
    // A burst of 270 direct sends plus up to one fence interval still waiting: slots are reused, not one per datagram.
    expect(batched.slots).toBeLessThanOrEqual(270 + 32);
    expect(batched.maxInFlight).toBeGreaterThan(200);
    expect(batched.inFlightAtEnd).toBeLessThan(32);

    const unbatched = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', probe], { encoding: 'utf8' })) as Record<string, number>;
    expect(unbatched.intact).toBe(unbatched.sent);
    expect(unbatched.queued).toBe(0); // sent at once, one slot
    expect(unbatched.slots).toBe(1);
  }, 30_000);
});
