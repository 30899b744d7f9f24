import {
  readMarker,
  readSequenceNumber,
  readSsrc,
  readTimestamp,
  rtpPayloadOffset,
  seqDelta,
  writeMarker,
  writeSequenceNumber,
  writeSsrc,
  writeTimestamp,
} from './rtp.ts';

export interface SlotStreamOptions {
  /** The slot's own SSRC, fixed for the life of the subscriber's transceiver. */
  ssrc: number;
  /** RTP clock rate of the slot's codec; Opus is always 48 kHz (RFC 7587 §4.1). */
  clockRate?: number;
  /** Timestamp advance when a switch happens with no measurable pause: one 20 ms Opus frame. */
  frameSamples?: number;
  initialSequence?: number;
  initialTimestamp?: number;
}

/** The header fields of the packet as it leaves on the slot. One object per stream, reused. */
export interface SlotHeader {
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
}

export interface SlotStreamStats {
  ssrc: number;
  source: string | null;
  forwarded: number;
  switches: number;
  droppedMalformed: number;
  droppedLate: number;
  droppedDuplicate: number;
}

/** A packet this far behind the newest is not "reordered" but a restarted or foreign stream. */
const MAX_REORDER = 100;
/** A jump this far ahead means the sender restarted its sequence: re-anchor instead of leaving a gap of thousands. */
const MAX_JUMP = 3000;

/**
 * One outgoing audio slot: many sources over time, one continuous RTP stream to the subscriber.
 *
 * Each source keeps a constant sequence/timestamp offset while it holds the slot, so real loss
 * upstream stays visible to the receiver (its NACK/PLC/FEC still work). On a switch (or when a
 * source restarts) the stream re-anchors: the next sequence number is last+1, and the timestamp
 * advances by the wall time since the last packet (at least one frame), so the receiver's jitter
 * buffer sees a talkspurt boundary, not a clock jump (RFC 3550 §5.1; RFC 7587 §4.1 marks the
 * first packet of a talkspurt with M=1). Pure: no sockets, no timers, no allocation per packet.
 */
export class SlotStream {
  readonly ssrc: number;
  #clockPerMs: number;
  #frameSamples: number;
  readonly #header: SlotHeader;

  #source: string | null = null;
  #anchored = false;
  #started = false;
  #srcSsrc = 0;
  #anchorSrcSeq = 0;
  #lastSrcSeq = 0;
  #seqOffset = 0;
  #tsOffset = 0;
  #lastOutSeq: number;
  #lastOutTs: number;
  #lastOutMs = 0;

  #forwarded = 0;
  #switches = 0;
  #droppedMalformed = 0;
  #droppedLate = 0;
  #droppedDuplicate = 0;

  constructor(options: SlotStreamOptions) {
    this.ssrc = options.ssrc >>> 0;
    this.#clockPerMs = (options.clockRate ?? 48_000) / 1000;
    this.#frameSamples = options.frameSamples ?? 960;
    this.#lastOutSeq = ((options.initialSequence ?? 0) - 1) & 0xffff;
    this.#lastOutTs = ((options.initialTimestamp ?? 0) - this.#frameSamples) >>> 0;
    this.#header = { ssrc: this.ssrc, sequenceNumber: 0, timestamp: 0, marker: false };
  }

