import type { Socket } from 'node:dgram';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoomMetrics } from '../../src/rooms/metrics.ts';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import type { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { powerAt } from '../codec/signal.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, waitFor } from './harness.ts';

/**
 * The fast receive path (docs/media.md "Fast path"): inbound SRTP/SRTCP unprotected by VoxLink's
 * SrtpContext instead of werift's. Real werift clients publish tones; a publisher's own socket
 * (so the datagrams come from the right address) then sends a replay of one of its genuine
 * packets and forgeries (a genuine header, a fresh sequence number, a wrong tag). The room's
 * counters must account for every one of them as refused, and the listeners keep hearing clean tones.
 */
const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };
const PRESENT = 0.01;
const ABSENT = 0.0005;

/** The client's nominated ICE socket and pair address (werift 0.24 internals, test side only). */
function iceSocket(c: NodeMediaClient): { socket: Socket; port: number; address: string } {
  const pair = (c.pc.iceTransports[0]!.connection as unknown as { nominated: { protocol: { transport: { socket: Socket } }; remoteAddr: [string, number] } }).nominated;
  return { socket: pair.protocol.transport.socket, address: pair.remoteAddr[0], port: pair.remoteAddr[1] };
}

/** Copies of the SRTP (not SRTCP) datagrams `socket` sends from now on. */
function captureSrtp(socket: Socket): { packets: Buffer[]; stop(): void } {
  const packets: Buffer[] = [];
  const send = socket.send;
  socket.send = function (this: Socket, ...args: unknown[]) {
    const msg = args[0];
    if (Buffer.isBuffer(msg) && msg.length > 12 && msg[0]! >= 128 && msg[0]! < 192 && !(msg[1]! >= 192 && msg[1]! <= 223)) packets.push(Buffer.from(msg));
    return (send as (...a: unknown[]) => void).apply(this, args);
  } as typeof socket.send;
  return { packets, stop: () => void (socket.send = send) };
}

function sendFrom(socket: Socket, data: Buffer, port: number, address: string): Promise<void> {
  return new Promise((resolve) => socket.send(data, port, address, () => resolve()));
}

function expectCleanTones(h: RoomHarness): void {
  for (const [id, c] of h.clients) {
    for (const other of Object.keys(TONES).filter((p) => p !== id)) {
      const pcm = c.audioFrom(other, 0.4);
      expect(powerAt(pcm, SR, TONES[other]!), `${id} hears ${other}`).toBeGreaterThan(PRESENT);
      for (const [p, f] of Object.entries(TONES)) {
        if (p !== other) expect(powerAt(pcm, SR, f), `${id}: ${other}'s audio carries ${p}`).toBeLessThan(ABSENT);
      }
    }
  }
}

async function everyoneHearsEveryone(h: RoomHarness, seconds: number): Promise<void> {
  await waitFor(
    () => [...h.clients].every(([id, c]) => Object.keys(TONES).filter((p) => p !== id).every((p) => c.audioFrom(p, seconds).length >= SR * seconds)),
    20_000,
    'audio from every speaker at every client',
  );
}

