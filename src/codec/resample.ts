/**
 * Integer-ratio resamplers between the 8 kHz telephony rate (G.711) and the 48 kHz mix bus, for the
 * one place Opus cannot resample for us: a G.711 voice entering the 48 kHz mixer, and the 48 kHz mix
 * leaving for a G.711 listener. (Opus itself decodes straight to 8 kHz and encodes from 8 kHz when a
 * transcoder only bridges one stream, see src/media/transcode.ts.)
 *
 * One Kaiser-windowed sinc low-pass (cut-off 4 kHz, ≈ ±600 Hz transition, ≥ 60 dB stop band) serves
 * both directions as a polyphase filter. Streaming, allocation-free per frame: the filter history
 * lives in a preallocated buffer.
 */

const RATIO = 6;
const TAPS_PER_PHASE = 24;
const TAPS = RATIO * TAPS_PER_PHASE;
const KAISER_BETA = 5.65;

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 40; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

/** Low-pass prototype at 48 kHz, cut-off 4 kHz, unity DC gain. */
const LOWPASS: Float32Array = (() => {
  const h = new Float64Array(TAPS);
  const cutoff = 4000 / 48_000;
  const mid = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const t = i - mid;
    const sinc = t === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * t) / (Math.PI * t);
    const r = t / mid;
    const w = besselI0(KAISER_BETA * Math.sqrt(Math.max(0, 1 - r * r))) / besselI0(KAISER_BETA);
    h[i] = sinc * w;
    sum += h[i]!;
  }
  const out = new Float32Array(TAPS);
  for (let i = 0; i < TAPS; i++) out[i] = h[i]! / sum;
  return out;
})();

/** 8 kHz → 48 kHz. `process(in8k, out48k)` writes 6× as many samples as it reads. */
export class Upsampler8to48 {
  /** Polyphase branches: phase p uses taps p, p+6, p+12, … scaled by 6 (zero-stuffing gain). */
  readonly #phases: Float32Array[];
  readonly #history = new Float32Array(TAPS_PER_PHASE - 1);
  #work = new Float32Array(TAPS_PER_PHASE - 1 + 160);

  constructor() {
    this.#phases = [];
    for (let p = 0; p < RATIO; p++) {
      const phase = new Float32Array(TAPS_PER_PHASE);
      for (let k = 0; k < TAPS_PER_PHASE; k++) phase[k] = LOWPASS[k * RATIO + p]! * RATIO;
      this.#phases.push(phase);
    }
  }

  process(input: Float32Array, output: Float32Array, count = input.length): void {
    const hist = TAPS_PER_PHASE - 1;
    if (this.#work.length < hist + count) this.#work = new Float32Array(hist + count);
    const work = this.#work;
    work.set(this.#history, 0);
    for (let i = 0; i < count; i++) work[hist + i] = input[i]!;
    for (let m = 0; m < count; m++) {
      const newest = hist + m;
      for (let p = 0; p < RATIO; p++) {
        const phase = this.#phases[p]!;
        let acc = 0;
        for (let k = 0; k < TAPS_PER_PHASE; k++) acc += phase[k]! * work[newest - k]!;
        output[m * RATIO + p] = acc;
      }
    }
    this.#history.set(work.subarray(count, count + hist));
  }

  reset(): void {
    this.#history.fill(0);
  }
}

/** 48 kHz → 8 kHz. `process(in48k, out8k)` reads a multiple of 6 samples and writes a sixth. */
export class Downsampler48to8 {
  readonly #history = new Float32Array(TAPS - 1);
  #work = new Float32Array(TAPS - 1 + 960);

  process(input: Float32Array, output: Float32Array, count = input.length): void {
    const hist = TAPS - 1;
    if (this.#work.length < hist + count) this.#work = new Float32Array(hist + count);
    const work = this.#work;
    work.set(this.#history, 0);
    for (let i = 0; i < count; i++) work[hist + i] = input[i]!;
    const outCount = Math.floor(count / RATIO);
    for (let m = 0; m < outCount; m++) {
      const newest = hist + m * RATIO + RATIO - 1;
      let acc = 0;
      for (let k = 0; k < TAPS; k++) acc += LOWPASS[k]! * work[newest - k]!;
      output[m] = acc;
    }
    this.#history.set(work.subarray(count, count + hist));
  }

  reset(): void {
    this.#history.fill(0);
  }
}