  /**
   * Changes the slot's RTP clock, e.g. to 8 kHz (160 per 20 ms) once a subscriber has negotiated
   * G.711, whose transcoded packets carry 8 kHz timestamps. The next packet re-anchors, and the
   * gap it bridges is counted in the new clock.
   */
  setClock(clockRate: number, frameSamples: number): void {
    const perMs = clockRate / 1000;
    if (perMs === this.#clockPerMs && frameSamples === this.#frameSamples) return;
    this.#clockPerMs = perMs;
    this.#frameSamples = frameSamples;
    this.#anchored = false;
  }

  /** Who occupies the slot (a participant id), or null when it is empty. */
  get source(): string | null {
    return this.#source;
  }

  /** Assigns the slot to another participant; their next packet re-anchors the stream. */
  setSource(source: string | null): boolean {
    if (source === this.#source) return false;
    this.#source = source;
    this.#anchored = false;
    if (this.#started) this.#switches++;
    return true;
  }

  /**
   * Rewrites a serialized RTP packet in place (SSRC, sequence number, timestamp, marker) and
   * returns the new header fields, or null when the packet must be dropped (malformed, late from
   * before the switch, duplicate). The returned object is reused by the next call.
   */
  rewrite(packet: Uint8Array, nowMs: number): SlotHeader | null {
    if (rtpPayloadOffset(packet) < 0) {
      this.#droppedMalformed++;
      return null;
    }
    const header = this.rewriteFields(
      readSsrc(packet),
      readSequenceNumber(packet),
      readTimestamp(packet),
      readMarker(packet),
      nowMs,
    );
    if (header === null) return null;
    writeSsrc(packet, header.ssrc);
    writeSequenceNumber(packet, header.sequenceNumber);
    writeTimestamp(packet, header.timestamp);
    writeMarker(packet, header.marker);
    return header;
  }

  /** The same as {@link rewrite} for a packet already parsed (werift's RtpHeader fields). */
  rewriteFields(srcSsrc: number, seq: number, ts: number, marker: boolean, nowMs: number): SlotHeader | null {
    const header = this.#header;
    let reanchor = !this.#anchored || srcSsrc !== this.#srcSsrc;
    if (!reanchor) {
      const delta = seqDelta(this.#lastSrcSeq, seq);
      if (delta === 0) {
        this.#droppedDuplicate++;
        return null;
      }
      if (delta < 0) {
        if (delta < -MAX_REORDER) {
          reanchor = true;
        } else if (seqDelta(this.#anchorSrcSeq, seq) < 0) {
          // Older than the first packet after the switch: its slot numbers belong to the previous speaker.
          this.#droppedLate++;
          return null;
        } else {
          // Reordered within the current source: same offsets, so it lands in its own gap.
          header.sequenceNumber = (seq + this.#seqOffset) & 0xffff;
          header.timestamp = (ts + this.#tsOffset) >>> 0;
          header.marker = marker;
          this.#forwarded++;
          return header;
        }
      } else if (delta > MAX_JUMP) {
        reanchor = true;
      }
    }
    let outSeq: number;
    let outTs: number;
    if (reanchor) {
      outSeq = (this.#lastOutSeq + 1) & 0xffff;
      let advance = this.#frameSamples;
      if (this.#started) {
        const elapsed = Math.round((nowMs - this.#lastOutMs) * this.#clockPerMs);
        if (elapsed > advance) advance = elapsed;
      }
      outTs = (this.#lastOutTs + advance) >>> 0;
      this.#seqOffset = (outSeq - seq) & 0xffff;
      this.#tsOffset = (outTs - ts) >>> 0;
      this.#srcSsrc = srcSsrc;
      this.#anchorSrcSeq = seq;
      this.#anchored = true;
      marker = true;
    } else {
      outSeq = (seq + this.#seqOffset) & 0xffff;
      outTs = (ts + this.#tsOffset) >>> 0;
    }
    this.#lastSrcSeq = seq;
    this.#lastOutSeq = outSeq;
    this.#lastOutTs = outTs;
    this.#lastOutMs = nowMs;
    this.#started = true;
    this.#forwarded++;
    header.sequenceNumber = outSeq;
    header.timestamp = outTs;
    header.marker = marker;
    return header;
  }

  toJSON(): SlotStreamStats {
    return {
      ssrc: this.ssrc,
      source: this.#source,
      forwarded: this.#forwarded,
      switches: this.#switches,
      droppedMalformed: this.#droppedMalformed,
      droppedLate: this.#droppedLate,
      droppedDuplicate: this.#droppedDuplicate,
    };
  }
}
