/**
 * One subscriber's downlink loss as its own RTCP receiver reports show it: RFC 3550 §6.4.2 "fraction
 * lost" of each report block about one of our outgoing streams, smoothed with a weight that grows
 * with the packets the block covers (a block over a few packets hardly moves the estimate). The
 * fraction counts packets lost on the wire, before any RED/FEC/DRED recovery, so redundancy does not
 * hide the loss that turned it on. RedPolicy and DredPolicy each keep one (docs/audio.md "Resilience").
 */

/** Report blocks covering fewer packets than this carry too little information to move the estimate much. */
const FULL_WEIGHT_PACKETS = 100;

export class DownlinkLoss {
  #pct = 0;
  /** Report blocks counted. */
  reports = 0;

  /** The smoothed loss, percent. */
  get pct(): number {
    return this.#pct;
  }

  /**
   * One report block: `fractionLost` as sent (0…255, RFC 3550 §6.4.1) over `expected` packets since
   * that stream's previous report. False (and nothing counted) for a block that covers no packet.
   */
  report(fractionLost: number, expected: number): boolean {
    if (!(expected > 0)) return false;
    this.reports++;
    const pct = (Math.min(255, Math.max(0, fractionLost)) / 256) * 100;
    this.#pct += (pct - this.#pct) * Math.min(1, expected / FULL_WEIGHT_PACKETS);
    return true;
  }
}
