import { VoxError } from '../errors.ts';
import type { FrameDecoder, FrameEncoder } from '../codec/frame-codec.ts';
import { G711FrameDecoder, G711FrameEncoder, OpusFrameDecoder, OpusFrameEncoder } from '../codec/frame-codecs.ts';
import { OPUS_PROFILES, dredVariant } from '../codec/profiles.ts';
import { SEQ_MOD, TS_MOD, unwrap } from '../codec/rtp-numbers.ts';
import { rtpClockRate, type MixInputCodec, type MixOutputFormat } from './mix-codecs.ts';

/**
 * Transcoder: one forwarded audio stream re-encoded for one kind of subscriber, as a pure processor
 * (`process(rtp payload, seq, ts) → packets[]`). The room shares one Transcoder per (source, target
 * format) among all subscribers that need that format, like the mixer shares encodes.
 *
 * - Opus → lower Opus profile (weak links, src/codec/profiles.ts): decode and encode at 48 kHz.
 * - Opus → G.711 (a telephony peer): an 8 kHz Opus decoder (libopus decodes straight to 8 kHz, no
 *   resampler of ours), then the G.711 tables.
 * - G.711 → Opus: G.711 tables, then an 8 kHz Opus encoder (libopus takes 8 kHz input and codes it
 *   narrowband; the RTP clock stays 48 kHz per RFC 7587 §4.1). In a mixed room the G.711 voice is
 *   instead upsampled into the 48 kHz bus (src/media/mix-codecs.ts).
 *
 * No jitter buffer: the subscriber has its own. Sequence numbers pass through (a loss stays a loss
 * the receiver can see), timestamps are rescaled to the output clock. One lost Opus packet is
 * rebuilt from the in-band FEC of the next one and sent ahead of it; reordered Opus packets that
 * arrive after a later one are dropped (decoding them would corrupt the decoder's state).
 *
 * DRED (`dred: true`, Opus → Opus only): the encoder is the profile's DRED variant (profiles.ts
 * `dredVariant`: DRED on, in-band FEC off, ≥ 24 kb/s), for subscribers whose loss calls for it and
 * who can decode DRED — the same trade as the mixer's DRED encode (docs/audio.md "DRED"). A room
 * keys its shared transcoders by (source, format, dred), so DRED costs one more encode per
 * source, not one per listener.
 *
 * Packets that are not 20 ms: a short one is zero-padded to 20 ms (never stale samples). A longer
 * one (40/60 ms Opus, long G.711 ptimes, up to 120 ms) goes out whole to a G.711 subscriber (one
 * longer G.711 packet); an Opus encoder codes 20 ms frames and sequence numbers pass through, so
 * toward Opus only the first 20 ms is sent and the rest is dropped and counted in `truncatedFrames`.
 */

const FRAME_MS = 20;
/** Longest packet decoded whole (RFC 6716 §3.2: 120 ms), in frames. */
const MAX_PACKET_FRAMES = 6;

export interface TranscoderOptions {
  from: MixInputCodec;
  to: MixOutputFormat;
  /**
   * Encode the DRED variant of the target Opus profile. Ignored toward G.711 (no DRED) and from
   * G.711 (the 8 kHz Opus encoder writes none). Default false.
   */
  dred?: boolean;
}

export interface TranscodedPacket {
  payload: Uint8Array;
  sequenceNumber: number;
  timestamp: number;
  /** True for a frame rebuilt from in-band FEC. */
  recovered: boolean;
}

export interface TranscoderStats {
  packetsIn: number;
  packetsOut: number;
  fecRecovered: number;
  /** Single lost packets the next one had no FEC for: the gap is filled with a concealed frame. */
  concealed: number;
  droppedReordered: number;
  codecErrors: number;
  /** 20 ms frames of over-long input packets dropped because the output codes one frame per packet. */
  truncatedFrames: number;
}

function isG711(codec: MixInputCodec | MixOutputFormat): codec is 'pcmu' | 'pcma' {
  return codec === 'pcmu' || codec === 'pcma';
}

export class Transcoder {
  readonly from: MixInputCodec;
  readonly to: MixOutputFormat;
  /** True when the Opus output carries DRED (`TranscoderOptions.dred` toward an Opus profile). */
  readonly dred: boolean;
  /** PCM rate between decoder and encoder: 8 kHz when either side is G.711, else 48 kHz. */
  readonly pcmRate: number;
  readonly #decoder: FrameDecoder;
  readonly #encoder: FrameEncoder;
  readonly #pcm: Float32Array;
  readonly #frame: number;
  /** Views of `#pcm` by length (whole frames), so the encoder sees exactly the samples decoded. */
  readonly #pcmViews: (Float32Array | undefined)[] = [];
  readonly #tsRatio: number;
  readonly #inFrameTicks: number;
  readonly #recovered = new Uint8Array(1500);
  readonly #out: TranscodedPacket[] = [];
  readonly #packetA: TranscodedPacket = { payload: new Uint8Array(0), sequenceNumber: 0, timestamp: 0, recovered: true };
  readonly #packetB: TranscodedPacket = { payload: new Uint8Array(0), sequenceNumber: 0, timestamp: 0, recovered: false };
  #started = false;
  #lastSeqExt = 0;
  #inTsBase = 0;
  #lastTsExt = 0;
  #outTsBase = 0;
  #stats: TranscoderStats = { packetsIn: 0, packetsOut: 0, fecRecovered: 0, concealed: 0, droppedReordered: 0, codecErrors: 0, truncatedFrames: 0 };

