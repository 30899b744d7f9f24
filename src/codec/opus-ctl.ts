/**
 * Numeric constants of the libopus API (include/opus_defines.h, Opus 1.5.2). The wasm build exports
 * the variadic `opus_encoder_ctl`/`opus_decoder_ctl` through fixed-arity glue (`vx_*_ctl_set/get`,
 * wasm/glue.c) that takes the raw request id, so the binding keeps this table.
 */

/** OPUS_AUTO: let the encoder decide (bitrate, bandwidth, signal, force channels). */
export const OPUS_AUTO = -1000;
/** OPUS_BITRATE_MAX: as many bits as the packet size allows. */
export const OPUS_BITRATE_MAX = -1;

/** Coding mode chosen at encoder creation (opus_encoder_create `application`). */
export const OpusApplication = {
  /** Speech: favours intelligibility, enables SILK/hybrid, high-pass filter. */
  VOIP: 2048,
  /** Music / mixed content: favours fidelity. */
  AUDIO: 2049,
  /** Lowest delay: CELT only, no SILK, 2.5 ms less lookahead. */
  RESTRICTED_LOWDELAY: 2051,
} as const;
export type OpusApplication = (typeof OpusApplication)[keyof typeof OpusApplication];

/** Hint about the content (OPUS_SET_SIGNAL). */
export const OpusSignal = { AUTO: OPUS_AUTO, VOICE: 3001, MUSIC: 3002 } as const;
export type OpusSignal = (typeof OpusSignal)[keyof typeof OpusSignal];

/** Audio bandpass (OPUS_SET_BANDWIDTH / OPUS_SET_MAX_BANDWIDTH). */
export const OpusBandwidth = {
  AUTO: OPUS_AUTO,
  /** 4 kHz */
  NARROWBAND: 1101,
  /** 6 kHz */
  MEDIUMBAND: 1102,
  /** 8 kHz */
  WIDEBAND: 1103,
  /** 12 kHz */
  SUPERWIDEBAND: 1104,
  /** 20 kHz */
  FULLBAND: 1105,
} as const;
export type OpusBandwidth = (typeof OpusBandwidth)[keyof typeof OpusBandwidth];

/** OPUS_SET_EXPERT_FRAME_DURATION values; ARG = use the frame size passed to opus_encode. */
export const OpusFrameDuration = {
  ARG: 5000,
  MS_2_5: 5001,
  MS_5: 5002,
  MS_10: 5003,
  MS_20: 5004,
  MS_40: 5005,
  MS_60: 5006,
  MS_80: 5007,
  MS_100: 5008,
  MS_120: 5009,
} as const;
export type OpusFrameDuration = (typeof OpusFrameDuration)[keyof typeof OpusFrameDuration];

/** CTL request ids (OPUS_*_REQUEST in opus_defines.h). */
export const OpusCtl = {
  SET_APPLICATION: 4000,
  GET_APPLICATION: 4001,
  SET_BITRATE: 4002,
  GET_BITRATE: 4003,
  SET_MAX_BANDWIDTH: 4004,
  GET_MAX_BANDWIDTH: 4005,
  SET_VBR: 4006,
  GET_VBR: 4007,
  SET_BANDWIDTH: 4008,
  GET_BANDWIDTH: 4009,
  SET_COMPLEXITY: 4010,
  GET_COMPLEXITY: 4011,
  SET_INBAND_FEC: 4012,
  GET_INBAND_FEC: 4013,
  SET_PACKET_LOSS_PERC: 4014,
  GET_PACKET_LOSS_PERC: 4015,
  SET_DTX: 4016,
  GET_DTX: 4017,
  SET_VBR_CONSTRAINT: 4020,
  GET_VBR_CONSTRAINT: 4021,
  SET_FORCE_CHANNELS: 4022,
  GET_FORCE_CHANNELS: 4023,
  SET_SIGNAL: 4024,
  GET_SIGNAL: 4025,
  GET_LOOKAHEAD: 4027,
  RESET_STATE: 4028,
  GET_SAMPLE_RATE: 4029,
  GET_FINAL_RANGE: 4031,
  GET_PITCH: 4033,
  SET_GAIN: 4034,
  SET_LSB_DEPTH: 4036,
  GET_LSB_DEPTH: 4037,
  GET_LAST_PACKET_DURATION: 4039,
  SET_EXPERT_FRAME_DURATION: 4040,
  GET_EXPERT_FRAME_DURATION: 4041,
  SET_PREDICTION_DISABLED: 4042,
  GET_PREDICTION_DISABLED: 4043,
  /** Not 4035: a historical slip in opus_defines.h ("Should have been 4035"). */
  GET_GAIN: 4045,
  SET_PHASE_INVERSION_DISABLED: 4046,
  GET_PHASE_INVERSION_DISABLED: 4047,
  GET_IN_DTX: 4049,
  SET_DRED_DURATION: 4050,
  GET_DRED_DURATION: 4051,
} as const;

/** Opus error codes (opus_defines.h, "Error codes"). */
export const OpusErrorCode = {
  OK: 0,
  BAD_ARG: -1,
  BUFFER_TOO_SMALL: -2,
  INTERNAL_ERROR: -3,
  INVALID_PACKET: -4,
  UNIMPLEMENTED: -5,
  INVALID_STATE: -6,
  ALLOC_FAIL: -7,
} as const;

/** Sample rates libopus accepts for encoders and decoders. */
export const OPUS_SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000] as const;
export type OpusSampleRate = (typeof OPUS_SAMPLE_RATES)[number];

/** Largest packet we let opus_encode write: the size libopus documents as "recommended" (opus_encode). */
export const OPUS_MAX_PACKET_BYTES = 4000;
/** Longest Opus packet duration: 120 ms (RFC 6716 section 3.2.5 limits a packet to 120 ms). */
export const OPUS_MAX_FRAME_MS = 120;
