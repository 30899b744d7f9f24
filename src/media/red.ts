/**
 * RFC 2198 redundant audio ("RED", `red/48000/2` over Opus as WebRTC negotiates it, RFC 2198 §5 and
 * draft-ietf-avtcore-rtp-payload-red-for-opus): reading a RED payload and building one per subscriber
 * from the slot's own recent packets (docs/audio.md "Resilience"). Nothing here allocates per packet.
 *
 * Block header of a redundant block (RFC 2198 §3), then one byte for the primary (F = 0):
 *
 *     0                   1                    2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |F|   block PT  |  timestamp offset         |   block length    |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |0|   block PT  |
 *    +-+-+-+-+-+-+-+-+
 *
 * The data blocks follow in header order: oldest redundancy first, the primary last.
 */

/** 14-bit timestamp offset (RFC 2198 §3): redundancy older than this (341 ms at 48 kHz) cannot be carried. */
export const RED_MAX_TS_OFFSET = 0x3fff;
/** 10-bit block length (RFC 2198 §3). */
export const RED_MAX_BLOCK_BYTES = 0x3ff;
/** Redundant blocks this module ever writes or reads per packet (Chrome sends 1; VoxLink up to 2). */
export const RED_MAX_BLOCKS = 8;
/** The slot history a RedPacketizer keeps: enough for distance 2 plus a reordered packet or two. */
const HISTORY = 4;
const REDUNDANT_HEADER_BYTES = 4;
const PRIMARY_HEADER_BYTES = 1;
/** Largest RED payload built: primary (one MTU's worth) plus two full redundant blocks fits a 1500-byte datagram only when blocks are small; bigger is sent plain. */
const OUT_BYTES = 1400;
const OUT_BASE = HISTORY * RED_MAX_BLOCK_BYTES;

/**
 * A parsed RED payload as offsets into the caller's buffer (one reader reused for every packet).
 * `count` blocks, the last one the primary (its `tsOffset` 0).
 */
export class RedReader {
  count = 0;
  readonly payloadType = new Uint8Array(RED_MAX_BLOCKS + 1);
  readonly tsOffset = new Uint32Array(RED_MAX_BLOCKS + 1);
  readonly start = new Uint32Array(RED_MAX_BLOCKS + 1);
  readonly length = new Uint32Array(RED_MAX_BLOCKS + 1);

  /** Parses `payload`; false (count 0) for anything that is not a well-formed RED payload. */
  parse(payload: Uint8Array): boolean {
    this.count = 0;
    const n = payload.length;
    let at = 0;
    let blocks = 0;
    let dataBytes = 0;
    // Headers first: redundant ones while F = 1, then the primary's single byte.
    for (;;) {
      if (at >= n) return false;
      const b0 = payload[at]!;
      if ((b0 & 0x80) === 0) {
        this.payloadType[blocks] = b0 & 0x7f;
        this.tsOffset[blocks] = 0;
        at += PRIMARY_HEADER_BYTES;
        blocks++;
        break;
      }
      if (blocks === RED_MAX_BLOCKS || at + REDUNDANT_HEADER_BYTES > n) return false;
      this.payloadType[blocks] = b0 & 0x7f;
      this.tsOffset[blocks] = (payload[at + 1]! << 6) | (payload[at + 2]! >> 2);
      const length = ((payload[at + 2]! & 0x03) << 8) | payload[at + 3]!;
      this.length[blocks] = length;
      dataBytes += length;
      at += REDUNDANT_HEADER_BYTES;
      blocks++;
    }
    if (at + dataBytes > n) return false;
    for (let i = 0; i < blocks - 1; i++) {
      this.start[i] = at;
      at += this.length[i]!;
    }
    this.start[blocks - 1] = at;
    this.length[blocks - 1] = n - at;
    this.count = blocks;
    return true;
  }

  /** The primary block's start and length (after a successful parse). */
  get primaryStart(): number {
    return this.start[this.count - 1]!;
  }

  get primaryLength(): number {
    return this.length[this.count - 1]!;
  }
}

/**
 * RED toward one subscriber's output, built from the packets that output itself sent (its rewritten
 * sequence numbers and timestamps, docs/media.md "Audio slots"): a redundant block is the payload of
 * sequence number `seq − k` with the timestamp offset between the two as this subscriber's stream
 * has them, so the offsets stay valid across slot switches (a switch keeps the sequence contiguous;
 * a block older than the 14-bit offset, e.g. across a pause, is left out). A packet whose
 * predecessors are missing (upstream loss) carries only what is there: receivers reconstruct a
 * block's sequence number as primary − k (werift's RedHandler, libwebrtc's RedPayloadSplitter does
 * it by timestamp), so only the contiguous run right before the primary is used.
 *
 * Allocation: four history buffers of 1023 bytes and one output buffer (one slab), once per output that ever
 * negotiated RED; views of the output by length are cached (steady VBR sizes repeat).
 */
