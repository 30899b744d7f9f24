/**
 * Soft limiter for the float mix bus: keeps every output sample inside ±`ceiling` (≤ 1.0) without
 * ever clipping or wrapping, and without the look-ahead delay a broadcast limiter would add.
 *
 * How: a peak envelope with instant attack and exponential release (`env = max(|x|, env·r)`) drives a
 * gain `g = f(env) / env`, where `f` is identity up to the knee and a tanh curve from the knee to the
 * ceiling. Because `env ≥ |x|` on every sample, `|x·g| ≤ f(env) < ceiling`: the bound holds on the
 * same sample a peak arrives (no look-ahead needed). The gain moves with the envelope, not with the
 * waveform, so a loud steady tone is turned down rather than waveshaped: harmonic distortion stays at
 * the level of the release ripple (well under 1 % THD for voice-band tones, see test/audio) instead
 * of the tens of percent a static tanh clipper produces.
 */

export interface SoftLimiterOptions {
  /** Envelope level where gain reduction starts (linear, default 0.7 ≈ −3 dBFS). */
  knee?: number;
  /** Asymptotic output bound (linear, default 0.98; must be ≤ 1). */
  ceiling?: number;
  /** Release time constant in ms (default 80: slow enough not to ripple on 100 Hz voices). */
  releaseMs?: number;
  sampleRate?: number;
}

export interface SoftLimiterStats {
  /** Frames in which the limiter reduced gain. */
  limitedFrames: number;
  /** Smallest gain applied since creation (1 = never limited). */
  minGain: number;
}

export class SoftLimiter {
  readonly knee: number;
  readonly ceiling: number;
  readonly #release: number;
  readonly #range: number;
  #env = 0;
  #limitedFrames = 0;
  #minGain = 1;

  constructor(options: SoftLimiterOptions = {}) {
    this.knee = options.knee ?? 0.7;
    this.ceiling = Math.min(options.ceiling ?? 0.98, 1);
    if (!(this.knee > 0 && this.knee < this.ceiling)) throw new RangeError('limiter knee must be in (0, ceiling)');
    const rate = options.sampleRate ?? 48_000;
    this.#release = Math.exp(-1 / (((options.releaseMs ?? 80) / 1000) * rate));
    this.#range = this.ceiling - this.knee;
  }

  /** Limits `count` samples of `pcm` in place. */
  process(pcm: Float32Array, count = pcm.length): void {
    const knee = this.knee;
    const range = this.#range;
    const release = this.#release;
    let env = this.#env;
    let minGain = 1;
    for (let i = 0; i < count; i++) {
      const x = pcm[i]!;
      const a = x < 0 ? -x : x;
      env *= release;
      if (a > env) env = a;
      if (env > knee) {
        const g = (knee + range * Math.tanh((env - knee) / range)) / env;
        pcm[i] = x * g;
        if (g < minGain) minGain = g;
      }
    }
    this.#env = env;
    if (minGain < 1) {
      this.#limitedFrames++;
      if (minGain < this.#minGain) this.#minGain = minGain;
    }
  }

  reset(): void {
    this.#env = 0;
  }

  toJSON(): SoftLimiterStats {
    return { limitedFrames: this.#limitedFrames, minGain: this.#minGain };
  }
}
