/**
 * Bounded replay buffer of one session's sequenced frames (already stamped with their seq), bounded
 * by count AND bytes: whichever limit is hit first evicts the oldest frames. Acked frames are freed
 * early. A ring of slots, so pushing never shifts an array; the ring starts small and doubles up
 * to `maxMessages`, so 100k idle sessions do not each preallocate the full bound.
 */
const INITIAL_CAPACITY = 16;

export class ReplayBuffer {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  #frames: (Uint8Array | undefined)[];
  #seqs: Float64Array;
  #head = 0; // index of the oldest frame
  #count = 0;
  #bytes = 0;

  constructor(maxMessages: number, maxBytes: number) {
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
    const capacity = Math.min(INITIAL_CAPACITY, maxMessages);
    this.#frames = new Array<Uint8Array | undefined>(capacity);
    this.#seqs = new Float64Array(capacity);
  }

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Oldest seq still held, or undefined when empty. */
  get firstSeq(): number | undefined {
    return this.#count === 0 ? undefined : this.#seqs[this.#head];
  }

  push(seq: number, frame: Uint8Array): void {
    while (this.#count > 0 && (this.#count >= this.#maxMessages || this.#bytes + frame.length > this.#maxBytes)) {
      this.#dropOldest();
    }
    if (frame.length > this.#maxBytes) return; // larger than the whole budget: never replayable
    if (this.#count === this.#seqs.length) this.#grow();
    const index = (this.#head + this.#count) % this.#seqs.length;
    this.#frames[index] = frame;
    this.#seqs[index] = seq;
    this.#count++;
    this.#bytes += frame.length;
  }

  /** Free every frame with seq ≤ `seq` (the client has them). */
  ack(seq: number): void {
    while (this.#count > 0 && this.#seqs[this.#head] <= seq) this.#dropOldest();
  }

  /**
   * Frames after `lastSeq`, in order, or null when the buffer no longer holds `lastSeq + 1` although
   * the session has sent it (`currentSeq` > lastSeq): replaying would leave a gap.
   */
  since(lastSeq: number, currentSeq: number): Uint8Array[] | null {
    if (lastSeq >= currentSeq) return [];
    const first = this.firstSeq;
    if (first === undefined || first > lastSeq + 1) return null;
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.#count; i++) {
      const index = (this.#head + i) % this.#seqs.length;
      if (this.#seqs[index] > lastSeq) out.push(this.#frames[index] as Uint8Array);
    }
    return out;
  }

  clear(): void {
    while (this.#count > 0) this.#dropOldest();
  }

  #dropOldest(): void {
    const frame = this.#frames[this.#head] as Uint8Array;
    this.#frames[this.#head] = undefined;
    this.#bytes -= frame.length;
    this.#head = (this.#head + 1) % this.#seqs.length;
    this.#count--;
  }

  #grow(): void {
    const capacity = Math.min(this.#maxMessages, this.#seqs.length * 2);
    const frames = new Array<Uint8Array | undefined>(capacity);
    const seqs = new Float64Array(capacity);
    for (let i = 0; i < this.#count; i++) {
      const from = (this.#head + i) % this.#seqs.length;
      frames[i] = this.#frames[from];
      seqs[i] = this.#seqs[from];
    }
    this.#frames = frames;
    this.#seqs = seqs;
    this.#head = 0;
  }
}
