import { describe, expect, it } from 'vitest';
import {
  alawDecodeSample,
  alawEncodeSample,
  g711DecodeFloat,
  g711DecodeInt16,
  g711EncodeFloat,
  g711EncodeInt16,
  ulawDecodeSample,
  ulawEncodeSample,
} from '../../src/codec/g711.ts';
import { Downsampler48to8, Upsampler8to48 } from '../../src/codec/resample.ts';
import { dominantFrequency, powerAt, toneFloat32 } from '../codec/signal.ts';

describe('G.711 μ-law (PCMU)', () => {
  it('maps the standard reference points', () => {
    // ITU-T G.711 table 2a/2b: zero is 0xFF (0x7F is "negative zero"), full scale ±8031 in 14-bit
    // units, i.e. ±32124 in 16-bit linear.
    expect(ulawEncodeSample(0)).toBe(0xff);
    expect(ulawDecodeSample(0xff)).toBe(0);
    expect(ulawDecodeSample(0x7f)).toBe(0);
    expect(ulawDecodeSample(0x80)).toBe(32124);
    expect(ulawDecodeSample(0x00)).toBe(-32124);
    expect(ulawEncodeSample(32767)).toBe(0x80);
    expect(ulawEncodeSample(-32768)).toBe(0x00);
    // First segment boundaries: code 0xEF is the first step of segment 1 (decision value 31·4 + …).
    expect(ulawDecodeSample(0xfe)).toBe(8);
    expect(ulawDecodeSample(0xf0)).toBe(120);
    expect(ulawDecodeSample(0xef)).toBe(132);
  });

  it('re-encodes every decoded code to itself and decodes monotonically', () => {
    for (let code = 0; code < 256; code++) {
      if (code === 0x7f) continue;
      expect(ulawEncodeSample(ulawDecodeSample(code))).toBe(code);
    }
    for (let code = 0x80; code < 0xff; code++) expect(ulawDecodeSample(code)).toBeGreaterThan(ulawDecodeSample(code + 1));
  });
});

describe('G.711 A-law (PCMA)', () => {
  it('maps the standard reference points', () => {
    // A-law has no zero code: the smallest magnitudes are ±8 (0xD5 / 0x55, even bits inverted).
    expect(alawEncodeSample(0)).toBe(0xd5);
    expect(alawEncodeSample(-1)).toBe(0x55);
    expect(alawDecodeSample(0xd5)).toBe(8);
    expect(alawDecodeSample(0x55)).toBe(-8);
    expect(alawDecodeSample(0xaa)).toBe(32256);
    expect(alawDecodeSample(0x2a)).toBe(-32256);
    expect(alawEncodeSample(32767)).toBe(0xaa);
    expect(alawEncodeSample(-32768)).toBe(0x2a);
  });

  it('re-encodes every decoded code to itself', () => {
    for (let code = 0; code < 256; code++) expect(alawEncodeSample(alawDecodeSample(code))).toBe(code);
  });
});

describe('G.711 frames', () => {
  for (const law of ['pcmu', 'pcma'] as const) {
    it(`${law}: a full-scale tone keeps ≥ 35 dB SNR (companding quantisation) and saturates, never wraps`, () => {
      const tone = toneFloat32(1000, 8000, 8000, { amplitude: 0.9 });
      const bytes = new Uint8Array(tone.length);
      g711EncodeFloat(law, tone, bytes);
      const back = new Float32Array(tone.length);
      g711DecodeFloat(law, bytes, back);
      let noise = 0;
      let signal = 0;
      for (let i = 0; i < tone.length; i++) {
        signal += tone[i]! ** 2;
        noise += (tone[i]! - back[i]!) ** 2;
      }
      expect(10 * Math.log10(signal / noise)).toBeGreaterThan(35);

      const over = Float32Array.from([1.5, -1.5, 1, -1]);
      const overBytes = new Uint8Array(4);
      g711EncodeFloat(law, over, overBytes);
      const overBack = new Int16Array(4);
      g711DecodeInt16(law, overBytes, overBack);
      expect(overBack[0]).toBeGreaterThan(32000);
      expect(overBack[1]).toBeLessThan(-32000);

      const int16 = Int16Array.from([0, 1000, -1000, 32767, -32768]);
      const intBytes = new Uint8Array(5);
      g711EncodeInt16(law, int16, intBytes);
      const intBack = new Int16Array(5);
      g711DecodeInt16(law, intBytes, intBack);
      expect(Math.abs(intBack[1]! - 1000)).toBeLessThan(40);
      expect(Math.abs(intBack[2]! + 1000)).toBeLessThan(40);
    });
  }
});

describe('8 kHz ↔ 48 kHz resampling', () => {
  it('keeps a telephone-band tone and rejects what would alias', () => {
    const up = new Upsampler8to48();
    const down = new Downsampler48to8();
    const narrow = toneFloat32(1000, 8000, 8000, { amplitude: 0.5 });
    const wide = new Float32Array(48_000);
    for (let f = 0; f < 50; f++) up.process(narrow.subarray(f * 160, f * 160 + 160), wide.subarray(f * 960, f * 960 + 960));
    expect(Math.abs(dominantFrequency(wide, 48_000) - 1000)).toBeLessThan(5);
    expect(powerAt(wide.subarray(4800), 48_000, 1000)).toBeGreaterThan(0.11);
    // The image at 8 kHz − 1 kHz = 7 kHz must be ≥ 50 dB down.
    expect(powerAt(wide.subarray(4800), 48_000, 7000)).toBeLessThan(0.125 * 1e-5);

    const high = toneFloat32(6000, 48_000, 48_000, { amplitude: 0.5 });
    const low = toneFloat32(1000, 48_000, 48_000, { amplitude: 0.5 });
    const outHigh = new Float32Array(8000);
    const outLow = new Float32Array(8000);
    const down2 = new Downsampler48to8();
    for (let f = 0; f < 50; f++) {
      down.process(high.subarray(f * 960, f * 960 + 960), outHigh.subarray(f * 160, f * 160 + 160));
      down2.process(low.subarray(f * 960, f * 960 + 960), outLow.subarray(f * 160, f * 160 + 160));
    }
    // 6 kHz would alias to 2 kHz at 8 kHz sampling: the filter must remove it.
    expect(powerAt(outHigh.subarray(800), 8000, 2000)).toBeLessThan(0.125 * 1e-5);
    expect(powerAt(outLow.subarray(800), 8000, 1000)).toBeGreaterThan(0.11);
  });
});
