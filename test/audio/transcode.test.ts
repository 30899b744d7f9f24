import { describe, expect, it } from 'vitest';
import { Transcoder } from '../../src/media/transcode.ts';
import { RoomMixer } from '../../src/media/mix.ts';
import { createMixCodecs } from '../../src/media/mix-codecs.ts';
import { g711DecodeFloat, g711EncodeFloat } from '../../src/codec/g711.ts';
import { OpusDecoder } from '../../src/codec/opus.ts';
import { dominantFrequency, toneFloat32 } from '../codec/signal.ts';
import { decodeCapture, goertzel, network, opusStream, runRoom, type SentPacket } from './harness.ts';

/** A μ-law RTP stream (8 kHz clock, 160 bytes per 20 ms) of `pcm8k`. */
function pcmuStream(pcm8k: Float32Array): SentPacket[] {
  const out: SentPacket[] = [];
  for (let f = 0; (f + 1) * 160 <= pcm8k.length; f++) {
    const payload = new Uint8Array(160);
    g711EncodeFloat('pcmu', pcm8k.subarray(f * 160, (f + 1) * 160), payload);
    out.push({ payload, seq: (1000 + f) & 0xffff, ts: (5000 + f * 160) >>> 0, sendMs: f * 20 });
  }
  return out;
}

describe('Transcoder (one forwarded stream, per subscriber format)', () => {
  it('carries a PCMU tone to an Opus listener at the right frequency, on the 48 kHz RTP clock', () => {
    const t = new Transcoder({ from: 'pcmu', to: 'normal' });
    expect(t.pcmRate).toBe(8000); // G.711 side: an 8 kHz Opus encoder, no resampler of ours
    const opus: { payload: Uint8Array; seq: number; ts: number }[] = [];
    for (const p of pcmuStream(toneFloat32(700, 8000, 8000, { amplitude: 0.4 }))) {
      for (const o of t.process(p.payload, p.seq, p.ts)) opus.push({ payload: o.payload.slice(), seq: o.sequenceNumber, ts: o.timestamp });
    }
    t.close();
    expect(opus).toHaveLength(50);
    for (let i = 1; i < opus.length; i++) {
      expect(opus[i]!.seq).toBe(opus[i - 1]!.seq + 1);
      expect(opus[i]!.ts).toBe((opus[i - 1]!.ts + 960) >>> 0);
    }
    const heard = decodeCapture({ packets: opus.map((o) => ({ ...o, source: null })) });
    expect(Math.abs(dominantFrequency(heard, 48_000) - 700)).toBeLessThan(10);
    expect(goertzel(heard.subarray(9600), 48_000, 700)).toBeGreaterThan(0.04);
  });

  it('carries an Opus tone to a PCMU listener (8 kHz decode) and rebuilds one lost packet from FEC', () => {
    const t = new Transcoder({ from: 'opus', to: 'pcmu' });
    const sent = opusStream(toneFloat32(1000, 48_000, 48_000, { amplitude: 0.4 }), { fec: true, lossPerc: 10 });
    const received: { payload: Uint8Array; seq: number; ts: number; recovered: boolean }[] = [];
    sent.forEach((p, i) => {
      if (i === 20) return; // lost on the way in
      for (const o of t.process(p.payload, p.seq, p.ts)) {
        received.push({ payload: o.payload.slice(), seq: o.sequenceNumber, ts: o.timestamp, recovered: o.recovered });
      }
    });
    t.close();
    expect(received).toHaveLength(50);
    expect(received[20]!.recovered).toBe(true);
    expect(t.toJSON().fecRecovered).toBe(1);
    for (let i = 1; i < received.length; i++) {
      expect(received[i]!.seq).toBe((received[i - 1]!.seq + 1) & 0xffff);
      expect(received[i]!.ts).toBe((received[i - 1]!.ts + 160) >>> 0);
      expect(received[i]!.payload).toHaveLength(160);
    }
    const pcm = new Float32Array(8000);
    received.forEach((r, i) => g711DecodeFloat('pcmu', r.payload, pcm.subarray(i * 160, i * 160 + 160)));
    expect(Math.abs(dominantFrequency(pcm, 8000) - 1000)).toBeLessThan(10);
    expect(goertzel(pcm.subarray(1600), 8000, 1000)).toBeGreaterThan(0.04);
  });
});

/**
 * A subscriber of `t`'s output losing packets `lost` (a burst), rebuilding what it can from the
 * DRED of the first packet after the burst, as the Node SDK's jitter buffer does. Returns how far
 * back the DRED reached (samples at 48 kHz) and the rebuilt audio of the lost frames.
 */
