/**
 * RTP fixed header access on serialized packets (RFC 3550 §5.1), and the RFC 6464 audio level
 * carried in an RFC 8285 header extension. Everything here reads or writes bytes in place;
 * nothing allocates, so it is safe on the per-packet path.
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                           timestamp                           |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |           synchronization source (SSRC) identifier            |
 *    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 *    |            contributing source (CSRC) identifiers             |
 *    |                             ....                              |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

export const RTP_HEADER_SIZE = 12;
export const RTP_VERSION = 2;
const OFFSET_SEQ = 2;
const OFFSET_TS = 4;
const OFFSET_SSRC = 8;
/** RFC 8285 §4.2: one-byte header extension profile. */
const EXT_PROFILE_ONE_BYTE = 0xbede;
/** RFC 8285 §4.3: two-byte header extension profile (0x100 + appbits). */
const EXT_PROFILE_TWO_BYTE_MASK = 0xfff0;
const EXT_PROFILE_TWO_BYTE = 0x1000;

/** The RFC 6464 URI, the one header extension the speaker detector needs. */
export const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
/** RFC 6464 §3: 127 means -127 dBov, used for digital silence and "no level". */
export const AUDIO_LEVEL_SILENCE = 127;

/**
 * Returns the payload offset of a well-formed RTP packet, or -1 for anything that is not one:
 * wrong version, too short for its CSRC list or extension, or padding longer than the packet.
 * RTCP (PT 64–95 when muxed, RFC 5761 §4) is rejected too.
 */
export function rtpPayloadOffset(packet: Uint8Array): number {
  const length = packet.length;
  if (length < RTP_HEADER_SIZE) return -1;
  const b0 = packet[0];
  if (b0 >> 6 !== RTP_VERSION) return -1;
  const pt = packet[1] & 0x7f;
  if (pt >= 64 && pt <= 95) return -1;
  let offset = RTP_HEADER_SIZE + (b0 & 0x0f) * 4;
  if (offset > length) return -1;
  if (b0 & 0x10) {
    if (offset + 4 > length) return -1;
    const words = (packet[offset + 2] << 8) | packet[offset + 3];
    offset += 4 + words * 4;
    if (offset > length) return -1;
  }
  if (b0 & 0x20) {
    const padding = packet[length - 1];
    if (padding === 0 || offset + padding > length) return -1;
  }
  return offset;
}

export function readSequenceNumber(packet: Uint8Array): number {
  return (packet[OFFSET_SEQ] << 8) | packet[OFFSET_SEQ + 1];
}

export function readTimestamp(packet: Uint8Array): number {
  return (
    ((packet[OFFSET_TS] << 24) | (packet[OFFSET_TS + 1] << 16) | (packet[OFFSET_TS + 2] << 8) | packet[OFFSET_TS + 3]) >>>
    0
  );
}

export function readSsrc(packet: Uint8Array): number {
  return (
    ((packet[OFFSET_SSRC] << 24) |
      (packet[OFFSET_SSRC + 1] << 16) |
      (packet[OFFSET_SSRC + 2] << 8) |
      packet[OFFSET_SSRC + 3]) >>>
    0
  );
}

export function readMarker(packet: Uint8Array): boolean {
  return (packet[1] & 0x80) !== 0;
}

export function writeSequenceNumber(packet: Uint8Array, value: number): void {
  packet[OFFSET_SEQ] = (value >>> 8) & 0xff;
  packet[OFFSET_SEQ + 1] = value & 0xff;
}

export function writeUint32(packet: Uint8Array, offset: number, value: number): void {
  packet[offset] = (value >>> 24) & 0xff;
  packet[offset + 1] = (value >>> 16) & 0xff;
  packet[offset + 2] = (value >>> 8) & 0xff;
  packet[offset + 3] = value & 0xff;
}

export function writeTimestamp(packet: Uint8Array, value: number): void {
  writeUint32(packet, OFFSET_TS, value);
}

export function writeSsrc(packet: Uint8Array, value: number): void {
  writeUint32(packet, OFFSET_SSRC, value);
}

export function writeMarker(packet: Uint8Array, marker: boolean): void {
  packet[1] = marker ? packet[1] | 0x80 : packet[1] & 0x7f;
}

/**
 * Finds the RFC 6464 audio level (0 = 0 dBov loudest … 127 = silence) in the packet's RFC 8285
 * header extension with the negotiated `extId`. Returns -1 when absent or malformed.
 * The caller has validated the packet with {@link rtpPayloadOffset}.
 */
export function readAudioLevel(packet: Uint8Array, extId: number): number {
  const b0 = packet[0];
  if ((b0 & 0x10) === 0) return -1;
  let offset = RTP_HEADER_SIZE + (b0 & 0x0f) * 4;
  const profile = (packet[offset] << 8) | packet[offset + 1];
  const end = offset + 4 + ((packet[offset + 2] << 8) | packet[offset + 3]) * 4;
  offset += 4;
  if (profile === EXT_PROFILE_ONE_BYTE) {
    while (offset < end) {
      const b = packet[offset];
      if (b === 0) {
        offset++; // RFC 8285 §4.2: padding byte
        continue;
      }
      const id = b >> 4;
      if (id === 15) return -1; // reserved: stop parsing
      const len = (b & 0x0f) + 1;
      if (offset + 1 + len > end) return -1;
      if (id === extId) return packet[offset + 1] & 0x7f;
      offset += 1 + len;
    }
    return -1;
  }
  if ((profile & EXT_PROFILE_TWO_BYTE_MASK) === EXT_PROFILE_TWO_BYTE) {
    while (offset + 1 < end) {
      const id = packet[offset];
      if (id === 0) {
        offset++;
        continue;
      }
      const len = packet[offset + 1];
      if (offset + 2 + len > end) return -1;
      if (id === extId && len >= 1) return packet[offset + 2] & 0x7f;
      offset += 2 + len;
    }
  }
  return -1;
}

/** 16-bit sequence arithmetic lives on the lowest floor that needs it (the jitter buffer's). */
export { seqDelta } from '../codec/rtp-numbers.ts';
