import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { loadConfig } from '../../src/config.ts';
import { bindingRequestUfrag, sharedPortUnknownSourceTotal } from '../../src/media/shared-port.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';
import { mediaPlaneOptionsFromConfig } from '../../src/rooms/media-plane.ts';
import { RoomMetrics } from '../../src/rooms/metrics.ts';
import { powerAt } from '../codec/signal.ts';
import { openChromiumPeer, type ChromiumPeer } from './chromium-peer.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, waitFor } from './harness.ts';

/**
 * One UDP port per worker (MediaRoomOptions.udpPort, config `media.udpPort`; docs/media.md
 * "Transport"): every peer of the room on one socket, STUN routed by ICE ufrag, the rest by source
 * address. Ports from this file's range 50300–50399.
 */
const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };
const PRESENT = 0.01;
const ABSENT = 0.0005;

function candidatePorts(sdp: string): number[] {
  return [...new Set([...sdp.matchAll(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/gim)].map((m) => Number(m[1])))];
}

/** A STUN Binding request (RFC 5389 §6) with USERNAME `username` and no integrity. */
function bindingRequest(username: string): Buffer {
  const value = Buffer.from(username, 'utf8');
  const padded = (value.length + 3) & ~3;
  const b = Buffer.alloc(20 + 4 + padded);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(4 + padded, 2);
  b.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(b, 8);
  b.writeUInt16BE(0x0006, 20);
  b.writeUInt16BE(value.length, 22);
  value.copy(b, 24);
  return b;
}

function expectCleanTones(h: RoomHarness, ids: string[]): void {
  for (const id of ids) {
    const c = h.clients.get(id)!;
    for (const other of ids.filter((p) => p !== id)) {
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
    () => [...h.clients].every(([id, c]) => [...h.clients.keys()].filter((p) => p !== id).every((p) => c.audioFrom(p, seconds).length >= SR * seconds)),
    20_000,
    'audio from every speaker at every client',
  );
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind({ port, address: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

describe('bindingRequestUfrag', () => {
  it('reads the recipient ufrag (before the colon) of a Binding request, and nothing else', () => {
    expect(bindingRequestUfrag(bindingRequest('abcd:wxyz'))).toBe('abcd');
    const response = bindingRequest('abcd:wxyz');
    response.writeUInt16BE(0x0101, 0);
    expect(bindingRequestUfrag(response)).toBeNull();
    expect(bindingRequestUfrag(bindingRequest('nocolon'))).toBeNull();
    expect(bindingRequestUfrag(bindingRequest(':wxyz'))).toBeNull();
    const lying = bindingRequest('abcd:wxyz');
    lying.writeUInt16BE(0xfff0, 22); // USERNAME length past the end
    expect(bindingRequestUfrag(lying)).toBeNull();
    expect(bindingRequestUfrag(Buffer.alloc(0))).toBeNull();
    expect(bindingRequestUfrag(randomBytes(19))).toBeNull();
  });
});

describe('config media.udpPort', () => {
  it('is off by default; VOXLINK_UDP_PORT sets the base, and the plane gives each room base + the worker count', () => {
    expect(loadConfig({ env: {} }).media.udpPort).toBeUndefined();
    const on = loadConfig({ env: { VOXLINK_UDP_PORT: '40000', VOXLINK_MEDIA_WORKERS: '4' } });
    expect(on.media.udpPort).toBe(40000);
    expect(mediaPlaneOptionsFromConfig(on.media).room.udpPort).toEqual({ base: 40000, count: 4 });
    expect(() => loadConfig({ env: { VOXLINK_UDP_PORT: '65535', VOXLINK_MEDIA_WORKERS: '2' } })).toThrow(/udpPort/);
  });
});

describe('one shared UDP port: werift clients', () => {
  const PORT = 50300;
  let h: RoomHarness;
  const offers = new Map<string, string>();

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'shared', slots: 3, udpPort: { base: PORT, count: 1 }, ...portRange(50310, 10) });
    for (const id of Object.keys(TONES)) {
      h.sinks.set(id, (m: ServerMediaMessage) => {
        if (m.op === 'media' && m.kind === 'offer' && m.sdp !== undefined) offers.set(id, m.sdp);
      });
      await h.join(id, FULL_GRANTS);
    }
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]!));
    await everyoneHearsEveryone(h, 1);
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('every peer announces the one port, everyone hears everyone, both fast paths carry the audio', () => {
    expect([...offers.values()].map(candidatePorts)).toEqual([[PORT], [PORT], [PORT]]);
    expectCleanTones(h, Object.keys(TONES));
    const s = h.room.stats();
    expect(s.packetsOutFast ?? 0).toBeGreaterThan(s.packetsOut * 0.95);
    expect(s.packetsInFast ?? 0).toBeGreaterThanOrEqual(s.packetsIn);
    expect(h.errors).toEqual([]);
  });

  it('strangers (forged SRTP, STUN with unknown or real ufrags, junk) never reach a peer; unknown sources are counted and reach /metrics', async () => {
    const ufrags = [...offers.values()].map((sdp) => /a=ice-ufrag:(\S+)/.exec(sdp)![1]!);
    const ssrcs = [...h.clients.values()].map((c) => c.pc.getSenders()[0]!.ssrc);
    const before = h.room.stats();
    const unknownBefore = sharedPortUnknownSourceTotal();
    const stranger = createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', r));
    const send = (b: Buffer): Promise<void> => new Promise((r) => stranger.send(b, PORT, '127.0.0.1', () => r()));
    let unknown = 0;
    try {
      for (let i = 0; i < 300; i++) {
        // SRTP with a publisher's SSRC and a random tag, junk of every RFC 7983 range, a Binding request for nobody.
        const rtp = Buffer.concat([Buffer.from([0x80, 111]), randomBytes(78)]);
        rtp.writeUInt32BE(ssrcs[i % 3]!, 8);
        await send(rtp);
        await send(randomBytes(1 + (i % 200)));
        await send(bindingRequest(`zz${i}:abcd`));
        unknown += 3;
        if (i % 30 === 29) await sleep(5);
      }
      // A Binding request with a real peer's ufrag but no MESSAGE-INTEGRITY reaches that peer's werift, which refuses it.
      for (const ufrag of ufrags) await send(bindingRequest(`${ufrag}:evil`));
      // Now the port routes this address to those peers: SRTP from it meets their SRTP and is refused as forged.
      for (let i = 0; i < 30; i++) {
        const rtp = Buffer.concat([Buffer.from([0x80, 111]), randomBytes(78)]);
        rtp.writeUInt32BE(ssrcs[0]!, 8);
        await send(rtp);
      }
    } finally {
      stranger.close();
    }
    await waitFor(() => sharedPortUnknownSourceTotal() - unknownBefore >= unknown, 5000, 'every stranger datagram counted');
    expect(sharedPortUnknownSourceTotal() - unknownBefore).toBe(unknown);
    // A random sequence number is either ahead (bad tag: forged) or behind the replay window (replay).
    const refused = (): number => {
      const r = h.room.stats().srtpRejected!;
      return r.forged + r.replay - before.srtpRejected!.forged - before.srtpRejected!.replay;
    };
    await waitFor(() => refused() >= 30, 5000, 'the learned address’s SRTP refused');
    await sleep(300);
    const after = h.room.stats();
    expect(after.participants).toBe(3);
    expect(refused()).toBe(30);
    // Nothing of it was media: ~50 packets/s per publisher over this test's few seconds.
    expect((after.packetsIn - before.packetsIn) / 3).toBeLessThan(300);

    // What /metrics shows: the worker's load report carries the thread's cumulative count.
    const metrics = new RoomMetrics(new Registry());
    metrics.workerLoad({ threadId: 1, rooms: 1, participants: 3, pps: 0, elu: 0, udpSockets: 1, placedSinceReport: 0, unknownSource: unknownBefore });
    metrics.workerLoad({ threadId: 1, rooms: 1, participants: 3, pps: 0, elu: 0, udpSockets: 1, placedSinceReport: 0, unknownSource: sharedPortUnknownSourceTotal() });
    const text = await metrics.registry.metrics();
    expect(text).toContain(`voxlink_srtp_rejected_total{reason="unknown_source"} ${unknownBefore + unknown}`);

    for (const c of h.clients.values()) c.clearRecordings();
    await everyoneHearsEveryone(h, 0.5);
    expectCleanTones(h, Object.keys(TONES));
    expect(h.errors).toEqual([]);
  }, 40_000);

  it('a participant who leaves frees their ufrag and addresses; a newcomer joins on the same port', async () => {
    await h.leave('c');
    await h.join('c', FULL_GRANTS);
    const c = h.clients.get('c')!;
    await c.connected();
    c.publish(new ToneSource(TONES.c!));
    await everyoneHearsEveryone(h, 0.5);
    expect(candidatePorts(offers.get('c')!)).toEqual([PORT]);
    expectCleanTones(h, Object.keys(TONES));
  }, 30_000);

  it('closing the last room on the port closes the socket', async () => {
    expect(await bindable(PORT)).toBe(false);
    await h.close();
    await sleep(200);
    expect(await bindable(PORT)).toBe(true);
  });
});