function dredAfterBurst(t: Transcoder, sent: SentPacket[], lost: Set<number>): { reach: number; rebuilt: Float32Array } {
  const out: Uint8Array[] = [];
  for (const p of sent) for (const o of t.process(p.payload, p.seq, p.ts)) out.push(o.payload.slice());
  t.close();
  const first = Math.min(...lost);
  const after = Math.max(...lost) + 1;
  const decoder = new OpusDecoder({ sampleRate: 48_000, channels: 1 });
  try {
    for (let i = 0; i < first; i++) decoder.decode(out[i]!);
    const reach = decoder.parseDred(out[after]!);
    if (reach < (after - first) * 960) return { reach, rebuilt: new Float32Array(0) };
    const rebuilt = new Float32Array((after - first) * 960);
    for (let i = first; i < after; i++) rebuilt.set(decoder.decodeDred((after - i) * 960, 960), (i - first) * 960);
    return { reach, rebuilt };
  } finally {
    decoder.close();
  }
}

describe('Transcoder with DRED (issue: audio that survives bad networks)', () => {
  it('an Opus → low-profile transcode with dred carries DRED that rebuilds a 40 ms burst; the plain one carries none', () => {
    const sent = opusStream(toneFloat32(600, 48_000, 96_000, { amplitude: 0.4 }));
    // The DRED variant codes at ≥ 24 kb/s, where libopus 1.5.2 reaches back 55 ms: two frames.
    const burst = new Set([60, 61]);
    const withDred = new Transcoder({ from: 'opus', to: 'low', dred: true });
    expect(withDred.dred).toBe(true);
    const dred = dredAfterBurst(withDred, sent, burst);
    const plain = dredAfterBurst(new Transcoder({ from: 'opus', to: 'low' }), sent, burst);
    expect(plain.reach, 'no DRED without the option').toBe(0);
    expect(dred.reach, 'DRED reaches over the whole burst').toBeGreaterThanOrEqual(2 * 960);
    // DRED is a speech vocoder: a pure tone comes back quieter and a few % off pitch (measured
    // 578 Hz, RMS 0.05 against 0.28), so the check is "the tone, audible", not a matched filter.
    let sum = 0;
    for (const x of dred.rebuilt) sum += x * x;
    expect(Math.sqrt(sum / dred.rebuilt.length), 'the rebuilt frames are not silence').toBeGreaterThan(0.02);
    expect(Math.abs(dominantFrequency(dred.rebuilt, 48_000) - 600), "the rebuilt frames carry the source's tone").toBeLessThan(60);
  });

  it('dred is ignored where libopus writes none: from G.711 (an 8 kHz encoder) and toward G.711', () => {
    const fromPhone = new Transcoder({ from: 'pcmu', to: 'normal', dred: true });
    expect(fromPhone.dred).toBe(false);
    const r = dredAfterBurst(fromPhone, pcmuStream(toneFloat32(500, 8000, 16_000, { amplitude: 0.4 })), new Set([50, 51]));
    expect(r.reach).toBe(0);
    const toPhone = new Transcoder({ from: 'opus', to: 'pcmu', dred: true });
    expect(toPhone.dred).toBe(false);
    toPhone.close();
  });
});

describe('G.711 peers in a mixed room', () => {
  it('mixes a PCMU voice for Opus listeners and sends the PCMU peer everyone else in PCMU', () => {
    const m = new RoomMixer({ codecs: createMixCodecs() });
    m.addInput('phone', { codec: 'pcmu', format: 'pcmu' });
    m.addInput('A');
    m.addInput('C');
    const arrivals = [
      ...network('phone', pcmuStream(toneFloat32(700, 8000, 16_000, { amplitude: 0.3 }))),
      ...network('A', opusStream(toneFloat32(440, 48_000, 96_000, { amplitude: 0.3 }))),
    ].sort((a, b) => a.arrivalMs - b.arrivalMs);
    const { captures } = runRoom(m, arrivals, 100);
    m.close();

    const c = decodeCapture(captures.get('C')!).subarray(24_000);
    expect(goertzel(c, 48_000, 700)).toBeGreaterThan(0.02);
    expect(goertzel(c, 48_000, 440)).toBeGreaterThan(0.02);

    const phonePackets = captures.get('phone')!.packets;
    expect(phonePackets.every((p) => p.payload.length === 160)).toBe(true);
    for (let i = 1; i < phonePackets.length; i++) expect(phonePackets[i]!.ts).toBe((phonePackets[i - 1]!.ts + 160) >>> 0);
    const phone = new Float32Array(phonePackets.length * 160);
    phonePackets.forEach((p, i) => g711DecodeFloat('pcmu', p.payload, phone.subarray(i * 160, i * 160 + 160)));
    const tail = phone.subarray(4000);
    expect(goertzel(tail, 8000, 440)).toBeGreaterThan(0.02);
    expect(goertzel(tail, 8000, 700)).toBeLessThan(0.045e-3); // N−1: not their own voice
  });
});
