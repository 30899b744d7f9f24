/**
 * DTLS-SRTP protection profiles (RFC 5764 §4.1.2, IANA "DTLS-SRTP Protection Profiles") that
 * VoxLink's SRTP engine implements, and the negative codes unprotect/protect return instead of
 * throwing: a hostile datagram costs a comparison, never an exception.
 */

export const SrtpProfile = {
  /** SRTP_AES128_CM_HMAC_SHA1_80: AES-128-CM, 80-bit HMAC-SHA1 tags on SRTP and SRTCP. */
  AES128_CM_HMAC_SHA1_80: 0x0001,
  /** SRTP_AES128_CM_HMAC_SHA1_32: as _80, but a 32-bit SRTP tag (SRTCP keeps 80 bits). */
  AES128_CM_HMAC_SHA1_32: 0x0002,
} as const;
export type SrtpProfile = (typeof SrtpProfile)[keyof typeof SrtpProfile];

/** Bytes of the SRTP auth tag appended to each RTP packet. */
export function rtpTagLength(profile: SrtpProfile): number {
  return profile === SrtpProfile.AES128_CM_HMAC_SHA1_32 ? 4 : 10;
}

/** Bytes of the SRTCP auth tag: 80 bits for both profiles (RFC 5764 §4.1.2). */
export const RTCP_TAG_LENGTH = 10;
/** E flag + 31-bit SRTCP index (RFC 3711 §3.4). */
export const RTCP_INDEX_LENGTH = 4;
export const MASTER_KEY_LENGTH = 16;
export const MASTER_SALT_LENGTH = 14;

/** Results below zero from protect/unprotect. Each names why a packet was dropped. */
export const SrtpError = {
  /** Shorter than a header plus the tag (or the SRTCP trailer). */
  TOO_SHORT: -1,
  /** Not RTP version 2, or CSRC list / header extension running past the end. */
  BAD_HEADER: -2,
  /** The authentication tag does not match: forged, corrupted or wrong key. */
  BAD_TAG: -3,
  /** Already received, or older than the replay window (RFC 3711 §3.3.2). */
  REPLAY: -4,
  /** The caller's buffer has no room for the tag (protect). */
  BUFFER_TOO_SMALL: -5,
  /** The 31-bit SRTCP index or the 48-bit SRTP index ran out: the session needs new keys. */
  KEY_EXPIRED: -6,
  /** A new SSRC beyond the context's stream limit. */
  TOO_MANY_STREAMS: -7,
} as const;
export type SrtpError = (typeof SrtpError)[keyof typeof SrtpError];

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(SrtpError).map(([k, v]) => [v, k]));

/** 'BAD_TAG' for -3 and so on, for logs and metric labels. */
export function srtpErrorName(code: number): string {
  return NAMES[code] ?? `UNKNOWN(${code})`;
}
