import { describe, expect, it } from 'vitest';
import { OpusApplication, OpusBandwidth, OpusDecoder, OpusEncoder, type OpusSampleRate } from '../../src/codec/index.ts';
import { bestDelay, dominantFrequency, snrDb, speechLikeFloat32, toneFloat32 } from './signal.ts';
import { decodeAll, encodeAll } from './stream.ts';

// SILK through the module's own SIMD code (wasm/patches 0003–0006): the delayed-decision noise
// shaping quantiser runs with 2 states at complexity 2–5, 3 at 6–7 and 4 at 8–10 (complexity 0–1
// use Opus's quantiser without delayed decision), and decoding to 48 kHz goes through the SIMD
// resampler FIR.
// Bit-exactness against Opus's C code is checked by `./emsdk-build.sh --conformance` (CI); these
// check that the audio is right at every state count. Measured on this build: tone 24–30 dB,
// speech-like 9–11 dB, rising with complexity; the thresholds leave room for other builds.
const complexities = [0, 2, 5, 6, 8, 10];

function roundTrip(rate: OpusSampleRate, complexity: number, input: Float32Array, bitrate: number) {
  const encoder = new OpusEncoder({
    sampleRate: rate,
    bitrate,
    application: OpusApplication.VOIP,
    complexity,
    maxBandwidth: OpusBandwidth.WIDEBAND,
  });
  const decoder = new OpusDecoder({ sampleRate: rate });
  try {
    const packets = encodeAll(encoder, input);
    const output = decodeAll(decoder, packets);
    const delay = bestDelay(input, output, 0, encoder.lookahead + 8);
    return { packets, output, snr: snrDb(input, output, delay, rate / 2) };
  } finally {
    encoder.close();
    decoder.close();
  }
}

/** SILK-only packets have TOC configurations 0–11. */
const allSilk = (packets: Uint8Array[]): boolean => packets.every((p) => p[0] >> 3 < 12);

describe('SILK encode and decode at every quantiser configuration', () => {
  for (const rate of [16000, 48000] as const) {
    it(`${rate / 1000} kHz tone: right pitch and ≥ 18 dB SNR at complexity ${complexities.join(', ')}`, () => {
      const input = toneFloat32(330, rate, rate * 2);
      for (const complexity of complexities) {
        const { packets, output, snr } = roundTrip(rate, complexity, input, 16000);
        expect(allSilk(packets), `complexity ${complexity}: SILK-only packets`).toBe(true);
        expect(dominantFrequency(output.subarray(rate / 2), rate), `complexity ${complexity}`).toBeCloseTo(330, -1);
        expect(snr, `complexity ${complexity}`).toBeGreaterThan(18);
      }
    });

    it(`${rate / 1000} kHz speech-like signal: ≥ 6 dB SNR, and delayed decision not worse than none`, () => {
      const input = speechLikeFloat32(rate, 3);
      const snrs = complexities.map((complexity) => {
        const { packets, snr } = roundTrip(rate, complexity, input, 20000);
        expect(allSilk(packets), `complexity ${complexity}: SILK-only packets`).toBe(true);
        expect(snr, `complexity ${complexity}`).toBeGreaterThan(6);
        return snr;
      });
      // complexity 0 quantises without delayed decision; 8–10 keep four candidate states, which
      // must not lose to it (a broken state update or winner selection would).
      expect(snrs[complexities.indexOf(10)]).toBeGreaterThan(snrs[0] - 0.5);
      expect(snrs[complexities.indexOf(8)]).toBeGreaterThan(snrs[0] - 0.5);
    });
  }
});
