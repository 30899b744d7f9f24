/**
 * Ogg Opus files (RFC 7845 on the Ogg container of RFC 3533): a streaming muxer for recording and
 * a reader for checking what was recorded.
 *
 * ## Why it looks like this
 * The recorder remuxes the Opus packets received over WebRTC (RTP payloads, RFC 7587) into .opus
 * files without re-encoding, and appends each page to disk as soon as it is complete, so a crash
 * loses at most the page being filled (`maxPageSamples`, default 1 s) — everything before it is
 * a readable file (`readOggOpus()` reports it as not ended, players just play it).
 *
 * ```ts
 * const writer = new OggOpusWriter((page) => fs.writeSync(fd, page), { channels: 1, tags: { TITLE: room } });
 * writer.write(rtpPayload);      // per received packet; copied
 * writer.gap(lostSamples);       // loss / DTX / mute: keeps the timeline with "lost frame" packets
 * writer.flush();                // e.g. on a timer, so a quiet stream is on disk too
 * writer.end();                  // end-of-stream page; later calls throw CODEC_CLOSED
 * ```
 *
 * ## Contract
 * - Granule positions count 48 kHz samples of every packet written, pre-skip included
 *   (RFC 7845 §4); durations come from each packet's TOC (`opusPacketSamples`), never from RTP
 *   timestamps, so the file's timeline is exactly what a decoder will produce.
 * - Packets are validated against RFC 6716 §3.4 (R1–R7) before anything is written: a packet that
 *   a decoder would reject never reaches the file (a decode error stops opusdec outright).
 *   Errors are `VoxError('CODEC_BAD_ARGUMENT')`; the writer stays usable after one.
 * - The sink receives each page exactly once, in order, as a fresh `Uint8Array` it may keep. If the
 *   sink throws, the error propagates out of the call that emitted the page and the stream lacks
 *   that page (`readOggOpus` reports the sequence gap): treat the file as failed.
 * - Single logical stream, channel mapping family 0 (mono or stereo), as a recorder of one
 *   WebRTC track needs. The reader rejects multiplexed or chained files.
 */
import { VoxError } from '../errors.ts';

// ---- Ogg page layout (RFC 3533 §6) ----
//
//  byte  field
//  0–3   capture pattern "OggS"
//  4     stream structure version, 0
//  5     header type flags: 0x01 continued packet, 0x02 beginning of stream, 0x04 end of stream
//  6–13  granule position, int64 LE (-1: no packet finishes on this page)
//  14–17 bitstream serial number, uint32 LE
//  18–21 page sequence number, uint32 LE
//  22–25 CRC32 of the whole page with this field zeroed, uint32 LE
//  26    number of segments (0–255)
//  27–   segment table (lacing values), then the segments

const OFFSET_VERSION = 4;
const OFFSET_FLAGS = 5;
const OFFSET_GRANULE = 6;
const OFFSET_SERIAL = 14;
const OFFSET_SEQUENCE = 18;
const OFFSET_CRC = 22;
const OFFSET_SEGMENTS = 26;
const PAGE_HEADER_BYTES = 27;
const MAX_SEGMENTS = 255;
/** Largest page body: 255 segments of 255 bytes. */
const MAX_BODY_BYTES = MAX_SEGMENTS * 255;

const FLAG_CONTINUED = 0x01;
const FLAG_BOS = 0x02;
const FLAG_EOS = 0x04;

const CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"
const OPUS_HEAD = 'OpusHead';
const OPUS_TAGS = 'OpusTags';
/** OpusHead of channel mapping family 0 is exactly 19 bytes (RFC 7845 §5.1). */
const OPUS_HEAD_BYTES = 19;

/**
 * Largest `maxPageSamples`: 4 s. A page closes after the packet that reaches the limit, so it holds
 * under 4 s + 120 ms, below the 5 s at which opusinfo reports "high muxing delay".
 */
const MAX_PAGE_SAMPLES = 48000 * 4;
/** Longest Opus packet: 120 ms at 48 kHz (RFC 6716 §3.2.5, R5). */
const MAX_PACKET_SAMPLES = 5760;
/** Longest Opus frame in bytes (RFC 6716 §3.4, R2). */
const MAX_FRAME_BYTES = 1275;

