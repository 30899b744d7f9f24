import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { loadConfig } from '../../src/config.ts';
import { mediaPlaneOptionsFromConfig } from '../../src/rooms/media-plane.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';
import { powerAt } from '../codec/signal.ts';
import { openChromiumPeer, type ChromiumPeer } from './chromium-peer.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, waitFor } from './harness.ts';

/**
 * The fast send path (docs/media.md "Fast path"): forwarded audio protected by VoxLink's own
 * SrtpContext and written straight onto the ICE socket. The room's `packetsOutFast` proves the path
 * was taken; the receivers decoding the tones prove werift and Chromium accept our SRTP.
 */
const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };
const PRESENT = 0.01;
const ABSENT = 0.0005;
const SPEAKER = { ...FULL_GRANTS, subscribe: false };

function candidatePorts(sdp: string): number[] {
  const ports = new Set<number>();
  for (const m of sdp.matchAll(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/gim)) ports.add(Number(m[1]));
  return [...ports];
}

async function everyoneHearsEveryone(h: RoomHarness, seconds: number): Promise<void> {
  await waitFor(
    () => [...h.clients].every(([id, c]) => Object.keys(TONES).filter((p) => p !== id).every((p) => c.audioFrom(p, seconds).length >= SR * seconds)),
    20_000,
    'audio from every speaker at every client',
  );
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

/** Every TONES participant joined (offers seen by `onMessage`), connected, publishing its tone, heard by the others. */
async function toneRoom(h: RoomHarness, onMessage?: (id: string, m: ServerMediaMessage) => void): Promise<void> {
  for (const id of Object.keys(TONES)) {
    if (onMessage) h.sinks.set(id, (m: ServerMediaMessage) => onMessage(id, m));
    await h.join(id);
  }
  await Promise.all([...h.clients.values()].map((c) => c.connected()));
  for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]!));
  await everyoneHearsEveryone(h, 1);
}

describe('fast path: werift clients', () => {
  let h: RoomHarness;
  const offers = new Map<string, string>();

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'fast', slots: 3, ...portRange(45200) });
    await toneRoom(h, (id, m) => {
      if (m.op === 'media' && m.kind === 'offer' && m.sdp !== undefined) offers.set(id, m.sdp);
    });
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('every forwarded audio packet goes out on the fast path and decodes at the werift clients', () => {
    expectCleanTones(h);
    const s = h.room.stats();
    expect(s.packetsOut).toBeGreaterThan(100);
    // Only the first packets of a slot, before DTLS-SRTP is up, may take werift's path.
    expect(s.packetsOutFast ?? 0).toBeGreaterThan(s.packetsOut * 0.95);
    expect(h.errors).toEqual([]);
  });

  it('the RTCP sender reports werift still sends count the fast path’s packets', async () => {
    // werift's receivers keep the last SR's sender info per SSRC (lib/webrtc/src/media/rtpReceiver.js).
    type SrCounts = { remotePacketCountBySsrc: Record<string, number> };
    const srCount = (c: (typeof h.clients extends Map<string, infer C> ? C : never)): number =>
      c.pc.getReceivers().reduce((sum, r) => sum + Object.values((r as unknown as SrCounts).remotePacketCountBySsrc ?? {}).reduce((a, b) => a + b, 0), 0);
    const received = (c: (typeof h.clients extends Map<string, infer C> ? C : never)): number => {
      let n = 0;
      for (let k = 0; k < c.slotCount; k++) n += c.slotStats(k)?.packets ?? 0;
      return n;
    };
    // Nearly every packet went out on the fast path (first test), so SRs that left our packets out would count ~0.
    await waitFor(() => [...h.clients.values()].every((c) => received(c) > 400 && srCount(c) > 100), 15_000, 'SRs counting packets at every client');
    for (const [id, c] of h.clients) {
      const sr = srCount(c);
      const got = received(c);
      // An SR is a snapshot from up to a couple of seconds ago (2 slots × 50 packets/s): never more than was received, not far behind it.
      expect(sr, `${id}: SR packet count vs ${got} received`).toBeLessThanOrEqual(got + 5);
      expect(sr, `${id}: SR packet count vs ${got} received`).toBeGreaterThan(got - 300);
    }
  }, 20_000);

  it('forged SRTP (a publisher’s SSRC, a wrong tag) from a stranger never reaches a listener', async () => {
    const ports = [...offers.values()].flatMap(candidatePorts);
    expect(ports.length).toBe(3);
    const ssrcs = [...h.clients.values()].map((c) => c.pc.getSenders()[0]!.ssrc);
    const before = h.room.stats();
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const FORGED = 600;
    try {
      for (let i = 0; i < FORGED; i += 30) {
        await Promise.all(
          ports.flatMap((port) =>
            ssrcs.map(
              (ssrc, k) =>
                new Promise<void>((res) => {
                  // A well-formed RTP header (PT 111, the audio-level extension) + noise payload + a random 10-byte tag.
                  const b = Buffer.concat([Buffer.alloc(20), randomBytes(60 + 10)]);
                  b[0] = 0x90;
                  b[1] = 111;
                  b.writeUInt16BE((i * 7 + k) & 0xffff, 2);
                  b.writeUInt32BE((i * 960) >>> 0, 4);
                  b.writeUInt32BE(ssrc, 8);
                  b.writeUInt16BE(0xbede, 12);
                  b.writeUInt16BE(1, 14);
                  b[16] = 0x10;
                  b[17] = 0;
                  sock.send(b, port, '127.0.0.1', () => res());
                }),
            ),
          ),
        );
        await sleep(5);
      }
    } finally {
      sock.close();
    }
    await sleep(300);
    const after = h.room.stats();
    expect(after.participants).toBe(3);
    // Real traffic is ~50 packets/s per publisher; the 600 forged ones per port were not counted as media.
    expect((after.packetsIn - before.packetsIn) / 3).toBeLessThan(FORGED / 4);
    for (const c of h.clients.values()) c.clearRecordings();
    await everyoneHearsEveryone(h, 0.5);
    expectCleanTones(h);
    expect(h.errors).toEqual([]);
  }, 30_000);
});

