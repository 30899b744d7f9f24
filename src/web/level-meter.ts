/**
 * The loudness of one audio track as the page shows it: WebAudio AnalyserNode (Web Audio API
 * §1.8) time-domain samples → RMS → dBFS, mapped onto 0…1 for a bar. The buffer is reused, so
 * polling it at the UI rate allocates nothing.
 */

/** Quieter than this shows an empty bar; Chrome's fake microphone and speech sit well above it. */
const FLOOR_DBFS = -60;

export class LevelMeter {
  readonly #source: MediaStreamAudioSourceNode;
  readonly #analyser: AnalyserNode;
  readonly #samples: Float32Array<ArrayBuffer>;
  /** Shown level, 0…1, with a fast attack and a slower release so the bar does not flicker. */
  #shown = 0;

  constructor(context: AudioContext, track: MediaStreamTrack) {
    this.#source = context.createMediaStreamSource(new MediaStream([track]));
    this.#analyser = context.createAnalyser();
    this.#analyser.fftSize = 1024;
    this.#samples = new Float32Array(this.#analyser.fftSize);
    this.#source.connect(this.#analyser);
  }

  /** Samples the track now; returns the displayed level 0…1. */
  read(): number {
    this.#analyser.getFloatTimeDomainData(this.#samples);
    let sum = 0;
    for (let i = 0; i < this.#samples.length; i++) sum += this.#samples[i] * this.#samples[i];
    const rms = Math.sqrt(sum / this.#samples.length);
    const dbfs = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
    const level = dbfs <= FLOOR_DBFS ? 0 : Math.min(1, (dbfs - FLOOR_DBFS) / -FLOOR_DBFS);
    this.#shown = level >= this.#shown ? level : this.#shown * 0.7 + level * 0.3;
    return this.#shown;
  }

  /** Whether the track plays anything above the meter's floor right now (no smoothing, the bar is untouched). */
  audible(): boolean {
    this.#analyser.getFloatTimeDomainData(this.#samples);
    let sum = 0;
    for (let i = 0; i < this.#samples.length; i++) sum += this.#samples[i] * this.#samples[i];
    const rms = Math.sqrt(sum / this.#samples.length);
    return rms > 0 && 20 * Math.log10(rms) > FLOOR_DBFS;
  }

  close(): void {
    this.#source.disconnect();
    this.#analyser.disconnect();
  }
}