/**
 * Most audio one `gap()` call adds: 10 minutes at 48 kHz. A longer gap (a publisher muted for
 * hours) is a logic error in the caller more often than real, and 10 minutes of 20 ms filler
 * packets is already 30,000 packets (~118 pages, ~38 KB); a caller that means it calls again.
 */
export const OGG_OPUS_MAX_GAP_SAMPLES = 48000 * 600;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

function badArgument(message: string): VoxError {
  return new VoxError('CODEC_BAD_ARGUMENT', message);
}

// ---- CRC (RFC 3533 §6: "generator polynomial 0x04c11db7", direct, init 0, no final xor) ----

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r;
  }
  return table;
})();

/** Continues an Ogg CRC32 over `bytes[start, end)`; `>>> 0` of the result is the unsigned CRC. */
function crcUpdate(crc: number, bytes: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ bytes[i]) & 0xff];
  return crc;
}

const ZERO_CRC_FIELD = new Uint8Array(4);

/** CRC of the page at `bytes[start, end)` as if its CRC field were zero (RFC 3533 §6). */
function pageCrc(bytes: Uint8Array, start: number, end: number): number {
  let crc = crcUpdate(0, bytes, start, start + OFFSET_CRC);
  crc = crcUpdate(crc, ZERO_CRC_FIELD, 0, 4);
  return crcUpdate(crc, bytes, start + OFFSET_CRC + 4, end) >>> 0;
}

// ---- Opus packet durations (RFC 6716 §3.1–3.4) ----

/** Samples per frame at 48 kHz for each TOC configuration (RFC 6716 §3.1, Table 2). */
const FRAME_SAMPLES = (() => {
  const table = new Uint16Array(32);
  for (let config = 0; config < 32; config++) {
    if (config < 12) table[config] = [480, 960, 1920, 2880][config & 3]; // SILK: 10/20/40/60 ms
    else if (config < 16) table[config] = config & 1 ? 960 : 480; // Hybrid: 10/20 ms
    else table[config] = [120, 240, 480, 960][config & 3]; // CELT: 2.5/5/10/20 ms
  }
  return table;
})();

function malformed(rule: string, what: string): VoxError {
  return badArgument(`malformed Opus packet: ${what} (RFC 6716 §3.4 ${rule})`);
}

/**
 * Duration of an Opus packet in 48 kHz samples, like libopus's opus_packet_get_nb_samples, after
 * checking the whole framing against RFC 6716 §3.4 [R1]–[R7] the way opus_packet_parse does (frame
 * lengths, code-3 frame count and padding). Pure TypeScript: no wasm, no allocation.
 * Throws `VoxError('CODEC_BAD_ARGUMENT')` naming the violated requirement.
 */
export function opusPacketSamples(packet: Uint8Array): number {
  const n = packet.length;
  if (n === 0) throw malformed('R1', 'empty packet');
  const toc = packet[0];
  const frameSamples = FRAME_SAMPLES[toc >> 3];
  switch (toc & 3) {
    case 0: // one frame
      if (n - 1 > MAX_FRAME_BYTES) throw malformed('R2', `frame of ${n - 1} bytes`);
      return frameSamples;
    case 1: // two frames of equal size
      if ((n - 1) & 1) throw malformed('R3', `code 1 with an odd ${n - 1} bytes of frame data`);
      if ((n - 1) / 2 > MAX_FRAME_BYTES) throw malformed('R2', `frames of ${(n - 1) / 2} bytes`);
      return 2 * frameSamples;
    case 2: {
      // two frames, the first one's length coded (§3.2.1)
      if (n < 2) throw malformed('R4', 'code 2 without a frame length');
      let first = packet[1];
      let pos = 2;
      if (first >= 252) {
        if (n < 3) throw malformed('R4', 'code 2 with a cut two-byte frame length');
        first += 4 * packet[2];
        pos = 3;
      }
      if (first > n - pos) throw malformed('R4', `first frame of ${first} bytes in ${n - pos}`);
      if (n - pos - first > MAX_FRAME_BYTES) throw malformed('R2', `second frame of ${n - pos - first} bytes`);
      return 2 * frameSamples;
    }
    default: {
      // code 3: frame count byte [v p M5..M0], optional padding length, then frames (§3.2.5)
      if (n < 2) throw malformed('R5', 'code 3 without a frame count byte');
      const countByte = packet[1];
      const count = countByte & 0x3f;
      if (count === 0) throw malformed('R5', 'code 3 with a frame count of 0');
      if (count * frameSamples > MAX_PACKET_SAMPLES) {
        throw malformed('R5', `${count} frames of ${frameSamples / 48} ms is over 120 ms`);
      }
      let pos = 2;
      let padding = 0;
      if (countByte & 0x40) {
        let b: number;
        do {
          if (pos >= n) throw malformed('R6/R7', 'cut padding length');
          b = packet[pos++];
          padding += b === 255 ? 254 : b;
        } while (b === 255);
      }
      let remaining = n - pos - padding;
      if (remaining < 0) throw malformed('R6/R7', `padding of ${padding} bytes is longer than the packet`);
      if (countByte & 0x80) {
        for (let i = 0; i < count - 1; i++) {
          if (remaining < 1) throw malformed('R7', `no length for frame ${i + 1} of ${count}`);
          let length = packet[pos];
          let bytes = 1;
          if (length >= 252) {
            if (remaining < 2) throw malformed('R7', `cut length of frame ${i + 1} of ${count}`);
            length += 4 * packet[pos + 1];
            bytes = 2;
          }
          pos += bytes;
          remaining -= bytes + length;
          if (remaining < 0) throw malformed('R7', `frame lengths exceed the packet (frame ${i + 1} of ${count})`);
        }
        if (remaining > MAX_FRAME_BYTES) throw malformed('R2', `last frame of ${remaining} bytes`);
      } else {
        if (remaining % count !== 0) throw malformed('R6', `${remaining} bytes do not split into ${count} equal frames`);
        if (remaining / count > MAX_FRAME_BYTES) throw malformed('R2', `frames of ${remaining / count} bytes`);
      }
      return count * frameSamples;
    }
  }
}

