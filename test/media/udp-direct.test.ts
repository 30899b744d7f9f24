import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectUdpSender, directSenderFor, directUdp } from '../../src/media/udp-direct.ts';

directUdp.enabled = true; // opt-in (VOXLINK_DIRECT_UDP=1); this file tests it

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
   * Backpressure cannot be produced on this host with real sockets: on Linux loopback the kernel
   * hands a UDP datagram to the receiver's queue (or drops it there) inside sendmsg, so the send
   * buffer never fills and libuv never queues (20 000 back-to-back 1.4 KB sends on a 4.6 KB send
   * buffer: none queued). The staging rotation is checked against a handle that queues on command,
   * with the same contract as libuv's: size + 1 when sent, 0 when queued (then `oncomplete` later).
   */
  it('under backpressure keeps a queued datagram untouched until libuv is done with it, then reuses its buffer', () => {
    const inFlight: { view: Uint8Array; copy: Buffer; req: { oncomplete?: (status: number) => void } }[] = [];
    let queueNext = 0;
    const handle = {
      send(req: object, list: Uint8Array[], count: number, port: number, address: string, hasCallback: boolean): number {
        expect(count).toBe(1);
        expect(hasCallback).toBe(true);
        expect([port, address]).toEqual([5000, '127.0.0.1']);
        const view = list[0]!;
        if (queueNext > 0) {
          queueNext--;
          inFlight.push({ view, copy: Buffer.from(view), req: req as { oncomplete?: (status: number) => void } });
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
      fill(buf, 100 + (index % 50), index);
      index++;
      return direct.send(buf, 100 + ((index - 1) % 50), 5000, '127.0.0.1');
    };
    for (let i = 0; i < 10; i++) expect(send()).toBe(true);
    queueNext = 3; // three datagrams wait in libuv while more go out
    for (let i = 0; i < 50; i++) expect(send()).toBe(true);
    expect(direct.queued).toBe(3);
    // Each queued datagram still holds exactly what was sent, however many sends came after it.
    for (const f of inFlight) expect(Buffer.from(f.view).equals(f.copy)).toBe(true);
    expect(new Set(inFlight.map((f) => f.view.buffer)).size).toBe(3); // three staging buffers set aside
    expect(new Set(inFlight.map((f) => f.req)).size).toBe(3); // each with its own request
    expect(direct.stagingBuffers).toBe(4);
    for (const f of inFlight.splice(0)) f.req.oncomplete!(0);
    // Done: their buffers go back into use, no new one is made for the next queued send.
    queueNext = 1;
    for (let i = 0; i < 20; i++) expect(send()).toBe(true);
    expect(inFlight).toHaveLength(1);
    expect(direct.stagingBuffers).toBe(4);
    expect(Buffer.from(inFlight[0]!.view).equals(inFlight[0]!.copy)).toBe(true);
    expect(direct.errors).toBe(0);
  });
});
