import { describe, expect, it } from 'vitest';
import { OpusApplication, OpusDecoder, OpusEncoder, type OpusSampleRate } from '../../src/codec/index.ts';
import { bestDelay, channelOf, dominantFrequency, powerAt, snrDb, toFloat32, toInt16, toneFloat32 } from './signal.ts';
import { decodeAll, encodeAll } from './stream.ts';

// A tone through encoder → decoder must come out at the same pitch, in the right channel, and
// close to the (codec-delayed) input waveform. Thresholds sit well below what libopus 1.5 reaches
// (measured: 24–42 dB) and far above what a broken binding (wrong rate, channel swap, garbage) gives.
const cases: { rate: OpusSampleRate; channels: 1 | 2; bitrate: number; application: OpusApplication; minSnr: number }[] = [
  { rate: 8000, channels: 1, bitrate: 16000, application: OpusApplication.VOIP, minSnr: 15 },
  { rate: 16000, channels: 1, bitrate: 24000, application: OpusApplication.VOIP, minSnr: 15 },
  { rate: 16000, channels: 2, bitrate: 32000, application: OpusApplication.VOIP, minSnr: 12 },
  { rate: 48000, channels: 1, bitrate: 32000, application: OpusApplication.VOIP, minSnr: 12 },
  { rate: 48000, channels: 2, bitrate: 64000, application: OpusApplication.AUDIO, minSnr: 20 },
  { rate: 48000, channels: 1, bitrate: 128000, application: OpusApplication.AUDIO, minSnr: 30 },
  { rate: 48000, channels: 2, bitrate: 128000, application: OpusApplication.RESTRICTED_LOWDELAY, minSnr: 25 },
];

describe('Opus tone round trip', () => {
  for (const { rate, channels, bitrate, application, minSnr } of cases) {
    it(`${rate} Hz ${channels === 1 ? 'mono' : 'stereo'} ${bitrate / 1000} kbps app ${application}`, () => {
      const encoder = new OpusEncoder({ sampleRate: rate, channels, bitrate, application });
      const decoder = new OpusDecoder({ sampleRate: rate, channels });
      try {
        // Left 440 Hz, right 660 Hz: a swapped or collapsed channel shows up as the wrong pitch.
        const input = toneFloat32(440, rate, rate, { channels, rightFreq: 660 });
        const output = decodeAll(decoder, encodeAll(encoder, input));
        expect(output.length).toBe(input.length);
        const left = channelOf(input, channels, 0);
        const outLeft = channelOf(output, channels, 0);
        expect(dominantFrequency(outLeft, rate)).toBeCloseTo(440, -1);
        const delay = bestDelay(left, outLeft, 0, encoder.lookahead + 8);
        expect(snrDb(left, outLeft, delay, rate / 10)).toBeGreaterThan(minSnr);
        if (channels === 2) {
          const right = channelOf(output, 2, 1);
          expect(dominantFrequency(right, rate)).toBeCloseTo(660, -1);
          expect(powerAt(right.subarray(rate / 2), rate, 660)).toBeGreaterThan(50 * powerAt(right.subarray(rate / 2), rate, 440));
        }
      } finally {
        encoder.close();
        decoder.close();
      }
    });
  }

  it('int16 in and out (encode(Int16Array), decode16) carries the tone', () => {
    const encoder = new OpusEncoder({ sampleRate: 16000, bitrate: 24000 });
    const decoder = new OpusDecoder({ sampleRate: 16000 });
    const input = toInt16(toneFloat32(1000, 16000, 16000));
    const out = new Int16Array(input.length);
    for (let i = 0; i < input.length; i += 320) out.set(decoder.decode16(encoder.encode(input.subarray(i, i + 320))), i);
    expect(dominantFrequency(toFloat32(out), 16000)).toBeCloseTo(1000, -1);
    expect(snrDb(toFloat32(input), toFloat32(out), encoder.lookahead, 1600)).toBeGreaterThan(15);
    encoder.close();
    decoder.close();
  });

  it('encodes 10 ms and 60 ms frames through encode(), and decodes at another rate', () => {
    const encoder = new OpusEncoder({ sampleRate: 48000, bitrate: 48000, application: OpusApplication.AUDIO });
    const decoder = new OpusDecoder({ sampleRate: 16000 });
    const input = toneFloat32(500, 48000, 48000);
    const chunks: Float32Array[] = [];
    let i = 0;
    for (const size of [480, 2880]) {
      for (let k = 0; k < 8; k++, i += size) {
        const packet = encoder.encode(input.subarray(i, i + size));
        expect(decoder.packetSamples(packet)).toBe(size / 3);
        chunks.push(decoder.decode(packet).slice());
      }
    }
    const out = Float32Array.from(chunks.flatMap((c) => Array.from(c)));
    expect(out.length).toBe(i / 3);
    expect(dominantFrequency(out, 16000)).toBeCloseTo(500, -1);
    encoder.close();
    decoder.close();
  });

  it('the decoder ends in the same range-coder state as the encoder (bit-exact stream)', () => {
    const encoder = new OpusEncoder({ sampleRate: 48000, channels: 2, bitrate: 96000, application: OpusApplication.AUDIO });
    const decoder = new OpusDecoder({ sampleRate: 48000, channels: 2 });
    const input = toneFloat32(300, 48000, 9600, { channels: 2, rightFreq: 900 });
    for (let i = 0; i < input.length; i += 1920) {
      decoder.decodeInto(encoder.encode(input.subarray(i, i + 1920)), new Float32Array(1920));
      expect(decoder.finalRange).toBe(encoder.finalRange);
    }
    encoder.close();
    decoder.close();
  });
});