// ---- Writer ----

export interface OggOpusWriterOptions {
  /** OpusHead output channel count; mapping family 0 allows 1 or 2 (RFC 7845 §5.1.1.1). */
  channels: 1 | 2;
  /**
   * OpusHead "input sample rate" in Hz: informational only, players decode at 48 kHz regardless
   * (RFC 7845 §5.1); 0 means unknown. Default 48000 (WebRTC captures at 48 kHz).
   */
  inputSampleRate?: number;
  /**
   * OpusHead pre-skip: 48 kHz samples a player drops from the start (RFC 7845 §4.2), 0–65535.
   * Default 0: remuxed RTP carries no record of the sender's encoder delay, and dropping samples
   * we cannot name would shift the recording against other participants' tracks. opusinfo calls a
   * pre-skip under 120 (libopus's smallest encoder delay) "implausibly low" and exits 1; a sender
   * known to use libopus in VOIP or AUDIO mode (browsers' libwebrtc) has a delay of 312.
   */
  preSkip?: number;
  /** OpusHead output gain, Q7.8 dB (signed 16-bit: 256 = +1 dB). Default 0. */
  outputGain?: number;
  /** Ogg bitstream serial number (uint32). Default random, so concatenated or muxed files stay apart. */
  serial?: number;
  /** OpusTags vendor string (RFC 7845 §5.2). Default 'VoxLink'. */
  vendor?: string;
  /**
   * OpusTags user comments, written as `KEY=value` (RFC 7845 §5.2.1, Vorbis comment rules: a key
   * is ASCII 0x20–0x7D without '='). E.g. `{ TITLE: 'Standup', ENCODER: 'VoxLink recorder' }`.
   */
  tags?: Record<string, string>;
  /**
   * Close a page once it holds this much audio (48 kHz samples), 1–192000 (4 s). Default 48000
   * (1 s): a crash loses at most about that much. Smaller costs a sink call and a 27-byte header
   * per page (0.7 % of a 32 kb/s stream at one page per second); larger risks more on a crash,
   * and opusinfo flags pages of 5 s or more as "high muxing delay". Pages also close when their
   * 255 segments are used up (RFC 3533 §6), whichever comes first.
   */
  maxPageSamples?: number;
}

/**
 * Streaming Ogg Opus muxer: Opus packets in, complete Ogg pages out through `sink` (RFC 7845).
 * The header pages (OpusHead, then OpusTags, each alone on its page, granule 0, RFC 7845 §3) are
 * emitted from the constructor; audio pages as they fill. One page buffer is reused; the only
 * per-page allocation is the page handed to the sink.
 */
