import { OpusDecoder, OpusEncoder } from './opus.ts';
import type { OpusSampleRate } from './opus-ctl.ts';
import type { FrameDecoder, FrameEncoder } from './frame-codec.ts';
import { g711DecodeFloat, g711EncodeFloat, G711_SAMPLE_RATE, type G711Law } from './g711.ts';
import { Downsampler48to8, Upsampler8to48 } from './resample.ts';
import type { OpusProfile } from './profiles.ts';

/**
 * Adapters from the codecs VoxLink carries (Opus over wasm, G.711 tables) to the FrameDecoder /
 * FrameEncoder interfaces the jitter buffer, room mixer and transcoders use. Mono, 20 ms frames.
 *
 * Packets returned by encoders are copied out of wasm memory into a buffer the adapter owns: the
 * binding's views detach whenever wasm memory grows (another encoder created mid-tick), and the
 * mixer keeps one packet per stream alive until the room has sent it.
 */

const FRAME_MS = 20;
const MAX_PACKET_BYTES = 1500;

/** Packet bytes owned by an encoder adapter, with one cached view per length (no per-frame garbage). */
class PacketBuffer {
  readonly #bytes = new Uint8Array(MAX_PACKET_BYTES);
  readonly #views: (Uint8Array | undefined)[] = [];

