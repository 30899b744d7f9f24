import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import type { ReceivedPacket } from '../../src/client/media/node-media-client.ts';
import { isVoxError } from '../../src/errors.ts';
import { dominantFrequency, powerAt } from '../codec/signal.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, waitFor } from '../media/harness.ts';

const SR = 48_000;
/** A 0.3-amplitude sine has power 0.045; through Opus or G.711 and the mixer most of it stays. */
const PRESENT = 0.01;
const ABSENT = 0.0005;

/** Median power of `freq` over 100 ms windows: robust to the phase jumps a concealed frame leaves. */
function power(pcm: Float32Array, freq: number): number {
  const w = SR / 10;
  const powers: number[] = [];
  for (let i = 0; i + w <= pcm.length; i += w) powers.push(powerAt(pcm.subarray(i, i + w), SR, freq));
  powers.sort((a, b) => a - b);
  return powers[Math.floor(powers.length / 2)] ?? 0;
}

describe('a mix room with an Opus speaker and a PCMU-only telephony peer (werift)', () => {
  let h: RoomHarness;
  const phonePackets: ReceivedPacket[] = [];

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'mix', mode: 'mix', ...portRange(43000) });
    await h.join('web');
    const phone = await h.join('phone', FULL_GRANTS, { audioCodec: 'pcmu' });
    await h.join('ear', { ...FULL_GRANTS, publish: false });
    phone.on('rtp', (p) => {
      if (phonePackets.length < 200) phonePackets.push({ ...p, payload: Buffer.from(p.payload) });
    });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    h.clients.get('web')!.publish(new ToneSource(440));
    phone.publish(new ToneSource(660));
    // The mix track carries silence from the moment the peer connects; count from the tones on.
    for (const c of h.clients.values()) c.clearRecordings();
    await waitFor(
      () => [...h.clients.values()].every((c) => c.audioOfSlot(0).length >= 2.5 * SR),
      20_000,
      '2.5 s of mixed audio at every client',
    );
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('offers one outgoing audio track per subscriber: the mix', () => {
    for (const c of h.clients.values()) {
      expect(c.slotCount).toBe(1);
      expect(c.mixSlot).toBe(0);
    }
  });

  it('the PCMU peer hears the Opus speaker’s tone after μ-law decoding, not its own', () => {
    const phone = h.clients.get('phone')!;
    const pcm = phone.audioOfSlot(0, 1.5);
    expect(power(pcm, 440)).toBeGreaterThan(PRESENT);
    expect(power(pcm, 660)).toBeLessThan(ABSENT);
    expect(dominantFrequency(pcm, SR)).toBeCloseTo(440, -1);
    // What arrives is G.711 on the 8 kHz clock: 160 bytes and +160 per 20 ms, one continuous stream.
    // Only a stalled mixer clock (ticks skipped on a starved host) may add whole frames to a step.
    expect(phonePackets.length).toBeGreaterThan(50);
    for (const p of phonePackets) expect(p.payload.length).toBe(160);
    let extraFrames = 0;
    for (let i = 1; i < phonePackets.length; i++) {
      expect(phonePackets[i]!.sequenceNumber).toBe((phonePackets[i - 1]!.sequenceNumber + 1) & 0xffff);
      const step = (phonePackets[i]!.timestamp - phonePackets[i - 1]!.timestamp) >>> 0;
      expect(step % 160).toBe(0);
      expect(step).toBeGreaterThanOrEqual(160);
      extraFrames += step / 160 - 1;
    }
    expect(extraFrames).toBeLessThanOrEqual(h.room.stats().mix!.clock.skippedTicks);
  });

  it('the Opus speaker hears the PCMU peer’s tone, and a listener hears both', () => {
    const web = h.clients.get('web')!.audioOfSlot(0, 1.5);
    expect(power(web, 660)).toBeGreaterThan(PRESENT);
    expect(power(web, 440)).toBeLessThan(ABSENT);
    expect(dominantFrequency(web, SR)).toBeCloseTo(660, -1);
    const ear = h.clients.get('ear')!.audioOfSlot(0, 1.5);
    expect(power(ear, 440)).toBeGreaterThan(PRESENT);
    expect(power(ear, 660)).toBeGreaterThan(PRESENT);
    const stats = h.room.stats();
    expect(stats.mix?.mixer.speakers).toBe(2);
    expect(stats.packetsOut).toBeGreaterThan(0);
    expect(h.errors).toEqual([]);
  });

  it('stops mixing when the last participant leaves', async () => {
    for (const id of [...h.clients.keys()]) await h.leave(id);
    const ticks = h.room.stats().mix!.clock.ticks;
    await sleep(200);
    expect(h.room.stats().mix!.clock.ticks).toBe(ticks);
    expect(h.room.stats().mix!.participants).toBe(0);
  });
});

