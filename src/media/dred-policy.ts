import { DownlinkLoss } from './downlink-loss.ts';

/**
 * Whether one listener's mix gets DRED (Opus 1.5 Deep REDundancy), from the loss its own RTCP
 * receiver reports show — the same estimate from the same report blocks as RedPolicy
 * (DownlinkLoss, downlink-loss.ts). One policy per subscriber (per server peer).
 *
 * On from `lossOnPct` (default 5 %), off again only below `lossOffPct` (default 2 %) and after at
 * least `minOnMs` (default 10 s) on: a DRED encode costs about twice a plain one (docs/audio.md
 * "DRED"), so a link hovering at a threshold must not flap the listener between two encoders.
 */

/**
 * The Opus fmtp parameter (RFC 7587 §6.1: receivers ignore parameters they do not know) a VoxLink
 * client puts in its answer to say it decodes DRED (libopus ≥ 1.5 built with DRED), as
 * `x-voxlink-dred=1`. No standard signals DRED in SDP; Chromium does not decode it (docs/audio.md "DRED").
 */
export const DRED_FMTP_PARAMETER = 'x-voxlink-dred';

export interface DredPolicyOptions {
  /** Send DRED at all (to listeners that can decode it). Default true. */
  enabled?: boolean;
  /** Smoothed downlink loss (%) from which a listener gets DRED. Default 5. */
  lossOnPct?: number;
  /** Smoothed downlink loss (%) below which it stops (after `minOnMs`). Default 2. */
  lossOffPct?: number;
  /** Minimum time DRED stays on once on, ms. Default 10 000. */
  minOnMs?: number;
}

export const DRED_POLICY_DEFAULTS: Required<DredPolicyOptions> = {
  enabled: true,
  lossOnPct: 5,
  lossOffPct: 2,
  minOnMs: 10_000,
};

export class DredPolicy {
  readonly #o: Required<DredPolicyOptions>;
  readonly #loss = new DownlinkLoss();
  #active = false;
  #onAtMs = -Infinity;
  /** Times DRED was turned on or off, for stats and tests. */
  changes = 0;

  constructor(options: DredPolicyOptions = {}) {
    const o = { ...DRED_POLICY_DEFAULTS, ...options };
    if (!(o.lossOffPct >= 0 && o.lossOnPct >= o.lossOffPct && o.lossOnPct <= 100)) {
      throw new RangeError(`DRED loss thresholds must satisfy 0 ≤ lossOffPct ≤ lossOnPct ≤ 100, got ${o.lossOffPct}, ${o.lossOnPct}`);
    }
    if (!(o.minOnMs >= 0)) throw new RangeError(`DRED minOnMs must be ≥ 0, got ${o.minOnMs}`);
    this.#o = o;
  }

  get enabled(): boolean {
    return this.#o.enabled;
  }

  /** This listener's mix should carry DRED now. */
  get active(): boolean {
    return this.#active;
  }

  /** The smoothed downlink loss, percent. */
  get lossPct(): number {
    return this.#loss.pct;
  }

  /** Report blocks counted. */
  get reports(): number {
    return this.#loss.reports;
  }

  /**
   * One RR report block about one of this subscriber's streams: `fractionLost` as sent (0…255, RFC
   * 3550 §6.4.1) over `expected` packets since that stream's previous report.
   */
  report(fractionLost: number, expected: number, nowMs: number): void {
    if (!this.#o.enabled || !this.#loss.report(fractionLost, expected)) return;
    const o = this.#o;
    const loss = this.#loss.pct;
    if (!this.#active) {
      if (loss >= o.lossOnPct) {
        this.#active = true;
        this.#onAtMs = nowMs;
        this.changes++;
      }
    } else if (loss < o.lossOffPct && nowMs - this.#onAtMs >= o.minOnMs) {
      this.#active = false;
      this.changes++;
    }
  }
}
