/**
 * Small signal toolkit for codec tests and benchmarks: test tones, a speech-like signal, and
 * measurements (Goertzel power, FFT dominant frequency, SNR against a delayed reference).
 * Interleaved arrays are handled with `channelOf()`; everything else works on mono arrays.
 */

import { wavFile } from '../../src/transcription/audio.ts';

/** A 16-bit PCM mono WAV file (RIFF WAVE, 44-byte header) of `pcm` at `sampleRate`: the server's own writer. */
export function wavBytes(pcm: Int16Array, sampleRate: number): Buffer {
  return wavFile(pcm, sampleRate);
}

/** A sine of `freq` Hz, `n` samples per channel at `sampleRate`; interleaved when `channels` = 2. */
export function toneFloat32(
  freq: number,
  sampleRate: number,
  n: number,
  options: { amplitude?: number; channels?: number; phase?: number; rightFreq?: number } = {},
): Float32Array {
  const { amplitude = 0.5, channels = 1, phase = 0, rightFreq = freq } = options;
  const out = new Float32Array(n * channels);
  for (let i = 0; i < n; i++) {
    out[i * channels] = amplitude * Math.sin(phase + (2 * Math.PI * freq * i) / sampleRate);
    if (channels === 2) out[i * 2 + 1] = amplitude * Math.sin(phase + (2 * Math.PI * rightFreq * i) / sampleRate);
  }
  return out;
}

/** Float [-1, 1] to int16 with clipping. */
export function toInt16(pcm: Float32Array): Int16Array {
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(pcm[i] * 32767)));
  return out;
}

/** int16 to float [-1, 1]. */
export function toFloat32(pcm: Int16Array): Float32Array {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  return out;
}

/** One channel of an interleaved array. */
export function channelOf(pcm: Float32Array, channels: number, index: number): Float32Array {
  const out = new Float32Array(Math.floor(pcm.length / channels));
  for (let i = 0; i < out.length; i++) out[i] = pcm[i * channels + index];
  return out;
}

/** Deterministic white noise in [-amplitude, amplitude] (LCG, so runs are reproducible). */
export function noiseFloat32(n: number, options: { amplitude?: number; seed?: number } = {}): Float32Array {
  const { amplitude = 0.3 } = options;
  let seed = options.seed ?? 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[i] = (seed / 0x100000000 - 0.5) * 2 * amplitude;
  }
  return out;
}

/**
 * A speech-like mono signal: voiced "syllables" (a gliding 100–220 Hz fundamental with formant-
 * shaped harmonics) and short noisy consonants, under 4–6 Hz syllable envelopes with pauses.
 * Deterministic for a given seed. Exercises SILK/hybrid the way speech does (pitch, LPC, VAD).
 */
export function speechLikeFloat32(sampleRate: number, seconds: number, seed = 7): Float32Array {
  const n = Math.round(sampleRate * seconds);
  const out = new Float32Array(n);
  const noise = noiseFloat32(n, { amplitude: 1, seed });
  let rng = seed * 7919 + 1;
  const random = (): number => {
    rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0;
    return rng / 0x100000000;
  };
  const formants = [700, 1200, 2500];
  let phase = 0;
  let i = 0;
  let lowpassed = 0;
  while (i < n) {
    const syllable = Math.round(sampleRate * (0.16 + random() * 0.12));
    const pause = random() < 0.25 ? Math.round(sampleRate * (0.05 + random() * 0.15)) : 0;
    const f0Start = 100 + random() * 120;
    const f0End = f0Start * (0.8 + random() * 0.4);
    const consonant = random() < 0.5 ? Math.round(sampleRate * 0.03) : 0;
    const shift = 0.8 + random() * 0.4;
    for (let k = 0; k < syllable && i < n; k++, i++) {
      const t = k / syllable;
      const env = Math.sin(Math.PI * t) ** 0.7;
      if (k < consonant) {
        // Fricative: high-passed noise.
        lowpassed = 0.7 * lowpassed + 0.3 * noise[i];
        out[i] = 0.15 * (noise[i] - lowpassed);
        continue;
      }
      const f0 = f0Start + (f0End - f0Start) * t;
      phase += (2 * Math.PI * f0) / sampleRate;
      let v = 0;
      for (let h = 1; h * f0 < Math.min(4000, sampleRate / 2 - 200); h++) {
        const fh = h * f0;
        let gain = 0;
        for (const f of formants) gain += 1 / (1 + ((fh - f * shift) / 150) ** 2);
        v += (gain / h ** 0.5) * Math.sin(h * phase);
      }
      out[i] = 0.12 * env * v + 0.004 * noise[i];
    }
    for (let k = 0; k < pause && i < n; k++, i++) out[i] = 0.002 * noise[i];
  }
  return out;
}

