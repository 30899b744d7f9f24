/** The most recent `capacity` samples of a mono PCM stream (a ring buffer; no growth, no copies on write but one). */
export class PcmRecorder {
  readonly #ring: Float32Array;
  #write = 0;
  #total = 0;

  constructor(capacity: number) {
    this.#ring = new Float32Array(capacity);
  }

  append(pcm: Float32Array): void {
    const ring = this.#ring;
    let offset = 0;
    let n = pcm.length;
    if (n > ring.length) {
      offset = n - ring.length;
      n = ring.length;
    }
    const first = Math.min(n, ring.length - this.#write);
    ring.set(pcm.subarray(offset, offset + first), this.#write);
    if (first < n) ring.set(pcm.subarray(offset + first, offset + n), 0);
    this.#write = (this.#write + n) % ring.length;
    this.#total += pcm.length;
  }

  /** Samples appended since creation (or `clear()`). */
  get total(): number {
    return this.#total;
  }

  /** A copy of the last `samples` samples (fewer if not that many were recorded). */
  recent(samples = this.#ring.length): Float32Array {
    const ring = this.#ring;
    const n = Math.min(samples, this.#total, ring.length);
    const out = new Float32Array(n);
    const start = (this.#write - n + ring.length) % ring.length;
    const first = Math.min(n, ring.length - start);
    out.set(ring.subarray(start, start + first), 0);
    if (first < n) out.set(ring.subarray(0, n - first), first);
    return out;
  }

  clear(): void {
    this.#write = 0;
    this.#total = 0;
  }
}
