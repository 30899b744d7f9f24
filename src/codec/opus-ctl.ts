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

/**
 * One OPUS_GET_x / OPUS_SET_x pair as a property of OpusEncoder / OpusDecoder: which request ids,
 * and how the property's value maps to the int libopus takes and gives (identity when unset).
 * opus.ts installs one accessor per row, so a setting is a line here, not a getter and a setter.
 */
export interface CtlSetting {
  get?: number;
  set?: number;
  /** libopus int → property value. */
  read?: (raw: number) => unknown;
  /** property value → libopus int. */
  write?: (value: never) => number;
}

const bool: Pick<CtlSetting, 'read' | 'write'> = { read: (raw) => raw !== 0, write: (value: boolean) => (value ? 1 : 0) };
const C = OpusCtl;

/** Settings an encoder and a decoder share. */
const SHARED_SETTINGS = {
  complexity: { get: C.GET_COMPLEXITY, set: C.SET_COMPLEXITY },
  phaseInversionDisabled: { get: C.GET_PHASE_INVERSION_DISABLED, set: C.SET_PHASE_INVERSION_DISABLED, ...bool },
  /** Range coder state after the last packet: unsigned, equal on both sides when bit-exact. */
  finalRange: { get: C.GET_FINAL_RANGE, read: (raw: number) => raw >>> 0 },
} satisfies Record<string, CtlSetting>;

export const ENCODER_SETTINGS = {
  ...SHARED_SETTINGS,
  bitrate: {
    get: C.GET_BITRATE,
    set: C.SET_BITRATE,
    write: (v: number | 'auto' | 'max') => (v === 'auto' ? OPUS_AUTO : v === 'max' ? OPUS_BITRATE_MAX : v),
  },
  application: { get: C.GET_APPLICATION, set: C.SET_APPLICATION },
  vbr: { get: C.GET_VBR, set: C.SET_VBR, ...bool },
  vbrConstraint: { get: C.GET_VBR_CONSTRAINT, set: C.SET_VBR_CONSTRAINT, ...bool },
  maxBandwidth: { get: C.GET_MAX_BANDWIDTH, set: C.SET_MAX_BANDWIDTH },
  bandwidth: { get: C.GET_BANDWIDTH, set: C.SET_BANDWIDTH },
  signal: { get: C.GET_SIGNAL, set: C.SET_SIGNAL },
  inbandFec: { get: C.GET_INBAND_FEC, set: C.SET_INBAND_FEC, write: (v: boolean | number) => (v === true ? 1 : v === false ? 0 : v) },
  packetLossPercent: { get: C.GET_PACKET_LOSS_PERC, set: C.SET_PACKET_LOSS_PERC },
  dtx: { get: C.GET_DTX, set: C.SET_DTX, ...bool },
  inDtx: { get: C.GET_IN_DTX, read: bool.read },
  dredDuration: { get: C.GET_DRED_DURATION, set: C.SET_DRED_DURATION },
  lsbDepth: { get: C.GET_LSB_DEPTH, set: C.SET_LSB_DEPTH },
  predictionDisabled: { get: C.GET_PREDICTION_DISABLED, set: C.SET_PREDICTION_DISABLED, ...bool },
  forceChannels: {
    get: C.GET_FORCE_CHANNELS,
    set: C.SET_FORCE_CHANNELS,
    read: (raw: number) => (raw === OPUS_AUTO ? 'auto' : raw),
    write: (v: 'auto' | 1 | 2) => (v === 'auto' ? OPUS_AUTO : v),
  },
  expertFrameDuration: { get: C.GET_EXPERT_FRAME_DURATION, set: C.SET_EXPERT_FRAME_DURATION },
  lookahead: { get: C.GET_LOOKAHEAD },
} satisfies Record<string, CtlSetting>;

export const DECODER_SETTINGS = {
  ...SHARED_SETTINGS,
  gain: { get: C.GET_GAIN, set: C.SET_GAIN },
  bandwidth: { get: C.GET_BANDWIDTH },
  lastPacketDuration: { get: C.GET_LAST_PACKET_DURATION },
  pitch: { get: C.GET_PITCH },
} satisfies Record<string, CtlSetting>;

/** The typed properties ENCODER_SETTINGS installs on OpusEncoder (OPUS_SET_* / OPUS_GET_*). */
export interface OpusEncoderSettings {
  /** bits/s; reading gives the bitrate libopus uses (resolves 'auto'). Set 'auto' or 'max' too. */
  get bitrate(): number;
  set bitrate(value: number | 'auto' | 'max');
  application: OpusApplication;
  vbr: boolean;
  vbrConstraint: boolean;
  complexity: number;
  maxBandwidth: OpusBandwidth;
  /** Reading gives the bandwidth of the last encoded frame (OPUS_GET_BANDWIDTH). */
  bandwidth: OpusBandwidth;
  signal: OpusSignal;
  /** 0 off, 1 on, 2 on without forcing SILK (Opus 1.5). */
  get inbandFec(): number;
  set inbandFec(value: boolean | number);
  packetLossPercent: number;
  dtx: boolean;
  /** True while DTX is suppressing frames (OPUS_GET_IN_DTX). */
  readonly inDtx: boolean;
  /** DRED depth in 10 ms units (0–104). Throws OpusError -5 (unimplemented) on a build without DRED. */
  dredDuration: number;
  lsbDepth: number;
  predictionDisabled: boolean;
  phaseInversionDisabled: boolean;
  forceChannels: 'auto' | 1 | 2;
  expertFrameDuration: OpusFrameDuration;
  /** Samples per channel (at `sampleRate`) the encoder delays its input (OPUS_GET_LOOKAHEAD). */
  readonly lookahead: number;
  /** Range coder state after the last packet (OPUS_GET_FINAL_RANGE); equals the decoder's if bit-exact. */
  readonly finalRange: number;
}

/** The typed properties DECODER_SETTINGS installs on OpusDecoder. */
export interface OpusDecoderSettings {
  /** Q8 dB. */
  gain: number;
  complexity: number;
  phaseInversionDisabled: boolean;
  /** Bandwidth of the last packet (OPUS_GET_BANDWIDTH). */
  readonly bandwidth: OpusBandwidth;
  /** Samples per channel of the last decoded packet (OPUS_GET_LAST_PACKET_DURATION). */
  readonly lastPacketDuration: number;
  /** Pitch period of the last frame in samples at 48 kHz, 0 if unvoiced (OPUS_GET_PITCH). */
  readonly pitch: number;
  readonly finalRange: number;
}