/**
 * Power of the `freq` component (Goertzel), as the mean power of that sinusoid: a sine of
 * amplitude A gives ≈ A²/2. Pass a window length that holds whole periods for exact values.
 */
export function powerAt(pcm: Float32Array, sampleRate: number, freq: number): number {
  const n = pcm.length;
  if (n === 0) return 0;
  const w = (2 * Math.PI * freq) / sampleRate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = pcm[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const magnitude2 = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * magnitude2) / (n * n);
}

/** Mean power (mean square). */
export function meanPower(pcm: Float32Array, start = 0, end = pcm.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += pcm[i] * pcm[i];
  return end > start ? sum / (end - start) : 0;
}

/** Frequency (Hz) of the strongest spectral peak (Hann-windowed FFT, parabolic interpolation). */
export function dominantFrequency(pcm: Float32Array, sampleRate: number): number {
  let size = 1;
  while (size * 2 <= pcm.length && size < 65536) size *= 2;
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  const offset = pcm.length - size; // the end of the signal: past codec start-up transients
  for (let i = 0; i < size; i++) re[i] = pcm[offset + i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (size - 1)));
  fft(re, im);
  let best = 1;
  let bestMag = -1;
  const mags = new Float64Array(size / 2);
  for (let k = 1; k < size / 2; k++) {
    mags[k] = Math.hypot(re[k], im[k]);
    if (mags[k] > bestMag) {
      bestMag = mags[k];
      best = k;
    }
  }
  let delta = 0;
  if (best > 1 && best < size / 2 - 1) {
    const [a, b, c] = [Math.log(mags[best - 1] + 1e-12), Math.log(mags[best] + 1e-12), Math.log(mags[best + 1] + 1e-12)];
    const denominator = a - 2 * b + c;
    if (denominator !== 0) delta = (0.5 * (a - c)) / denominator;
  }
  return ((best + delta) * sampleRate) / size;
}

/** In-place iterative radix-2 FFT (length must be a power of two). */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = (-2 * Math.PI) / len;
    const wr = Math.cos(angle);
    const wi = Math.sin(angle);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const ar = re[i + k + len / 2] * cr - im[i + k + len / 2] * ci;
        const ai = re[i + k + len / 2] * ci + im[i + k + len / 2] * cr;
        re[i + k + len / 2] = re[i + k] - ar;
        im[i + k + len / 2] = im[i + k] - ai;
        re[i + k] += ar;
        im[i + k] += ai;
        const t = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = t;
      }
    }
  }
}

/**
 * SNR in dB of `out` against `ref` delayed by `delay` samples: out[i + delay] is compared with
 * ref[i]. Optional [start, end) restricts the comparison to a range of `ref` indices.
 */
export function snrDb(ref: Float32Array, out: Float32Array, delay: number, start = 0, end = ref.length): number {
  let signal = 0;
  let noise = 0;
  const last = Math.min(end, out.length - delay);
  for (let i = Math.max(start, -delay); i < last; i++) {
    const r = ref[i];
    const e = out[i + delay] - r;
    signal += r * r;
    noise += e * e;
  }
  if (noise === 0) return Infinity;
  return 10 * Math.log10(signal / noise);
}

/** The delay in [minDelay, maxDelay] that maximises the cross-correlation of out[i + delay] with ref[i]. */
export function bestDelay(ref: Float32Array, out: Float32Array, minDelay: number, maxDelay: number): number {
  let best = minDelay;
  let bestCorr = -Infinity;
  for (let d = minDelay; d <= maxDelay; d++) {
    let corr = 0;
    const last = Math.min(ref.length, out.length - d);
    for (let i = Math.max(0, -d); i < last; i++) corr += ref[i] * out[i + d];
    if (corr > bestCorr) {
      bestCorr = corr;
      best = d;
    }
  }
  return best;
}