  hold(packet: Uint8Array): Uint8Array {
    const n = Math.min(packet.length, MAX_PACKET_BYTES);
    this.#bytes.set(n === packet.length ? packet : packet.subarray(0, n));
    return (this.#views[n] ??= this.#bytes.subarray(0, n));
  }

  get bytes(): Uint8Array {
    return this.#bytes;
  }

  view(n: number): Uint8Array {
    return (this.#views[n] ??= this.#bytes.subarray(0, n));
  }
}

function copyFrame(src: Float32Array, dst: Float32Array, frame: number): number {
  const n = Math.min(src.length, frame, dst.length);
  for (let i = 0; i < n; i++) dst[i] = src[i]!;
  for (let i = n; i < frame && i < dst.length; i++) dst[i] = 0;
  return frame;
}

/**
 * Packets that are not 20 ms (RFC 7587 allows 2.5–120 ms Opus packets; G.711 senders may use any
 * ptime): `decode()` writes the packet's whole decode into `dst` in whole frames. A short packet is
 * zero-padded up to a frame boundary (never stale samples from an earlier frame); a longer one fills
 * 2, 3… frames when `dst` has room (the jitter buffer passes 120 ms and plays the remainder on the
 * next ticks); what does not fit in `dst` is dropped and counted in the decoder's `droppedSamples`.
 * Returns the samples written: a multiple of `frame`, at least one frame.
 */
function copyFrames(src: Float32Array, count: number, dst: Float32Array, frame: number): number {
  const cap = dst.length >= frame ? dst.length - (dst.length % frame) : dst.length;
  const n = Math.min(count, cap);
  for (let i = 0; i < n; i++) dst[i] = src[i]!;
  const written = Math.min(cap, Math.max(frame, Math.ceil(n / frame) * frame));
  dst.fill(0, n, written);
  return written;
}

/** Opus decoder (mono) at `sampleRate`: 48 kHz for the mix bus, 8 kHz straight to telephony. */
export class OpusFrameDecoder implements FrameDecoder {
  readonly sampleRate: number;
  readonly opus: OpusDecoder;
  readonly #frame: number;
  /** Decoded samples of over-long packets that did not fit the caller's buffer (dropped). */
  droppedSamples = 0;

  constructor(sampleRate: OpusSampleRate = 48_000, options: { complexity?: number } = {}) {
    this.sampleRate = sampleRate;
    this.opus = new OpusDecoder({ sampleRate, channels: 1, complexity: options.complexity });
    this.#frame = (sampleRate * FRAME_MS) / 1000;
  }

  /** Writes the whole packet (see copyFrames): 40/60 ms packets fill 2/3 frames if `pcm` has room. */
  decode(packet: Uint8Array, pcm: Float32Array): number {
    const decoded = this.opus.decode(packet);
    const written = copyFrames(decoded, decoded.length, pcm, this.#frame);
    if (decoded.length > written) this.droppedSamples += decoded.length - written;
    return written;
  }

  decodeFec(next: Uint8Array, pcm: Float32Array): number {
    if (!this.opus.hasFec(next)) return 0; // no LBRR in it: libopus would only conceal
    return copyFrame(this.opus.decodeFec(next, this.#frame), pcm, this.#frame);
  }

  decodeDred(later: Uint8Array, offsetSamples48k: number, pcm: Float32Array): number {
    if (!this.opus.dredAvailable) return 0;
    const offset = (offsetSamples48k * this.sampleRate) / 48_000;
    const reach = this.opus.parseDred(later);
    if (reach < offset) return 0;
    return copyFrame(this.opus.decodeDred(offset, this.#frame), pcm, this.#frame);
  }

  conceal(pcm: Float32Array): number {
    return copyFrame(this.opus.decodePlc(this.#frame), pcm, this.#frame);
  }

  reset(): void {
    this.opus.reset();
  }

  close(): void {
    this.opus.close();
  }
}

/** Opus encoder (mono) configured from a profile (src/codec/profiles.ts). */
export class OpusFrameEncoder implements FrameEncoder {
  readonly sampleRate: number;
  readonly opus: OpusEncoder;
  readonly #out = new PacketBuffer();

  constructor(profile: OpusProfile, sampleRate: OpusSampleRate = 48_000) {
    this.sampleRate = sampleRate;
    this.opus = new OpusEncoder({
      sampleRate,
      channels: 1,
      application: profile.application,
      bitrate: profile.bitrate,
      complexity: profile.complexity,
      inbandFec: profile.fec,
      packetLossPercent: profile.expectedLossPerc,
      dtx: profile.dtx,
      ...(profile.dredDuration > 0 ? { dredDuration: profile.dredDuration } : {}),
    });
  }

  /** Re-applies the bitrate-related settings of another profile without a new encoder state. */
  applyProfile(profile: OpusProfile): void {
    this.opus.bitrate = profile.bitrate;
    this.opus.complexity = profile.complexity;
    this.opus.inbandFec = profile.fec;
    this.opus.packetLossPercent = profile.expectedLossPerc;
    this.opus.dtx = profile.dtx;
  }

  encode(pcm: Float32Array): Uint8Array {
    this.opus.pcmIn.set(pcm.length === this.opus.frameSize ? pcm : pcm.subarray(0, this.opus.frameSize));
    return this.#out.hold(this.opus.encodeFrame());
  }

  reset(): void {
    this.opus.reset();
  }

  close(): void {
    this.opus.close();
  }
}

/** G.711 at its native 8 kHz (160 bytes ↔ 160 samples per 20 ms). No PLC: concealment is silence. */
export class G711FrameDecoder implements FrameDecoder {
  readonly sampleRate = G711_SAMPLE_RATE;
  readonly law: G711Law;
  /** Samples of over-long packets that did not fit the caller's buffer (dropped). */
  droppedSamples = 0;

  constructor(law: G711Law) {
    this.law = law;
  }

  /** Any ptime: short packets are zero-padded to a whole frame, long ones fill as many frames as `pcm` holds. */
  decode(packet: Uint8Array, pcm: Float32Array): number {
    const frame = (G711_SAMPLE_RATE * FRAME_MS) / 1000;
    const cap = pcm.length >= frame ? pcm.length - (pcm.length % frame) : pcm.length;
    const n = Math.min(packet.length, cap);
    g711DecodeFloat(this.law, packet, pcm, n);
    const written = Math.min(cap, Math.max(frame, Math.ceil(n / frame) * frame));
    pcm.fill(0, n, written);
    if (packet.length > n) this.droppedSamples += packet.length - n;
    return written;
  }

  conceal(pcm: Float32Array): number {
    const n = (G711_SAMPLE_RATE * FRAME_MS) / 1000;
    pcm.fill(0, 0, n);
    return n;
  }
}

export class G711FrameEncoder implements FrameEncoder {
  readonly sampleRate = G711_SAMPLE_RATE;
  readonly law: G711Law;
  readonly #out = new PacketBuffer();

  constructor(law: G711Law) {
    this.law = law;
  }

  encode(pcm: Float32Array): Uint8Array {
    const n = Math.min(pcm.length, MAX_PACKET_BYTES);
    g711EncodeFloat(this.law, pcm, this.#out.bytes, n);
    return this.#out.view(n);
  }
}

/** An 8 kHz decoder seen as a 48 kHz one (G.711 voices entering the 48 kHz mix bus). */
export class Upsampled48kDecoder implements FrameDecoder {
  readonly sampleRate = 48_000;
  readonly #inner: FrameDecoder;
  readonly #up = new Upsampler8to48();
  /** Up to 120 ms at 8 kHz, so a 40/60 ms G.711 packet passes whole when the caller's `pcm` has room. */
  readonly #wide = new Float32Array(960);
  readonly #narrow = this.#wide.subarray(0, 160);
  /** The narrow view matching the last `pcm` length (one allocation per distinct length). */
  #view: Float32Array = this.#narrow;

  constructor(inner: FrameDecoder) {
    if (inner.sampleRate !== 8000) throw new RangeError('Upsampled48kDecoder wraps an 8 kHz decoder');
    this.#inner = inner;
  }

  decode(packet: Uint8Array, pcm: Float32Array): number {
    const room = Math.max(160, Math.min(this.#wide.length, Math.floor(pcm.length / 6)));
    if (this.#view.length !== room) this.#view = this.#wide.subarray(0, room);
    const n = this.#inner.decode(packet, this.#view);
    this.#up.process(this.#view, pcm, n);
    return n * 6;
  }

  conceal(pcm: Float32Array): number {
    const n = this.#inner.conceal(this.#narrow);
    this.#up.process(this.#narrow, pcm, n);
    return n * 6;
  }
}

/** An 8 kHz encoder fed from the 48 kHz mix bus (the mix leaving for a G.711 listener). */
export class Downsampled48kEncoder implements FrameEncoder {
  readonly sampleRate = 48_000;
  readonly #inner: FrameEncoder;
  readonly #down = new Downsampler48to8();
  readonly #narrow = new Float32Array(160);

  constructor(inner: FrameEncoder) {
    if (inner.sampleRate !== 8000) throw new RangeError('Downsampled48kEncoder wraps an 8 kHz encoder');
    this.#inner = inner;
  }

  encode(pcm: Float32Array): Uint8Array {
    this.#down.process(pcm, this.#narrow, 960);
    return this.#inner.encode(this.#narrow);
  }
}
