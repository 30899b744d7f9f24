import type { FrameDecoder, FrameEncoder } from '../codec/frame-codec.ts';
import {
  Downsampled48kEncoder,
  G711FrameDecoder,
  G711FrameEncoder,
  OpusFrameDecoder,
  OpusFrameEncoder,
  Upsampled48kDecoder,
} from '../codec/frame-codecs.ts';
import { dredVariant, OPUS_PROFILES, type OpusProfileName } from '../codec/profiles.ts';

/** What a participant sends: Opus (RFC 7587) or G.711 from a telephony peer. */
export type MixInputCodec = 'opus' | 'pcmu' | 'pcma';
/** What a listener receives: an Opus profile, or G.711. */
export type MixOutputFormat = OpusProfileName | 'pcmu' | 'pcma';

/** RTP clock of an output format (RFC 7587 §4.1: Opus is always 48 kHz; RFC 3551: G.711 8 kHz). */
export function rtpClockRate(format: MixOutputFormat | MixInputCodec): number {
  return format === 'pcmu' || format === 'pcma' ? 8000 : 48_000;
}

/**
 * How the room mixer gets codecs. Decoders produce, and encoders take, 20 ms of mono 48 kHz PCM:
 * the mix bus rate. G.711 voices are upsampled into the bus and the bus downsampled for G.711
 * listeners (src/codec/resample.ts), so a telephony peer is just another input/listener.
 */
export interface MixCodecs {
  createDecoder(codec: MixInputCodec): FrameDecoder;
  /**
   * An encoder for `format`; `dred`: its DRED variant (profiles.ts `dredVariant`: DRED on, in-band
   * FEC off), asked only for Opus formats.
   */
  createEncoder(format: MixOutputFormat, dred?: boolean): FrameEncoder;
  /** Frees a codec the mixer no longer uses (wasm state). */
  release?(codec: FrameDecoder | FrameEncoder): void;
}

export interface OpusMixCodecsOptions {
  /** Opus decoder complexity (≥ 5 enables deep PLC in Opus 1.5). Default 0. */
  decoderComplexity?: number;
  /** Overrides the encoder complexity of every profile (default: the profile's own; a DRED variant keeps at least 7). */
  encoderComplexity?: number;
}

/** The default MixCodecs: Opus over wasm/opus.wasm and table G.711. */
export function createMixCodecs(options: OpusMixCodecsOptions = {}): MixCodecs {
  return {
    createDecoder(codec) {
      if (codec === 'opus') return new OpusFrameDecoder(48_000, { complexity: options.decoderComplexity });
      return new Upsampled48kDecoder(new G711FrameDecoder(codec));
    },
    createEncoder(format, dred = false) {
      if (format === 'pcmu' || format === 'pcma') return new Downsampled48kEncoder(new G711FrameEncoder(format));
      const base = OPUS_PROFILES[format];
      const profile = dred ? dredVariant(base) : base;
      return new OpusFrameEncoder(
        options.encoderComplexity === undefined
          ? profile
          : { ...profile, complexity: dred ? Math.max(7, options.encoderComplexity) : options.encoderComplexity },
      );
    },
    release(codec) {
      if (codec instanceof OpusFrameDecoder || codec instanceof OpusFrameEncoder) codec.close();
    },
  };
}
