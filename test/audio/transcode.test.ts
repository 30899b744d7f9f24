import { describe, expect, it } from 'vitest';
import { Transcoder } from '../../src/media/transcode.ts';
import { RoomMixer } from '../../src/media/mix.ts';
import { createMixCodecs } from '../../src/media/mix-codecs.ts';
import { g711DecodeFloat, g711EncodeFloat } from '../../src/codec/g711.ts';
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
