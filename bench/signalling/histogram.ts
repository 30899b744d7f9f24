/**
 * Fixed-bucket latency histogram that load generators fill without allocating per sample and
 * send to the orchestrator as one plain array, so percentiles can be merged across processes.
 * Buckets: 10 µs wide up to 100 ms, then 1 ms wide up to 10 s, then one overflow bucket.
 */
const FINE_US = 10;
const FINE_BUCKETS = 10_000; // 0 .. 100 ms
const COARSE_US = 1_000;
const COARSE_BUCKETS = 9_900; // 100 ms .. 10 s

export class LatencyHistogram {
  readonly counts: Float64Array;
  total = 0;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array(FINE_BUCKETS + COARSE_BUCKETS + 1);
    if (counts) {
      this.counts.set(counts);
      for (let i = 0; i < this.counts.length; i++) this.total += this.counts[i];
    }
  }

  record(ms: number): void {
    const us = ms * 1000;
    let i: number;
    if (us < FINE_US * FINE_BUCKETS) i = Math.max(0, Math.floor(us / FINE_US));
    else i = Math.min(FINE_BUCKETS + Math.floor((us - FINE_US * FINE_BUCKETS) / COARSE_US), this.counts.length - 1);
    this.counts[i]++;
    this.total++;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.total += other.total;
  }

  /** Upper edge of the bucket holding the q-quantile, in ms (NaN when empty). */
  quantileMs(q: number): number {
    if (this.total === 0) return Number.NaN;
    const target = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= target) {
        if (i < FINE_BUCKETS) return ((i + 1) * FINE_US) / 1000;
        return (FINE_US * FINE_BUCKETS + (i - FINE_BUCKETS + 1) * COARSE_US) / 1000;
      }
    }
    return Number.POSITIVE_INFINITY;
  }

  toJSON(): number[] {
    return Array.from(this.counts);
  }
}
