import { OpusApplication } from './opus-ctl.ts';

/**
 * Opus encoder profiles for what the server sends a subscriber (mix streams, transcoded streams), and
 * a picker that moves a subscriber between them from what its receiver tells us: RTCP receiver
 * report "fraction lost" (RFC 3550 §6.4.1, an 8-bit fixed-point fraction) and the send-side bandwidth
 * estimate (REMB or transport-wide congestion control).
 *
 * | profile | application | bitrate | ch | FEC | expected loss | DTX | DRED |
 * | ------- | ----------- | ------- | -- | --- | ------------- | --- | ---- |
 * | low     | VOIP        | 16 kbps | 1  | on  | 10 %          | on  | off  |
 * | normal  | VOIP        | 32 kbps | 1  | on  | 3 %           | off | off  |
 * | high    | AUDIO       | 64 kbps | 1  | off | 0 %           | off | off  |
 * | music   | AUDIO       | 128 kbps| 2  | off | 0 %           | off | off  |
 *
 * DRED is off by default on the server side: its encoder (an RDOVAE network) costs several times an
 * Opus encode per frame, which would undo the shared-encode saving of the mixer; `withDred()` turns it
 * on for a profile when a deployment has the CPU for it.
 */

export type OpusProfileName = 'low' | 'normal' | 'high' | 'music';

export interface OpusProfile {
  readonly name: OpusProfileName;
  readonly application: OpusApplication;
  readonly bitrate: number;
  readonly channels: 1 | 2;
  /** OPUS_SET_INBAND_FEC: LBRR copy of the previous frame in each packet (RFC 6716 §2.1.7). */
  readonly fec: boolean;
  /** OPUS_SET_PACKET_LOSS_PERC: how much FEC the encoder budgets for. */
  readonly expectedLossPerc: number;
  /** OPUS_SET_DTX: ≤ 2-byte packets during silence (RFC 7587 §3.1.3). */
  readonly dtx: boolean;
  /** OPUS_SET_DRED_DURATION in 10 ms units (0 = off). */
  readonly dredDuration: number;
  /** OPUS_SET_COMPLEXITY 0–10. */
  readonly complexity: number;
}

export const OPUS_PROFILES: Readonly<Record<OpusProfileName, OpusProfile>> = {
  low: {
    name: 'low',
    application: OpusApplication.VOIP,
    bitrate: 16_000,
    channels: 1,
    fec: true,
    expectedLossPerc: 10,
    dtx: true,
    dredDuration: 0,
    complexity: 5,
  },
  normal: {
    name: 'normal',
    application: OpusApplication.VOIP,
    bitrate: 32_000,
    channels: 1,
    fec: true,
    expectedLossPerc: 3,
    dtx: false,
    dredDuration: 0,
    complexity: 5,
  },
  high: {
    name: 'high',
    application: OpusApplication.AUDIO,
    bitrate: 64_000,
    channels: 1,
    fec: false,
    expectedLossPerc: 0,
    dtx: false,
    dredDuration: 0,
    complexity: 5,
  },
  music: {
    name: 'music',
    application: OpusApplication.AUDIO,
    bitrate: 128_000,
    channels: 2,
    fec: false,
    expectedLossPerc: 0,
    dtx: false,
    dredDuration: 0,
    complexity: 5,
  },
};

/** A copy of `profile` with DRED reaching back `durationMs` (rounded to 10 ms units, max 1 s). */
export function withDred(profile: OpusProfile, durationMs: number): OpusProfile {
  return { ...profile, dredDuration: Math.max(0, Math.min(100, Math.round(durationMs / 10))) };
}

/** Default DRED depth of the server's DRED encodes (the mixer's DRED variant), ms. */
export const DRED_VARIANT_DURATION_MS = 1000;

/**
 * The DRED variant of a profile, as the mixer encodes it for listeners whose loss calls for DRED
 * (docs/audio.md "DRED"). libopus 1.5.2 writes DRED only when all of these hold (measured on our
 * wasm build, docs/audio.md "DRED"): complexity ≥ 7, an expected loss > 0, in-band FEC
 * off (with LBRR on it writes no DRED at all) and enough bits — nothing at 16 kb/s, ~55 ms of
 * reach at 24 kb/s, ~95 ms at 32 kb/s. So the variant trades FEC for DRED: only listeners that can
 * decode DRED get it (libopus ≥ 1.5 with DRED built in, e.g. the Node SDK; not Chromium).
 */