  constructor(options: TranscoderOptions) {
    this.from = options.from;
    this.to = options.to;
    if ((this.from as string) === this.to) {
      throw new VoxError('INVALID_ARGUMENT', `nothing to transcode from ${this.from} to ${this.to}`);
    }
    this.pcmRate = isG711(this.from) || isG711(this.to) ? 8000 : 48_000;
    const rate = this.pcmRate as 8000 | 48000;
    this.#decoder = isG711(this.from) ? new G711FrameDecoder(this.from) : new OpusFrameDecoder(rate);
    if (isG711(this.to)) {
      this.dred = false;
      this.#encoder = new G711FrameEncoder(this.to);
    } else {
      // libopus 1.5.2 writes no DRED from an 8 kHz encoder (measured: none at 24–48 kb/s, where
      // 16 and 48 kHz encoders reach back 55–295 ms), so a G.711 source's transcode carries none.
      this.dred = options.dred === true && rate === 48_000;
      const profile = OPUS_PROFILES[this.to];
      this.#encoder = new OpusFrameEncoder(this.dred ? dredVariant(profile) : profile, rate);
    }
    this.#frame = (rate * FRAME_MS) / 1000;
    this.#pcm = new Float32Array(this.#frame * MAX_PACKET_FRAMES);
    const inClock = rtpClockRate(this.from);
    this.#tsRatio = rtpClockRate(this.to) / inClock;
    this.#inFrameTicks = (inClock * FRAME_MS) / 1000;
  }

  /**
   * One RTP payload in; zero, one or two packets out (two when a lost frame was rebuilt from FEC).
   * Returned packets and payloads are reused by the next call.
   */
  process(payload: Uint8Array, sequenceNumber: number, timestamp: number): readonly TranscodedPacket[] {
    const out = this.#out;
    out.length = 0;
    this.#stats.packetsIn++;
    let seqExt = sequenceNumber;
    let tsExt = timestamp;
    if (!this.#started) {
      this.#started = true;
      this.#inTsBase = timestamp;
      // RFC 3550 §5.1: a fresh random timestamp origin for the new stream.
      this.#outTsBase = Math.floor(Math.random() * TS_MOD);
    } else {
      seqExt = unwrap(sequenceNumber, this.#lastSeqExt, SEQ_MOD);
      tsExt = unwrap(timestamp, this.#lastTsExt, TS_MOD);
      if (seqExt <= this.#lastSeqExt && this.from === 'opus') {
        this.#stats.droppedReordered++;
        return out;
      }
      if (this.from === 'opus' && seqExt === this.#lastSeqExt + 2 && this.#decoder.decodeFec) {
        // Exactly one packet missing and this one may carry its LBRR copy (RFC 6716 §2.1.7); without
        // one the gap is concealed, as the decoder would have done (a G.711 receiver's own PLC is worse).
        try {
          const fec = this.#decoder.decodeFec(payload, this.#pcm) > 0;
          if (!fec) this.#decoder.conceal(this.#pcm);
          const packet = this.#encoder.encode(this.#pcmView(this.#frame));
          this.#recovered.set(packet);
          const a = this.#packetA;
          a.payload = this.#recovered.subarray(0, packet.length);
          a.sequenceNumber = (seqExt - 1) & 0xffff;
          a.timestamp = this.#outTs(tsExt - this.#inFrameTicks);
          out.push(a);
          if (fec) this.#stats.fecRecovered++;
          else this.#stats.concealed++;
        } catch {
          this.#stats.codecErrors++;
        }
      }
    }
    if (seqExt >= this.#lastSeqExt) {
      // Reordered G.711 packets are transcoded (G.711 is stateless) but never move the reference back.
      this.#lastSeqExt = seqExt;
      this.#lastTsExt = tsExt;
    }
    try {
      const decoded = this.#decoder.decode(payload, this.#pcm);
      const frames = Math.max(1, Math.floor(decoded / this.#frame));
      const sent = isG711(this.to) ? frames : 1;
      this.#stats.truncatedFrames += frames - sent;
      const b = this.#packetB;
      b.payload = this.#encoder.encode(this.#pcmView(sent * this.#frame));
      b.sequenceNumber = sequenceNumber;
      b.timestamp = this.#outTs(tsExt);
      out.push(b);
    } catch {
      // A corrupt packet is dropped like a lost one; the subscriber's decoder conceals it.
      this.#stats.codecErrors++;
    }
    this.#stats.packetsOut += out.length;
    return out;
  }

  close(): void {
    if (this.#decoder instanceof OpusFrameDecoder) this.#decoder.close();
    if (this.#encoder instanceof OpusFrameEncoder) this.#encoder.close();
  }

  toJSON(): TranscoderStats {
    return { ...this.#stats };
  }

  #pcmView(length: number): Float32Array {
    return (this.#pcmViews[length] ??= this.#pcm.subarray(0, length));
  }

  #outTs(tsExt: number): number {
    const t = this.#outTsBase + Math.round((tsExt - this.#inTsBase) * this.#tsRatio);
    return ((t % TS_MOD) + TS_MOD) % TS_MOD;
  }
}
