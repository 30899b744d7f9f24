/**
 * How much RED redundancy one subscriber's downlink gets, from the loss its own RTCP receiver
 * reports show (RFC 3550 §6.4.2 "fraction lost" of each report block about one of our outgoing
 * streams). One policy per subscriber (per server peer): every audio output of the peer feeds it,
 * since they share one path; an idle slot's reports carry no packets and no weight.
 *
 * Distance 0 (plain Opus) below `lossOnPct`, 1 from `lossOnPct`, 2 from `lossDistance2Pct`. It
 * steps down only when the smoothed loss has fallen below half the threshold of the current step
 * and at least `holdMs` have passed since the last step up (RR intervals are 0.5–5 s, a burst of
 * loss often comes back). The loss estimate is DownlinkLoss's (downlink-loss.ts). docs/audio.md "Resilience".
 */
import { DownlinkLoss } from './downlink-loss.ts';

export interface RedPolicyOptions {
  /** Send RED at all (to subscribers that negotiated `red/48000/2`). Default true. */
  enabled?: boolean;
  /** Every RED-capable subscriber gets distance ≥ 1, loss or not (what LiveKit does). Default false. */
  always?: boolean;
  /** Downlink loss (%) from which a subscriber gets distance 1. Default 2. */
  lossOnPct?: number;
  /** Downlink loss (%) from which it gets distance 2. Default 8. */
  lossDistance2Pct?: number;
  /** Minimum time at a distance after stepping up before stepping down, ms. Default 4000. */
  holdMs?: number;
}

export const RED_POLICY_DEFAULTS: Required<RedPolicyOptions> = {
  enabled: true,
  always: false,
  lossOnPct: 2,
  lossDistance2Pct: 8,
  holdMs: 4000,
};

export class RedPolicy {
  readonly #o: Required<RedPolicyOptions>;
  readonly #loss = new DownlinkLoss();
  #distance: number;
  #raisedAtMs = -Infinity;
  /** Times the distance changed (up or down), for stats and tests. */
  changes = 0;

  constructor(options: RedPolicyOptions = {}) {
    const o = { ...RED_POLICY_DEFAULTS, ...options };
    if (!(o.lossOnPct >= 0 && o.lossDistance2Pct >= o.lossOnPct && o.lossDistance2Pct <= 100)) {
      throw new RangeError(`RED loss thresholds must satisfy 0 ≤ lossOnPct ≤ lossDistance2Pct ≤ 100, got ${o.lossOnPct}, ${o.lossDistance2Pct}`);
    }
    this.#o = o;
    this.#distance = this.#floor();
  }

  get enabled(): boolean {
    return this.#o.enabled;
  }

  /** Redundant frames per packet this subscriber gets now (0 = plain Opus). */
  get distance(): number {
    return this.#distance;
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
    this.#decide(nowMs);
  }

  #floor(): number {
    return this.#o.enabled && this.#o.always ? 1 : 0;
  }

  #decide(nowMs: number): void {
    const o = this.#o;
    const loss = this.#loss.pct;
    const wanted = loss >= o.lossDistance2Pct ? 2 : loss >= o.lossOnPct ? 1 : 0;
    let next = this.#distance;
    if (wanted > next) {
      next = wanted;
      this.#raisedAtMs = nowMs;
    } else if (wanted < next && nowMs - this.#raisedAtMs >= o.holdMs) {
      const threshold = next === 2 ? o.lossDistance2Pct : o.lossOnPct;
      if (loss < threshold / 2) next--;
    }
    next = Math.max(next, this.#floor());
    if (next !== this.#distance) {
      this.#distance = next;
      this.changes++;
    }
  }
}