export function dredVariant(profile: OpusProfile, durationMs = DRED_VARIANT_DURATION_MS): OpusProfile {
  return {
    ...withDred(profile, durationMs),
    fec: false,
    expectedLossPerc: Math.max(10, profile.expectedLossPerc),
    complexity: Math.max(7, profile.complexity),
    bitrate: Math.max(24_000, profile.bitrate),
  };
}

const ORDER: readonly OpusProfileName[] = ['low', 'normal', 'high', 'music'];

export interface ProfilePickerOptions {
  /** Best profile this subscriber may get (default `normal`; `high`/`music` for music rooms). */
  ceiling?: OpusProfileName;
  /** Smoothed loss above which we step down from normal/high (default 0.05). */
  downLoss?: number;
  /** Smoothed loss above which only `low` is used (default 0.10). */
  lowLoss?: number;
  /** Smoothed loss below which we may step up again (default 0.02): the hysteresis gap. */
  upLoss?: number;
  /** A profile needs this multiple of its bitrate in estimated bandwidth (default 1.5). */
  bandwidthHeadroom?: number;
  /** How long conditions must stay good before stepping up (default 10 000 ms). */
  upgradeAfterMs?: number;
  /** EWMA weight of each new loss report (default 0.3). */
  lossAlpha?: number;
}

export interface ProfileFeedback {
  /** RTCP RR fraction lost as 0–1 (the 8-bit field divided by 256). */
  fractionLost?: number;
  /** REMB or TWCC estimate in bits per second. */
  bandwidthBps?: number;
  nowMs: number;
}

/**
 * Picks a subscriber's profile with hysteresis: steps down at once when loss or bandwidth say so,
 * steps up one profile only after `upgradeAfterMs` of low loss and enough bandwidth, so a link
 * hovering at a threshold does not flap between encoders.
 */
export class ProfilePicker {
  readonly #ceiling: number;
  readonly #downLoss: number;
  readonly #lowLoss: number;
  readonly #upLoss: number;
  readonly #headroom: number;
  readonly #upgradeAfterMs: number;
  readonly #alpha: number;
  #current: number;
  #loss = 0;
  #bandwidth = Number.POSITIVE_INFINITY;
  #goodSinceMs: number | undefined;
  #changes = 0;

  constructor(options: ProfilePickerOptions = {}) {
    this.#ceiling = ORDER.indexOf(options.ceiling ?? 'normal');
    this.#downLoss = options.downLoss ?? 0.05;
    this.#lowLoss = options.lowLoss ?? 0.1;
    this.#upLoss = options.upLoss ?? 0.02;
    this.#headroom = options.bandwidthHeadroom ?? 1.5;
    this.#upgradeAfterMs = options.upgradeAfterMs ?? 10_000;
    this.#alpha = options.lossAlpha ?? 0.3;
    this.#current = this.#ceiling;
  }

  get profile(): OpusProfile {
    return OPUS_PROFILES[ORDER[this.#current]!];
  }

  /** Feeds one report; returns the profile to use from now on. */
  update(feedback: ProfileFeedback): OpusProfile {
    if (feedback.fractionLost !== undefined) {
      this.#loss += this.#alpha * (feedback.fractionLost - this.#loss);
    }
    if (feedback.bandwidthBps !== undefined) this.#bandwidth = feedback.bandwidthBps;

    const fits = (index: number): boolean =>
      index === 0 || OPUS_PROFILES[ORDER[index]!].bitrate * this.#headroom <= this.#bandwidth;
    let allowed = this.#ceiling;
    if (this.#loss > this.#lowLoss) allowed = 0;
    else if (this.#loss > this.#downLoss) allowed = Math.min(allowed, 1);
    while (allowed > 0 && !fits(allowed)) allowed--;

    if (allowed < this.#current) {
      this.#set(allowed);
      this.#goodSinceMs = undefined;
    } else if (allowed > this.#current && this.#loss < this.#upLoss) {
      this.#goodSinceMs ??= feedback.nowMs;
      if (feedback.nowMs - this.#goodSinceMs >= this.#upgradeAfterMs) {
        this.#set(this.#current + 1);
        this.#goodSinceMs = feedback.nowMs;
      }
    } else {
      this.#goodSinceMs = undefined;
    }
    return this.profile;
  }

  #set(index: number): void {
    if (index !== this.#current) this.#changes++;
    this.#current = index;
  }

  toJSON(): { profile: OpusProfileName; smoothedLoss: number; bandwidthBps: number | null; changes: number } {
    return {
      profile: ORDER[this.#current]!,
      smoothedLoss: Math.round(this.#loss * 1000) / 1000,
      bandwidthBps: Number.isFinite(this.#bandwidth) ? this.#bandwidth : null,
      changes: this.#changes,
    };
  }
}