describe('config media.fastSrtp', () => {
  it('defaults on, VOXLINK_FAST_SRTP=false turns it off, and the media plane passes it to the rooms', () => {
    expect(loadConfig({ env: {} }).media.fastSrtp).toBe(true);
    const off = loadConfig({ env: { VOXLINK_FAST_SRTP: 'false' } });
    expect(off.media.fastSrtp).toBe(false);
    expect(mediaPlaneOptionsFromConfig(off.media).room.fastSrtp).toBe(false);
  });
});

describe('fast path off (media.fastSrtp false): werift sends, as before', () => {
  let h: RoomHarness;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'slow', slots: 3, fastSrtp: false, ...portRange(45400) });
    await toneRoom(h);
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('tones decode and no packet took the fast path', () => {
    expectCleanTones(h);
    const s = h.room.stats();
    expect(s.packetsOut).toBeGreaterThan(100);
    expect(s.packetsOutFast).toBe(0);
  });
});

describe('fast path: Chromium decodes our SRTP', () => {
  let h: RoomHarness;
  let chrome: ChromiumPeer;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'fast-chrome', slots: 3, ...portRange(45600) });
    chrome = await openChromiumPeer(h, 'chrome');
    // The werift clients only speak: everything the room sends goes to Chromium.
    for (const id of Object.keys(TONES)) await h.join(id, SPEAKER);
    await h.room.join({ roomId: 'fast-chrome', participantId: 'chrome', name: 'Chromium', grants: FULL_GRANTS });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]!));
  }, 60_000);

  afterAll(async () => {
    await chrome?.close();
    await h?.close();
  });

  it('negotiates SRTP_AES128_CM_HMAC_SHA1_80, receives the three tones, all sent on the fast path', async () => {
    expect(await chrome.receiving(20_000)).toBeGreaterThanOrEqual(20_000);
    const cipher = await chrome.call(async (api) => {
      const stats = await (api as unknown as { client: { pc: RTCPeerConnection } }).client.pc.getStats();
      let c: string | null = null;
      stats.forEach((s: { type: string; srtpCipher?: string }) => {
        if (s.type === 'transport' && s.srtpCipher !== undefined) c = s.srtpCipher;
      });
      return c;
    }, null);
    expect(cipher).toBe('SRTP_AES128_CM_HMAC_SHA1_80');
    const slots = await chrome.call((api) => api.slots(), null);
    expect([...slots].sort()).toEqual(['a', 'b', 'c']);
    const freqs = slots.map((id) => TONES[id!]!);
    const levels = (await chrome.call((api, f) => api.measure(f), freqs)) as number[][];
    slots.forEach((id, slot) => {
      const own = levels[slot]![slot]!;
      expect(own, `slot ${slot} (${id}) level`).toBeGreaterThan(-60);
      levels[slot]!.forEach((other, j) => {
        if (j !== slot) expect(own - other, `slot ${slot}: ${id} vs ${slots[j]}`).toBeGreaterThan(20);
      });
    });
    const s = h.room.stats();
    expect(s.packetsOut).toBeGreaterThan(100);
    expect(s.packetsOutFast ?? 0).toBeGreaterThan(s.packetsOut * 0.95);
    expect(h.errors).toEqual([]);
  });
});
