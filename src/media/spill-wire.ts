/**
 * The records a spilled room's workers send each other (docs/media.md "Rooms over several
 * workers"): one audio record per accepted publisher packet, once per worker, and the home
 * worker's ranking. Both transports (spill-ring.ts, spill-batch.ts) carry the same bytes; records
 * are little-endian and padded to 4 bytes.
 *
 *   audio record                               ranking record
 *    0      2      3      4                      0      2      3      4        6
 *   +------+------+------+--------+            +------+------+------+--------+----------------+
 *   | len  | kind | flags| member |            | len  | kind |  0   | count  | member × count |
 *   +------+------+------+--------+            +------+------+------+--------+----------------+
 *   | seq (u16)   | timestamp (u32)            u16 each: the home's ranking, loudest first,
 *   | ssrc (u32)  | pt (u8) | level (u8)       already filtered to who may be forwarded
 *   | payload length (u16) | payload …
 *
 * `member` is the participant's number in the room (given by the main thread, the same on every
 * worker); `level` is the RFC 6464 level, 255 for none; flags bit 0 is the RTP marker.
 */

export const KIND_AUDIO = 1;
export const KIND_RANKING = 2;
/**
 * Video (docs/media.md "Rooms over several workers"): a publisher's whole RTP packet, sent only to
 * the shards that asked for it (VIDEO_WANT, flags bit 0 = on); KEYFRAME asks the publisher's shard
 * for a PLI upstream. Header: len, kind, flags, member (u16), RTP length (u16), then the packet.
 */
export const KIND_VIDEO = 3;
export const KIND_VIDEO_WANT = 4;
export const KIND_KEYFRAME = 5;
export const VIDEO_HEADER_BYTES = 8;
export const OFF_RTP_LEN = 6;
/** Fills the end of a ring the next record does not fit into (spill-ring.ts). */
export const KIND_PAD = 0xff;

export const AUDIO_HEADER_BYTES = 20;
export const RANKING_HEADER_BYTES = 6;
/** Larger records are not sent (an Opus packet is at most 1275 bytes, RFC 6716 §3.2.1). */
export const MAX_RECORD_BYTES = 1536;
export const NO_LEVEL = 0xff;

export const OFF_LEN = 0;
export const OFF_KIND = 2;
export const OFF_FLAGS = 3;
export const OFF_MEMBER = 4;
export const OFF_SEQ = 6;
export const OFF_TS = 8;
export const OFF_SSRC = 12;
export const OFF_PT = 16;
export const OFF_LEVEL = 17;
export const OFF_PAYLOAD_LEN = 18;
export const OFF_COUNT = 4;

/** Rounds a record length up to the 4-byte record alignment. */
export function padded(bytes: number): number {
  return (bytes + 3) & ~3;
}

/** One direction of a link between two workers of a room: the producer side. */
export interface SpillSender {
  /** Copies `len` bytes of `record` out; false when the link had no room (the record is dropped and counted). */
  write(record: Buffer, len: number): boolean;
  readonly dropped: number;
  close(): void;
}

/**
 * Called per record received, with the buffer and offset it sits at; the bytes are valid only
 * during the call. `copy(start, length)` returns `buf[start, start + length)` as a Buffer of exactly
 * that length without allocating (a RecordScratch), valid until the next `copy` of the link.
 */
export type RecordHandler = (buf: Buffer, at: number, len: number, copy: (start: number, length: number) => Buffer) => void;

/** The scratch bytes a receiver keeps after its records, in the same buffer (RecordScratch). */
export const SCRATCH_BYTES = MAX_RECORD_BYTES;

/**
 * Hands out part of a received record as a Buffer of its exact length, allocating nothing per
 * record: the bytes are moved with `copyWithin` into a scratch area of the same buffer
 * (`data[base, base + SCRATCH_BYTES)`), and one view of that area is kept per length.
 * (Node 20's `Buffer#copy` of part of a buffer, or a `subarray`, would make an object per record.)
 */
export class RecordScratch {
  readonly #data: Buffer;
  readonly #base: number;
  readonly #views: (Buffer | undefined)[] = [];
  /** Bound once, handed to the RecordHandler. */
  readonly copy = (start: number, length: number): Buffer => {
    if (length < 0 || length > SCRATCH_BYTES || start < 0 || start + length > this.#base) {
      throw new RangeError(`record bytes ${start}+${length} outside the link's ${this.#base}`);
    }
    const data = this.#data;
    const base = this.#base;
    data.copyWithin(base, start, start + length);
    let view = this.#views[length];
    if (view === undefined) this.#views[length] = view = data.subarray(base, base + length);
    return view;
  };

  constructor(data: Buffer, base: number) {
    if (base < 0 || base + SCRATCH_BYTES > data.length) throw new RangeError(`no room for ${SCRATCH_BYTES} scratch bytes at ${base} of ${data.length}`);
    this.#data = data;
    this.#base = base;
  }
}

/** The consumer side of a link. */
export interface SpillReceiver {
  readonly records: number;
  close(): void;
}