export class OggOpusWriter {
  readonly #sink: (page: Uint8Array) => void;
  readonly #serial: number;
  readonly #maxPageSamples: number;
  /** Body of the page being filled; grows up to MAX_BODY_BYTES. */
  #body = new Uint8Array(4096);
  #bodyLength = 0;
  readonly #lacing = new Uint8Array(MAX_SEGMENTS);
  #segments = 0;
  /** Packets that finish on the page being filled (its granule is -1 while 0). */
  #pageEnds = 0;
  #pageSamples = 0;
  /** The page being filled starts with the rest of a packet from the previous page. */
  #pageContinued = false;
  #sequence = 0;
  #granule = 0;
  #packets = 0;
  /** TOC byte of the last packet (config and stereo flag), reused for `gap()` fillers. */
  #fillerToc: number;
  #fillerSamples = 960;
  readonly #filler = new Uint8Array(1);
  #ended = false;

  constructor(sink: (page: Uint8Array) => void, options: OggOpusWriterOptions) {
    const { channels } = options;
    if (channels !== 1 && channels !== 2) throw badArgument(`channels must be 1 or 2 (mapping family 0), got ${channels}`);
    const inputSampleRate = checkRange('inputSampleRate', options.inputSampleRate ?? 48000, 0, 0xffffffff);
    const preSkip = checkRange('preSkip', options.preSkip ?? 0, 0, 0xffff);
    const outputGain = checkRange('outputGain', options.outputGain ?? 0, -0x8000, 0x7fff);
    this.#serial =
      options.serial === undefined
        ? globalThis.crypto.getRandomValues(new Uint32Array(1))[0]
        : checkRange('serial', options.serial, 0, 0xffffffff);
    this.#maxPageSamples = checkRange('maxPageSamples', options.maxPageSamples ?? 48000, 1, MAX_PAGE_SAMPLES);
    const tags = encodeOpusTags(options.vendor ?? 'VoxLink', options.tags ?? {});
    this.#sink = sink;
    // Before any packet, gap() fills with 20 ms CELT fullband frames (config 31); a decoder that
    // has seen no packet yet outputs zeros for them whatever the mode (opus_decode_frame).
    this.#fillerToc = (31 << 3) | (channels === 2 ? 0x04 : 0);

    const head = new Uint8Array(OPUS_HEAD_BYTES);
    const view = new DataView(head.buffer);
    head.set(textEncoder.encode(OPUS_HEAD), 0);
    head[8] = 1; // version 1 (RFC 7845 §5.1)
    head[9] = channels;
    view.setUint16(10, preSkip, true);
    view.setUint32(12, inputSampleRate, true);
    view.setInt16(16, outputGain, true);
    head[18] = 0; // channel mapping family 0: mono/stereo, no mapping table
    this.#append(head, 0);
    this.#emitPage(false);
    this.#append(tags, 0);
    this.#emitPage(false);
  }

  /**
   * Appends one Opus packet (RFC 6716). Its duration comes from its TOC and frame count; a
   * malformed packet (see `opusPacketSamples`) throws `CODEC_BAD_ARGUMENT` and writes nothing.
   * The bytes are copied, so a reused view may be passed. Emits a page once it holds
   * `maxPageSamples` of audio or 255 segments; a packet that does not fit continues on the next
   * page (RFC 3533 §5).
   */
  write(packet: Uint8Array): void {
    this.#live();
    const samples = opusPacketSamples(packet);
    this.#fillerToc = packet[0] & 0xfc;
    this.#fillerSamples = FRAME_SAMPLES[packet[0] >> 3];
    this.#appendAudio(packet, samples);
  }

  /**
   * Keeps the timeline through a gap (loss, DTX, a muted publisher): appends `samples` (48 kHz)
   * worth of filler packets, rounded down to whole frames of the last packet's frame size (20 ms
   * before any packet). Each filler is a TOC-only code-0 packet with the last packet's
   * configuration: one byte, no frame data, which decoders treat as a lost frame, as they treat
   * WebRTC's DTX packets: libopus conceals the first frames and fades out, down to a low
   * comfort-noise floor after SILK. At most `OGG_OPUS_MAX_GAP_SAMPLES` (10 min) per call.
   * Returns the samples actually added, so a caller can carry the remainder into the next gap.
   */
  gap(samples: number): number {
    this.#live();
    if (!(samples >= 0) || !Number.isFinite(samples)) throw badArgument(`gap must be a finite number of samples ≥ 0, got ${samples}`);
    const frame = this.#fillerSamples;
    const frames = Math.floor(Math.min(samples, OGG_OPUS_MAX_GAP_SAMPLES) / frame);
    this.#filler[0] = this.#fillerToc;
    for (let i = 0; i < frames; i++) this.#appendAudio(this.#filler, frame);
    return frames * frame;
  }

