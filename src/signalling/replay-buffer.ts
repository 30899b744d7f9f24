/**
 * Bounded replay buffer of one session's sequenced messages, bounded by count AND bytes: whichever
 * limit is hit first evicts the oldest. Acked messages are freed early.
 *
 * It holds the encoded bodies WITHOUT their seq (the signalling core stamps the seq when it sends or
 * replays, protocol/codec.ts stampSeq), so one room event is one shared body in every member's
 * buffer instead of one stamped copy per member. Seqs are consecutive (the core buffers every seq it
 * stamps), so only the oldest one is stored; a push that is not the next seq starts over.
 *
 * A ring of slots in a plain array, so pushing never shifts; it is allocated on the first push and
 * starts small, doubling up to `maxMessages`, so idle sessions do not each hold the full bound.
 */
const INITIAL_CAPACITY = 8;

export class ReplayBuffer {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  #frames: (Uint8Array | undefined)[] | null = null;
  #head = 0; // index of the oldest frame
  #count = 0;
  #bytes = 0;
  #firstSeq = 0;

  constructor(maxMessages: number, maxBytes: number) {
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
  }

  get count(): number {
    return this.#count;
  }

  /** Sum of the held frames' lengths (shared bodies count in every buffer that holds them). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Oldest seq still held, or undefined when empty. */
  get firstSeq(): number | undefined {
    return this.#count === 0 ? undefined : this.#firstSeq;
  }

  push(seq: number, frame: Uint8Array): void {
    if (this.#count > 0 && seq !== this.#firstSeq + this.#count) this.clear(); // a gap: older ones can no longer be replayed
    while (this.#count > 0 && (this.#count >= this.#maxMessages || this.#bytes + frame.length > this.#maxBytes)) {
      this.#dropOldest();
    }
    if (frame.length > this.#maxBytes || this.#maxMessages < 1) return; // larger than the whole budget: never replayable
    let frames = this.#frames;
    if (frames === null) frames = this.#frames = new Array<Uint8Array | undefined>(Math.min(INITIAL_CAPACITY, this.#maxMessages));
    else if (this.#count === frames.length) frames = this.#grow();
    if (this.#count === 0) {
      this.#head = 0;
      this.#firstSeq = seq;
    }
    frames[(this.#head + this.#count) % frames.length] = frame;
    this.#count++;
    this.#bytes += frame.length;
  }

  /**
   * Free every frame with seq ≤ `seq` (the client has them). A fully acked buffer drops its ring:
   * an idle session that acked everything holds nothing (the next push allocates a small ring).
   */
  ack(seq: number): void {
    while (this.#count > 0 && this.#firstSeq <= seq) this.#dropOldest();
    if (this.#count === 0) this.#frames = null;
  }

  /**
   * Frames after `lastSeq`, in order (frame i has seq lastSeq + 1 + i), or null when the buffer no
   * longer holds `lastSeq + 1` although the session has sent it (`currentSeq` > lastSeq): replaying
   * would leave a gap.
   */
  since(lastSeq: number, currentSeq: number): Uint8Array[] | null {
    if (lastSeq >= currentSeq) return [];
    if (this.#count === 0 || this.#frames === null || this.#firstSeq > lastSeq + 1) return null;
    const out: Uint8Array[] = [];
    const frames = this.#frames;
    for (let i = lastSeq + 1 - this.#firstSeq; i < this.#count; i++) out.push(frames[(this.#head + i) % frames.length] as Uint8Array);
    return out;
  }

  /** Drop everything and the ring itself (an ended session keeps nothing). */
  clear(): void {
    this.#frames = null;
    this.#head = 0;
    this.#count = 0;
    this.#bytes = 0;
  }

  #dropOldest(): void {
    const frames = this.#frames as (Uint8Array | undefined)[];
    const frame = frames[this.#head] as Uint8Array;
    frames[this.#head] = undefined;
    this.#bytes -= frame.length;
    this.#head = (this.#head + 1) % frames.length;
    this.#count--;
    this.#firstSeq++;
  }

  #grow(): (Uint8Array | undefined)[] {
    const old = this.#frames as (Uint8Array | undefined)[];
    const frames = new Array<Uint8Array | undefined>(Math.min(this.#maxMessages, old.length * 2));
    for (let i = 0; i < this.#count; i++) frames[i] = old[(this.#head + i) % old.length];
    this.#frames = frames;
    this.#head = 0;
    return frames;
  }
}
