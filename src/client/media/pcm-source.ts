/** A source of mono 48 kHz float PCM, pulled one frame at a time by a publisher. */
export interface PcmSource {
  /** Fills `out` (one frame) with the next samples. */
  read(out: Float32Array): void;
}

/**
 * A sine tone with a settable gain: distinct frequencies make each participant recognisable in
 * the received audio; changing `gain` makes one louder than another for speaker switching.
 */
export class ToneSource implements PcmSource {
  readonly frequency: number;
  readonly sampleRate: number;
  /** Linear amplitude, 0 … 1. */
  gain: number;
  #phase = 0;

  constructor(frequency: number, options: { gain?: number; sampleRate?: number } = {}) {
    this.frequency = frequency;
    this.gain = options.gain ?? 0.3;
    this.sampleRate = options.sampleRate ?? 48_000;
  }

  read(out: Float32Array): void {
    const step = (2 * Math.PI * this.frequency) / this.sampleRate;
    let phase = this.#phase;
    const gain = this.gain;
    for (let i = 0; i < out.length; i++) {
      out[i] = gain * Math.sin(phase);
      phase += step;
    }
    this.#phase = phase % (2 * Math.PI);
  }
}