  /**
   * Ends the current page now, if it holds any packet, and emits it: everything written so far is
   * then on disk once the sink has written it. Call it when a stream goes quiet or on a timer.
   */
  flush(): void {
    this.#live();
    if (this.#segments > 0) this.#emitPage(false);
  }

  /**
   * Emits the last page with the end-of-stream flag (RFC 3533 §6): the pending page, or, if
   * everything was already emitted (a page had just filled, or after `flush()`), an empty page
   * with granule position -1, which RFC 3533 allows and Ogg tools accept. Idempotent; later
   * `write`/`gap`/`flush` throw `CODEC_CLOSED`.
   */
  end(): void {
    if (this.#ended) return;
    this.#emitPage(true);
    this.#ended = true;
  }

  /** Granule position so far: 48 kHz samples of all packets written, fillers included (RFC 7845 §4). */
  get granule(): number {
    return this.#granule;
  }

  /** Pages handed to the sink, header pages included. */
  get pagesWritten(): number {
    return this.#sequence;
  }

  /** Audio packets written, `gap()` fillers included (not the two header packets). */
  get packetsWritten(): number {
    return this.#packets;
  }

  get ended(): boolean {
    return this.#ended;
  }

  #live(): void {
    if (this.#ended) throw new VoxError('CODEC_CLOSED', 'OggOpusWriter has ended');
  }

  #appendAudio(packet: Uint8Array, samples: number): void {
    this.#append(packet, samples);
    this.#packets++;
    if (this.#segments === MAX_SEGMENTS || this.#pageSamples >= this.#maxPageSamples) this.#emitPage(false);
  }

  /**
   * Lacing (RFC 3533 §5): a packet of L bytes is floor(L/255) segments of 255 plus one of L % 255
   * (0 when L is a multiple of 255). When the page runs out of segments, it is emitted with as
   * many 255-byte segments as fit, and the packet continues on the next page.
   */
  #append(packet: Uint8Array, samples: number): void {
    let offset = 0;
    let remaining = packet.length;
    for (;;) {
      const free = MAX_SEGMENTS - this.#segments;
      const needed = Math.floor(remaining / 255) + 1;
      if (needed <= free) {
        this.#copy(packet, offset, remaining);
        this.#lacing.fill(255, this.#segments, this.#segments + needed - 1);
        this.#lacing[this.#segments + needed - 1] = remaining % 255;
        this.#segments += needed;
        this.#granule += samples;
        this.#pageSamples += samples;
        this.#pageEnds++;
        return;
      }
      const bytes = free * 255;
      this.#copy(packet, offset, bytes);
      this.#lacing.fill(255, this.#segments, MAX_SEGMENTS);
      this.#segments = MAX_SEGMENTS;
      offset += bytes;
      remaining -= bytes;
      this.#emitPage(false);
      this.#pageContinued = true;
    }
  }

  #copy(packet: Uint8Array, offset: number, length: number): void {
    const end = this.#bodyLength + length;
    if (end > this.#body.length) {
      const grown = new Uint8Array(Math.min(MAX_BODY_BYTES, Math.max(end, this.#body.length * 2)));
      grown.set(this.#body.subarray(0, this.#bodyLength));
      this.#body = grown;
    }
    this.#body.set(offset === 0 && length === packet.length ? packet : packet.subarray(offset, offset + length), this.#bodyLength);
    this.#bodyLength = end;
  }

  #emitPage(eos: boolean): void {
    const segments = this.#segments;
    const page = new Uint8Array(PAGE_HEADER_BYTES + segments + this.#bodyLength);
    const view = new DataView(page.buffer);
    page.set(CAPTURE, 0);
    page[OFFSET_VERSION] = 0;
    page[OFFSET_FLAGS] = (this.#pageContinued ? FLAG_CONTINUED : 0) | (this.#sequence === 0 ? FLAG_BOS : 0) | (eos ? FLAG_EOS : 0);
    // RFC 3533 §6: -1 when no packet finishes on the page, an empty end-of-stream page included
    // (opusinfo flags a position on a page without packets; players take the duration from the
    // last page that has one).
    if (this.#pageEnds === 0) {
      view.setInt32(OFFSET_GRANULE, -1, true);
      view.setInt32(OFFSET_GRANULE + 4, -1, true);
    } else {
      view.setUint32(OFFSET_GRANULE, this.#granule % 0x100000000, true);
      view.setUint32(OFFSET_GRANULE + 4, Math.floor(this.#granule / 0x100000000), true);
    }
    view.setUint32(OFFSET_SERIAL, this.#serial, true);
    view.setUint32(OFFSET_SEQUENCE, this.#sequence, true);
    page[OFFSET_SEGMENTS] = segments;
    page.set(this.#lacing.subarray(0, segments), PAGE_HEADER_BYTES);
    page.set(this.#body.subarray(0, this.#bodyLength), PAGE_HEADER_BYTES + segments);
    view.setUint32(OFFSET_CRC, pageCrc(page, 0, page.length), true);
    this.#sequence++;
    this.#segments = 0;
    this.#bodyLength = 0;
    this.#pageEnds = 0;
    this.#pageSamples = 0;
    this.#pageContinued = false;
    this.#sink(page);
  }
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badArgument(`${name} must be an integer in ${min}..${max}, got ${value}`);
  }
  return value;
}

/** Vorbis comment field names: ASCII 0x20–0x7D except '=' (RFC 7845 §5.2.1). */
const TAG_KEY = /^[\x20-\x3c\x3e-\x7d]+$/;

/** OpusTags (RFC 7845 §5.2): magic, vendor (len + UTF-8), comment count, comments (len + UTF-8). */
function encodeOpusTags(vendor: string, tags: Record<string, string>): Uint8Array {
  const parts = [textEncoder.encode(vendor)];
  for (const [key, value] of Object.entries(tags)) {
    if (!TAG_KEY.test(key)) throw badArgument(`tag key ${JSON.stringify(key)} must be ASCII 0x20–0x7D without '='`);
    if (typeof value !== 'string') throw badArgument(`tag ${key} must be a string`);
    parts.push(textEncoder.encode(`${key}=${value}`));
  }
  const out = new Uint8Array(8 + 4 + 4 * parts.length + parts.reduce((n, p) => n + p.length, 0));
  const view = new DataView(out.buffer);
  out.set(textEncoder.encode(OPUS_TAGS), 0);
  let pos = 8;
  for (let i = 0; i < parts.length; i++) {
    view.setUint32(pos, parts[i].length, true);
    out.set(parts[i], pos + 4);
    pos += 4 + parts[i].length;
    if (i === 0) {
      view.setUint32(pos, parts.length - 1, true);
      pos += 4;
    }
  }
  return out;
}

// ---- Reader ----

export interface OggOpusHead {
  channels: number;
  preSkip: number;
  inputSampleRate: number;
  /** Q7.8 dB. */
  outputGain: number;
  mappingFamily: number;
}

export interface OggOpusFile {
  head: OggOpusHead;
  tags: { vendor: string; comments: string[] };
  /** Audio packets in order. Views into the input where a packet sits on one page, copies where it spans pages. */
  packets: Uint8Array[];
  /** Granule position of the last page that has one (48 kHz samples, pre-skip included). */
  granule: number;
  /** Complete pages read, header pages included. */
  pages: number;
  /** An end-of-stream page was seen. */
  ended: boolean;
}

/**
 * Parses a whole Ogg Opus stream (one logical stream, RFC 7845 on RFC 3533) and checks it: every
 * page's capture pattern, version, CRC, serial and sequence number (a missing page is an error);
 * BOS/EOS/continued flags; header packets and their pages (RFC 7845 §3: OpusHead alone on the
 * first page, OpusTags finishing its page, both at granule 0); granule positions (-1 only where
 * no packet finishes, never decreasing); every audio packet's framing (`opusPacketSamples`).
 *
 * A file cut by a crash is expected: an incomplete final page, and a packet left unfinished by
 * the last complete page, are dropped and reported as `truncated: true`. Anything else malformed
 * throws `VoxError('CODEC_BAD_ARGUMENT')` saying what is wrong, on which page, at which byte offset.
 */
export function readOggOpus(bytes: Uint8Array): OggOpusFile & { truncated: boolean } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const packets: Uint8Array[] = [];
  let head: OggOpusHead | undefined;
  let tags: OggOpusFile['tags'] | undefined;
  let headerPackets = 0;
  let serial = 0;
  let pages = 0;
  let granule = 0;
  let ended = false;
  let truncated = false;
  /** Pieces of a packet continued from earlier pages. */
  let pending: Uint8Array[] = [];
  let offset = 0;

  while (offset < bytes.length) {
    const fail = (what: string): VoxError => badArgument(`Ogg page ${pages} at byte ${offset}: ${what}`);
    if (ended) throw fail('data after the end-of-stream page');
    const available = bytes.length - offset;
    for (let i = 0; i < Math.min(4, available); i++) {
      if (bytes[offset + i] !== CAPTURE[i]) throw fail('no "OggS" capture pattern');
    }
    if (available < PAGE_HEADER_BYTES || available < PAGE_HEADER_BYTES + bytes[offset + OFFSET_SEGMENTS]) {
      truncated = true;
      break;
    }
    const segments = bytes[offset + OFFSET_SEGMENTS];
    const tableStart = offset + PAGE_HEADER_BYTES;
    let bodyLength = 0;
    for (let i = 0; i < segments; i++) bodyLength += bytes[tableStart + i];
    const pageEnd = tableStart + segments + bodyLength;
    if (pageEnd > bytes.length) {
      truncated = true;
      break;
    }

    if (bytes[offset + OFFSET_VERSION] !== 0) throw fail(`stream structure version ${bytes[offset + OFFSET_VERSION]}, expected 0`);
    const stored = view.getUint32(offset + OFFSET_CRC, true);
    const computed = pageCrc(bytes, offset, pageEnd);
    if (stored !== computed) throw fail(`CRC mismatch (stored 0x${hex(stored)}, computed 0x${hex(computed)})`);
    const flags = bytes[offset + OFFSET_FLAGS];
    if (flags & ~(FLAG_CONTINUED | FLAG_BOS | FLAG_EOS)) throw fail(`unknown header type flags 0x${flags.toString(16)}`);
    const pageSerial = view.getUint32(offset + OFFSET_SERIAL, true);
    const sequence = view.getUint32(offset + OFFSET_SEQUENCE, true);
    if (pages === 0) {
      if (!(flags & FLAG_BOS)) throw fail('first page lacks the beginning-of-stream flag');
      serial = pageSerial;
    } else {
      if (flags & FLAG_BOS) throw fail('beginning-of-stream flag on a later page (chained or multiplexed streams are not supported)');
      if (pageSerial !== serial) {
        throw fail(`serial ${pageSerial} differs from the stream's ${serial} (multiplexed streams are not supported)`);
      }
    }
    if (sequence !== pages) throw fail(`page sequence number ${sequence}, expected ${pages} (a page is missing or out of order)`);
    if (Boolean(flags & FLAG_CONTINUED) !== pending.length > 0) {
      throw fail(
        flags & FLAG_CONTINUED
          ? 'continued-packet flag but no packet to continue'
          : 'previous page left a packet unfinished but this page does not continue it',
      );
    }
    const low = view.getUint32(offset + OFFSET_GRANULE, true);
    const high = view.getUint32(offset + OFFSET_GRANULE + 4, true);
    const noGranule = low === 0xffffffff && high === 0xffffffff;
    if (!noGranule && high >= 0x200000) throw fail(`granule position out of range (high word 0x${hex(high)})`);
    const pageGranule = noGranule ? -1 : high * 0x100000000 + low;

    let finished = 0;
    const headerPage = headerPackets < 2;
    let start = tableStart + segments;
    let pos = start;
    for (let i = 0; i < segments; i++) {
      const lace = bytes[tableStart + i];
      pos += lace;
      if (lace === 255) continue;
      let packet = bytes.subarray(start, pos);
      if (pending.length > 0) {
        packet = concat([...pending, packet]);
        pending = [];
      }
      start = pos;
      finished++;
      if (headerPackets === 0) {
        if (pages !== 0 || i !== segments - 1) throw fail('OpusHead must be alone on the first page (RFC 7845 §3)');
        head = parseOpusHead(packet, fail);
        headerPackets++;
      } else if (headerPackets === 1) {
        if (i !== segments - 1) throw fail('OpusTags must finish its page (RFC 7845 §3)');
        tags = parseOpusTags(packet, fail);
        headerPackets++;
      } else {
        try {
          opusPacketSamples(packet);
        } catch (error) {
          throw fail(`audio packet ${packets.length}: ${(error as Error).message}`);
        }
        packets.push(packet);
      }
    }
    // A last lacing value of 255 leaves the packet open: it continues on the next page.
    if (start < pos) pending.push(bytes.subarray(start, pos));
    if (pages === 0 && finished === 0) throw fail('OpusHead must complete on the first page (RFC 7845 §3)');
    if (finished === 0 && segments > 0 && pageGranule !== -1) {
      throw fail(`granule position ${pageGranule} on a page where no packet finishes`);
    }
    if (finished > 0 && pageGranule === -1) throw fail('granule position -1 on a page where a packet finishes');
    if (headerPage) {
      if (pageGranule > 0) throw fail(`header page with granule position ${pageGranule}, expected 0 (RFC 7845 §3)`);
    } else if (pageGranule !== -1) {
      if (pageGranule < granule) throw fail(`granule position ${pageGranule} is before the previous page's ${granule}`);
      granule = pageGranule;
    }
    if (flags & FLAG_EOS) {
      if (pending.length > 0) throw fail('end-of-stream page leaves a packet unfinished');
      ended = true;
    }
    pages++;
    offset = pageEnd;
  }

  if (pending.length > 0) truncated = true;
  if (head === undefined || tags === undefined) {
    const missing = head ? 'OpusTags' : 'OpusHead';
    const why = bytes.length === 0 ? 'no data' : `ends at byte ${bytes.length} before the ${missing} header is complete`;
    throw badArgument(`not an Ogg Opus stream: ${why}`);
  }
  return { head, tags, packets, granule, pages, ended, truncated };
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

function hasMagic(packet: Uint8Array, magic: string): boolean {
  if (packet.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (packet[i] !== magic.charCodeAt(i)) return false;
  return true;
}

/** OpusHead (RFC 7845 §5.1). */
function parseOpusHead(packet: Uint8Array, fail: (what: string) => VoxError): OggOpusHead {
  if (!hasMagic(packet, OPUS_HEAD)) throw fail('first packet is not OpusHead');
  if (packet.length < OPUS_HEAD_BYTES) throw fail(`OpusHead of ${packet.length} bytes, expected at least ${OPUS_HEAD_BYTES}`);
  // §5.1: the upper four bits are the major version; only 0 (versions 0–15) is this format.
  if (packet[8] & 0xf0) throw fail(`OpusHead version ${packet[8]} is not supported`);
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const channels = packet[9];
  const mappingFamily = packet[18];
  if (channels === 0) throw fail('OpusHead with 0 channels');
  if (mappingFamily === 0 ? channels > 2 || packet.length !== OPUS_HEAD_BYTES : packet.length < OPUS_HEAD_BYTES + 2 + channels) {
    throw fail(`OpusHead of ${packet.length} bytes does not fit mapping family ${mappingFamily} with ${channels} channels`);
  }
  return {
    channels,
    preSkip: view.getUint16(10, true),
    inputSampleRate: view.getUint32(12, true),
    outputGain: view.getInt16(16, true),
    mappingFamily,
  };
}

/** OpusTags (RFC 7845 §5.2). */
function parseOpusTags(packet: Uint8Array, fail: (what: string) => VoxError): OggOpusFile['tags'] {
  if (!hasMagic(packet, OPUS_TAGS)) throw fail('second packet is not OpusTags');
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  let pos = 8;
  const string = (what: string): string => {
    if (pos + 4 > packet.length) throw fail(`OpusTags cut before the ${what} length`);
    const length = view.getUint32(pos, true);
    pos += 4;
    if (length > packet.length - pos) throw fail(`OpusTags ${what} of ${length} bytes overruns the packet`);
    try {
      return textDecoder.decode(packet.subarray(pos, (pos += length)));
    } catch {
      throw fail(`OpusTags ${what} is not UTF-8`);
    }
  };
  const vendor = string('vendor string');
  if (pos + 4 > packet.length) throw fail('OpusTags cut before the comment count');
  const count = view.getUint32(pos, true);
  pos += 4;
  if (count > (packet.length - pos) / 4) throw fail(`OpusTags comment count ${count} overruns the packet`);
  const comments: string[] = [];
  for (let i = 0; i < count; i++) comments.push(string(`comment ${i}`));
  return { vendor, comments };
}
