import { PEER_LEVEL_INTERVAL_MS } from '../../protocol/index.ts';

/** RFC 6464 §3: 127 is silence (−127 dBov and below). */
const SILENCE = 127;

/**
 * The microphone level a client reports over signalling while its audio goes directly (`peer`
 * kind `level`, docs/media.md "Peer to peer"): the mean power over PEER_LEVEL_INTERVAL_MS as
 * RFC 6464 −dBov. Silence after silence is not reported, so a quiet direct room sends nothing.
 */
export class LevelReport {
  #power = 0;
  #ms = 0;
  #lastSent = SILENCE;

  /** One frame's RFC 6464 level (0–127) covering `ms` of audio. Returns the level to report now, or -1. */
  addFrame(level: number, ms: number): number {
    this.#power += 10 ** (-level / 10) * ms;
    this.#ms += ms;
    if (this.#ms < PEER_LEVEL_INTERVAL_MS) return -1;
    const mean = this.#power / this.#ms;
    this.#power = 0;
    this.#ms = 0;
    return this.#due(mean);
  }

  /**
   * Energy and duration over one interval (W3C webrtc-stats media-source `totalAudioEnergy`,
   * `totalSamplesDuration` deltas: energy is the integral of the squared 0…1 level, so energy /
   * duration is the mean power, 1.0 = 0 dBov). Returns the level to report now, or -1.
   */
  addEnergy(energy: number, seconds: number): number {
    if (!(seconds > 0) || !(energy >= 0)) return -1;
    return this.#due(energy / seconds);
  }

  /** Forget the interval so far (the link changed, or the client was muted). */
  reset(): void {
    this.#power = 0;
    this.#ms = 0;
    this.#lastSent = SILENCE;
  }

  #due(meanPower: number): number {
    const level = meanPower > 0 ? Math.min(SILENCE, Math.max(0, Math.round(-10 * Math.log10(meanPower)))) : SILENCE;
    if (level === SILENCE && this.#lastSent === SILENCE) return -1;
    this.#lastSent = level;
    return level;
  }
}