describe('one shared UDP port: Chromium and werift', () => {
  const PORT = 50350;
  let h: RoomHarness;
  let chrome: ChromiumPeer;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'shared-chrome', slots: 3, udpPort: { base: PORT, count: 1 }, ...portRange(50360, 10) });
    chrome = await openChromiumPeer(h, 'chrome');
    for (const id of ['a', 'b']) await h.join(id, { ...FULL_GRANTS, subscribe: false });
    await h.room.join({ roomId: 'shared-chrome', participantId: 'chrome', name: 'Chromium', grants: FULL_GRANTS });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const id of ['a', 'b']) h.clients.get(id)!.publish(new ToneSource(TONES[id]!));
  }, 60_000);

  afterAll(async () => {
    await chrome?.close();
    await h?.close();
  });

  it('Chromium connects on the shared port and hears both werift speakers in their slots', async () => {
    expect(await chrome.receiving(20_000)).toBeGreaterThanOrEqual(20_000);
    const slots = (await chrome.call((api) => api.slots(), null)).filter((id): id is string => id !== null);
    expect([...slots].sort()).toEqual(['a', 'b']);
    const freqs = slots.map((id) => TONES[id]!);
    const levels = (await chrome.call((api, f) => api.measure(f), freqs)) as number[][];
    slots.forEach((id, slot) => {
      expect(levels[slot]![slot]!, `slot ${slot} (${id}) level`).toBeGreaterThan(-60);
    });
    const s = h.room.stats();
    expect(s.packetsOutFast ?? 0).toBeGreaterThan(s.packetsOut * 0.95);
    expect(h.errors).toEqual([]);
  }, 40_000);
});
