/**
 * Public surface of the codec package. Import from here, not from the files behind it.
 */

// Opus (wasm/opus.wasm): encoder, decoder, loader, constants.
export {
  OpusEncoder,
  OpusDecoder,
  OpusError,
  isOpusError,
  getOpusPacketInfo,
  opusVersion,
  opusFinalizedCount,
  warmUpOpus,
  type OpusEncoderOptions,
  type OpusDecoderOptions,
  type OpusChannels,
  type OpusFrameDurationMs,
  type OpusPacketInfo,
  type OpusWarmUp,
} from './opus.ts';
export {
  OPUS_AUTO,
  OPUS_BITRATE_MAX,
  OPUS_SAMPLE_RATES,
  OPUS_MAX_PACKET_BYTES,
  OpusApplication,
  OpusBandwidth,
  OpusSignal,
  OpusFrameDuration,
  OpusErrorCode,
  type OpusSampleRate,
} from './opus-ctl.ts';
export {
  loadOpus,
  getOpusRuntime,
  getOpusModule,
  instantiateOpus,
  resolveOpusWasmPath,
  OpusRuntime,
  type OpusWasmExports,
} from './wasm.ts';

// Server-side audio processors (jitter buffer, mix kernels, limiter, G.711, resampling, profiles).
export {
  JitterBuffer,
  type JitterBufferOptions,
  type JitterBufferStats,
  type PlayoutKind,
} from './jitter-buffer.ts';
export {
  mixAdd,
  mixSub,
  mixScale,
  framePower,
  framePeak,
  tsMixKernels,
  WasmMixKernels,
  wasmMixKernels,
  type MixKernels,
} from './mixer.ts';
export { SoftLimiter, type SoftLimiterOptions, type SoftLimiterStats } from './limiter.ts';
export {
  G711_PAYLOAD_TYPE,
  G711_SAMPLE_RATE,
  g711EncodeInt16,
  g711DecodeInt16,
  g711EncodeFloat,
  g711DecodeFloat,
  type G711Law,
} from './g711.ts';
export { Upsampler8to48, Downsampler48to8 } from './resample.ts';
export {
  OPUS_PROFILES,
  ProfilePicker,
  withDred,
  type OpusProfile,
  type OpusProfileName,
  type ProfilePickerOptions,
  type ProfileFeedback,
} from './profiles.ts';
export type { FrameDecoder, FrameEncoder } from './frame-codec.ts';
export {
  OpusFrameDecoder,
  OpusFrameEncoder,
  G711FrameDecoder,
  G711FrameEncoder,
  Upsampled48kDecoder,
  Downsampled48kEncoder,
} from './frame-codecs.ts';

// Ogg Opus files (RFC 7845): streaming muxer for recordings, and a checking reader.
export {
  OggOpusWriter,
  readOggOpus,
  opusPacketSamples,
  OGG_OPUS_MAX_GAP_SAMPLES,
  type OggOpusWriterOptions,
  type OggOpusFile,
  type OggOpusHead,
} from './ogg.ts';