for (const variant of [
  { name: 'a port per peer', options: portRange(50000, 100) },
  { name: 'one shared UDP port', options: { ...portRange(50510, 10), udpPort: { base: 50500, count: 1 } } },
]) {
  describe(`fast receive path: werift publishers, ${variant.name}`, () => {
    let h: RoomHarness;

    beforeAll(async () => {
      h = new RoomHarness({ roomId: 'fast-rx', slots: 3, ...variant.options });
      for (const id of Object.keys(TONES)) await h.join(id, FULL_GRANTS);
      await Promise.all([...h.clients.values()].map((c) => c.connected()));
      for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]!));
      await everyoneHearsEveryone(h, 1);
    }, 40_000);

    afterAll(async () => {
      await h?.close();
    });

    it('unprotects every inbound packet with our SRTP and the tones decode', () => {
      expectCleanTones(h);
      const s = h.room.stats();
      expect(s.packetsIn).toBeGreaterThan(100);
      // packetsInFast counts RTP and RTCP; every audio packet the taps saw came through it.
      expect(s.packetsInFast ?? 0).toBeGreaterThanOrEqual(s.packetsIn);
      expect(s.srtpRejected).toEqual({ forged: 0, replay: 0, malformed: 0 });
      expect(h.errors).toEqual([]);
    });

    it('a replayed genuine packet and forged packets from the publisher’s own address are counted and never reach a listener', async () => {
      const a = h.clients.get('a')!;
      const { socket, port, address } = iceSocket(a);
      const capture = captureSrtp(socket);
      await waitFor(() => capture.packets.length >= 5, 5000, 'packets captured from a');
      capture.stop();
      const genuine = capture.packets[2]!;

      const REPLAYS = 200;
      const FORGED = 200;
      const metrics = new RoomMetrics(new Registry());
      const before = h.room.stats();
      metrics.roomStats('fast-rx', before);
      const t0 = performance.now();
      for (let i = 0; i < REPLAYS; i++) {
        await sendFrom(socket, genuine, port, address);
        if (i % 20 === 19) await sleep(5);
      }
      const seq = genuine.readUInt16BE(2);
      for (let i = 0; i < FORGED; i++) {
        // A genuine header (a's SSRC, PT, extensions), a sequence number ahead of anything sent (so not a replay), the payload and tag changed.
        const forged = Buffer.from(genuine);
        forged.writeUInt16BE((seq + 1000 + i) & 0xffff, 2);
        forged[forged.length - 15] ^= 0x5a;
        forged[forged.length - 1] ^= 0xa5;
        await sendFrom(socket, forged, port, address);
        if (i % 20 === 19) await sleep(5);
      }
      await waitFor(() => {
        const r = h.room.stats().srtpRejected!;
        return r.replay - before.srtpRejected!.replay >= REPLAYS && r.forged - before.srtpRejected!.forged >= FORGED;
      }, 5000, 'every injected packet refused');
      await sleep(200);
      const after = h.room.stats();
      const seconds = (performance.now() - t0) / 1000;
      expect(after.srtpRejected!.replay - before.srtpRejected!.replay).toBe(REPLAYS);
      expect(after.srtpRejected!.forged - before.srtpRejected!.forged).toBe(FORGED);
      expect(after.srtpRejected!.malformed).toBe(0);
      // What /metrics shows once the room's stats arrive (the worker polls MediaRoom.stats()).
      metrics.roomStats('fast-rx', after);
      const text = await metrics.registry.metrics();
      const sample = (name: string): number => Number(text.split('\n').find((l) => l.startsWith(name))?.split(' ')[1]);
      expect(sample('voxlink_srtp_rejected_total{reason="replay"}')).toBe(REPLAYS + before.srtpRejected!.replay);
      expect(sample('voxlink_srtp_rejected_total{reason="forged"}')).toBe(FORGED + before.srtpRejected!.forged);
      expect(sample('voxlink_fast_path_packets_total{direction="receive"}')).toBe(after.packetsInFast);
      expect(sample('voxlink_fast_path_packets_total{direction="send"}')).toBe(after.packetsOutFast);
      // Genuine traffic is 50 packets/s per publisher: the 400 injected ones did not reach the taps.
      expect(after.packetsIn - before.packetsIn).toBeLessThan(3 * 50 * seconds * 1.3 + 20);
      // The peer is still fine: its next genuine packets are accepted, and everyone hears clean tones.
      for (const c of h.clients.values()) c.clearRecordings();
      await everyoneHearsEveryone(h, 0.5);
      expectCleanTones(h);
      expect(h.room.stats().participants).toBe(3);
      expect(h.errors).toEqual([]);
    }, 30_000);
  });
}

describe('fast path off: inbound stays on werift', () => {
  let h: RoomHarness;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'slow-rx', slots: 3, fastSrtp: false, ...portRange(50100, 100) });
    for (const id of ['a', 'b']) await h.join(id, FULL_GRANTS);
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]!));
    await waitFor(() => h.clients.get('a')!.audioFrom('b', 1).length >= SR, 20_000, 'a hears b');
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('counts no fast-path packet', () => {
    const s = h.room.stats();
    expect(s.packetsIn).toBeGreaterThan(50);
    expect(s.packetsInFast).toBe(0);
    expect(powerAt(h.clients.get('a')!.audioFrom('b', 0.4), SR, TONES.b!)).toBeGreaterThan(PRESENT);
  });
});