export class RedPacketizer {
  /** The history entries (RED_MAX_BLOCK_BYTES each) then the output buffer, in one ArrayBuffer. */
  readonly #slab = Buffer.alloc(OUT_BASE + OUT_BYTES);
  readonly #data: Buffer[] = [];
  readonly #seq = new Int32Array(HISTORY).fill(-1);
  readonly #ts = new Uint32Array(HISTORY);
  readonly #len = new Uint16Array(HISTORY);
  readonly #out = this.#slab.subarray(OUT_BASE);
  readonly #views: (Buffer | undefined)[] = [];
  #lastSeq = -1;
  /** Redundant blocks written, for the bandwidth accounting in stats. */
  redundantBlocks = 0;
  redundantBytes = 0;

  constructor() {
    for (let i = 0; i < HISTORY; i++) this.#data.push(this.#slab.subarray(i * RED_MAX_BLOCK_BYTES, (i + 1) * RED_MAX_BLOCK_BYTES));
  }

  /** Keeps `payload` as the packet (seq, ts) for later redundancy. Older-than-newest packets are not kept (they would evict newer ones). */
  remember(payload: Uint8Array, seq: number, ts: number): void {
    if (this.#lastSeq >= 0 && ((seq - this.#lastSeq) & 0xffff) >= 0x8000) return;
    this.#lastSeq = seq;
    const k = seq & (HISTORY - 1);
    if (payload.length > RED_MAX_BLOCK_BYTES) {
      this.#seq[k] = -1;
      return;
    }
    this.#data[k]!.set(payload);
    this.#len[k] = payload.length;
    this.#seq[k] = seq;
    this.#ts[k] = ts >>> 0;
  }

  /**
   * The RED payload for the primary (seq, ts), with up to `distance` earlier packets of this
   * output as redundancy (oldest first), block PT `opusPt`. Remembers the primary. Returns null
   * when the packet does not fit the output buffer: send it plain then.
   */
  build(primary: Uint8Array, seq: number, ts: number, opusPt: number, distance: number): Buffer | null {
    let blocks = 0;
    let bytes = primary.length + PRIMARY_HEADER_BYTES;
    // How far back the contiguous, carriable history reaches.
    const max = Math.min(distance, HISTORY - 1, RED_MAX_BLOCKS);
    for (let k = 1; k <= max; k++) {
      const i = (seq - k) & (HISTORY - 1);
      if (this.#seq[i] !== ((seq - k) & 0xffff)) break;
      const offset = (ts - this.#ts[i]!) >>> 0;
      if (offset === 0 || offset > RED_MAX_TS_OFFSET) break;
      const more = bytes + REDUNDANT_HEADER_BYTES + this.#len[i]!;
      if (more > OUT_BYTES) break;
      bytes = more;
      blocks = k;
    }
    if (bytes > OUT_BYTES) return null;
    const out = this.#out;
    let at = 0;
    for (let k = blocks; k >= 1; k--) {
      const i = (seq - k) & (HISTORY - 1);
      const offset = (ts - this.#ts[i]!) >>> 0;
      const length = this.#len[i]!;
      out[at] = 0x80 | (opusPt & 0x7f);
      out[at + 1] = offset >> 6;
      out[at + 2] = ((offset & 0x3f) << 2) | (length >> 8);
      out[at + 3] = length & 0xff;
      at += REDUNDANT_HEADER_BYTES;
    }
    out[at++] = opusPt & 0x7f;
    for (let k = blocks; k >= 1; k--) {
      const i = (seq - k) & (HISTORY - 1);
      const length = this.#len[i]!;
      // History and output share one ArrayBuffer, so this is a native memmove that allocates
      // nothing (Node 20's Buffer#copy of part of a buffer makes a view per call).
      this.#slab.copyWithin(OUT_BASE + at, i * RED_MAX_BLOCK_BYTES, i * RED_MAX_BLOCK_BYTES + length);
      at += length;
      this.redundantBytes += length + REDUNDANT_HEADER_BYTES;
    }
    this.redundantBlocks += blocks;
    out.set(primary, at);
    at += primary.length;
    this.remember(primary, seq, ts);
    return (this.#views[at] ??= out.subarray(0, at));
  }
}