describe('a hybrid room (K = 1): the loudest Opus speaker in the slot, everyone else in the mix', () => {
  let h: RoomHarness;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'hybrid', mode: 'hybrid', slots: 1, ...portRange(43200) });
    for (const id of ['a', 'b', 'c']) await h.join(id);
    await h.join('ear', { ...FULL_GRANTS, publish: false });
    await h.join('tel', FULL_GRANTS, { audioCodec: 'pcmu' });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    h.clients.get('a')!.publish(new ToneSource(440, { gain: 0.5 }));
    h.clients.get('b')!.publish(new ToneSource(660, { gain: 0.2 }));
    h.clients.get('c')!.publish(new ToneSource(880, { gain: 0.2 }));
    // The loudest of all, but G.711: never a slot (Opus subscribers could not decode it), always mixed.
    h.clients.get('tel')!.publish(new ToneSource(1200, { gain: 0.6 }));
    const ear = h.clients.get('ear')!;
    const tel = h.clients.get('tel')!;
    await waitFor(() => ear.slotMap.occupant(0) === 'a' && tel.slotMap.occupant(0) === 'a', 10_000, 'a in the slot');
    ear.clearRecordings();
    tel.clearRecordings();
    await waitFor(
      () => [ear, tel].every((c) => c.audioOfSlot(1).length >= 2.5 * SR && c.audioFrom('a').length >= 2.5 * SR),
      20_000,
      'slot and mix audio',
    );
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('a listener gets K slots plus the mix track; the slot carries a, the mix the others but not a', () => {
    const ear = h.clients.get('ear')!;
    expect(ear.slotCount).toBe(2);
    expect(ear.mixSlot).toBe(1);
    expect(power(ear.audioFrom('a', 1.5), 440)).toBeGreaterThan(PRESENT * 2);
    const mix = ear.audioOfSlot(1, 1.5);
    // 0.2-amplitude tones have power 0.02.
    expect(power(mix, 660)).toBeGreaterThan(PRESENT / 2);
    expect(power(mix, 880)).toBeGreaterThan(PRESENT / 2);
    expect(power(mix, 1200)).toBeGreaterThan(PRESENT);
    expect(power(mix, 440)).toBeLessThan(ABSENT);
    expect(h.room.stats().mix?.forwarded).toBe(1);
  });

  it('the slot speaker hears the others once: an empty slot (no speaker K+1 there) and all of them in the mix', async () => {
    const a = h.clients.get('a')!;
    expect(a.slotMap.occupant(0)).toBeNull();
    a.clearRecordings();
    await waitFor(() => a.audioOfSlot(1).length >= 1.5 * SR, 10_000, "a's mix");
    // Before this fix b (rank 2) sat in a's slot and was in the mix too: heard twice, an echo.
    expect(power(a.audioOfSlot(0), 660)).toBeLessThan(ABSENT);
    const mix = a.audioOfSlot(1, 1.5);
    expect(power(mix, 660)).toBeGreaterThan(PRESENT / 2);
    expect(power(mix, 880)).toBeGreaterThan(PRESENT / 2);
    expect(power(mix, 440)).toBeLessThan(ABSENT);
  });

  it('a PCMU-only peer hears the slot transcoded to μ-law and the mix without its own voice', () => {
    const tel = h.clients.get('tel')!;
    expect(tel.slotCount).toBe(2);
    const slot = tel.audioFrom('a', 1.5);
    expect(power(slot, 440)).toBeGreaterThan(PRESENT * 2);
    expect(dominantFrequency(slot, SR)).toBeCloseTo(440, -1);
    const mix = tel.audioOfSlot(1, 1.5);
    expect(power(mix, 660)).toBeGreaterThan(PRESENT / 2);
    expect(power(mix, 880)).toBeGreaterThan(PRESENT / 2);
    expect(power(mix, 440)).toBeLessThan(ABSENT);
    expect(power(mix, 1200)).toBeLessThan(ABSENT);
    expect(tel.slotStats(0)!.seqGaps).toBe(0);
    expect(h.errors).toEqual([]);
  });
});

describe('an sfu room where one subscriber on a weak link asks for a single mixed stream', () => {
  let h: RoomHarness;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'weak', mode: 'sfu', slots: 3, ...portRange(43600) });
    for (const id of ['a', 'b']) await h.join(id);
    await h.join('weak', { ...FULL_GRANTS, publish: false });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    h.clients.get('a')!.publish(new ToneSource(440));
    h.clients.get('b')!.publish(new ToneSource(660));
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('gets one track carrying both speakers; nobody else is renegotiated and a still hears b', async () => {
    const weak = h.clients.get('weak')!;
    const a = h.clients.get('a')!;
    const offersOfA = a.offersReceived;
    expect(weak.mixSlot).toBeNull();
    weak.setAudioLayout('mix');
    await waitFor(() => weak.restartOffers === 1 && weak.mixSlot === 0, 10_000, 'the mix-only offer');
    await weak.connected();
    weak.clearRecordings();
    a.clearRecordings();
    await waitFor(() => weak.audioOfSlot(0).length >= 2.5 * SR && a.audioFrom('b').length >= 1.5 * SR, 20_000, 'mixed audio');
    const mix = weak.audioOfSlot(0, 1.5);
    expect(power(mix, 440)).toBeGreaterThan(PRESENT);
    expect(power(mix, 660)).toBeGreaterThan(PRESENT);
    expect(power(a.audioFrom('b', 1), 660)).toBeGreaterThan(PRESENT);
    expect(a.offersReceived).toBe(offersOfA);
    expect(h.room.stats().mix?.mode).toBe('mix');

    // Back to slots: the room's mixer goes away with its last listener.
    weak.setAudioLayout('slots');
    await waitFor(() => weak.restartOffers === 2, 10_000, 'the slots offer');
    await waitFor(() => h.room.stats().mix === undefined, 5_000, 'the mixer to close');
    expect(weak.mixSlot).toBeNull();
    expect(h.errors).toEqual([]);
  });

  it('a hybrid room refuses a mix-only layout with MEDIA_UNSUPPORTED', async () => {
    const hybrid = new RoomHarness({ roomId: 'hy2', mode: 'hybrid', slots: 1, ...portRange(43800, 20) });
    try {
      await hybrid.join('x');
      const error = await hybrid.room
        .signal('x', { op: 'media', room: 'hy2', kind: 'ice_restart', options: { audio: 'mix' } })
        .catch((e: unknown) => e);
      expect(isVoxError(error, 'MEDIA_UNSUPPORTED')).toBe(true);
    } finally {
      await hybrid.close();
    }
  });
});
