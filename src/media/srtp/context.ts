/**
 * One SRTP/SRTCP cryptographic context (RFC 3711 §3.2) for one master key in one direction:
 * the sender's local key protects, the remote key unprotects. Packets are transformed in place
 * in the caller's buffer; per-SSRC state (ROC, highest sequence number, replay window, SRTCP
 * index) is created once per SSRC, never per packet.
 *
 *   RTP:  | header (12 + 4·CC [+ extension]) | payload (encrypted) | auth tag (10 or 4) |
 *   RTCP: | first 8 bytes | rest (encrypted if E) | E + 31-bit index | auth tag (10) |
 *
 * Unprotect checks the replay window and the tag before it reads or decrypts the payload, and
 * returns a negative SrtpError instead of throwing; a rejected packet's buffer is left as it was.
 */
import { Aes128 } from './aes.ts';
import { deriveSessionKeys } from './kdf.ts';
import { RTCP_INDEX_LENGTH, RTCP_TAG_LENGTH, SrtpError, SrtpProfile, rtpTagLength } from './profile.ts';
import { ReplayWindow } from './replay.ts';
import { HmacSha1 } from './sha1.ts';

/** AES-CM keystream source for one session key. */
export interface KeystreamCipher {
  xorKeystream(iv0: number, iv1: number, iv2: number, iv3: number, buf: Uint8Array, off: number, len: number): void;
}
/** HMAC-SHA1 for one session auth key; the result is in `digest` after compute(). */
export interface Authenticator {
  readonly digest: Uint8Array;
  compute(data: Uint8Array, off: number, len: number, suffix: number, withSuffix: boolean): void;
}
/** Where the context gets its primitives; the default is the allocation-free TypeScript pair. */
export interface SrtpPrimitives {
  cipher(key: Uint8Array): KeystreamCipher;
  mac(key: Uint8Array): Authenticator;
}

export const typescriptPrimitives: SrtpPrimitives = {
  cipher: (key) => new Aes128(key),
  mac: (key) => new HmacSha1(key),
};

export interface SrtpContextOptions {
  profile: SrtpProfile;
  /** 16-byte master key and 14-byte master salt, as split from DTLS keying material (see keying.ts). */
  masterKey: Uint8Array;
  masterSalt: Uint8Array;
  /** SSRCs this context will keep state for (per RTP and per RTCP); default 256. */
  maxStreams?: number;
  primitives?: SrtpPrimitives;
}

const RTP_HEADER = 12;
const RTCP_HEADER = 8;
const SEQ_HALF = 0x8000;
const MAX_ROC = 0xffffffff;
const MAX_RTCP_INDEX = 0x7fffffff;

/** SRTP sender/receiver state for one SSRC (RFC 3711 §3.2.1). */
class RtpStream {
  /** Rollover counter and highest sequence number s_l, valid once started. */
  roc = 0;
  sl = 0;
  readonly replay = new ReplayWindow();
}

/** SRTCP state for one SSRC: the next index to send, or the receive replay window. */
class RtcpStream {
  nextIndex = 1;
  readonly replay = new ReplayWindow();
}

/** RFC 3711 §3.3.1 / Appendix A: the ROC guess v for seq given the stored ROC and s_l. */
function guessRoc(roc: number, sl: number, seq: number): number {
  if (sl < SEQ_HALF) return seq - sl > SEQ_HALF ? roc - 1 : roc;
  return sl - SEQ_HALF > seq ? roc + 1 : roc;
}

/** Length of the RTP header (fixed part, CSRCs, extension) or BAD_HEADER if it runs past end. */
function rtpHeaderLength(buf: Uint8Array, end: number): number {
  const b0 = buf[0];
  if ((b0 & 0xc0) !== 0x80) return SrtpError.BAD_HEADER;
  let n = RTP_HEADER + 4 * (b0 & 0x0f);
  if (b0 & 0x10) {
    if (n + 4 > end) return SrtpError.BAD_HEADER;
    n += 4 + 4 * ((buf[n + 2] << 8) | buf[n + 3]);
  }
  return n > end ? SrtpError.BAD_HEADER : n;
}

function readInt32(buf: Uint8Array, o: number): number {
  return (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
}

function saltWords(salt: Uint8Array): Int32Array {
  return Int32Array.of(readInt32(salt, 0), readInt32(salt, 4), readInt32(salt, 8), (salt[12] << 24) | (salt[13] << 16));
}

export class SrtpContext {
  readonly profile: SrtpProfile;
  /** Bytes protectRtp adds (the tag). */
  readonly rtpOverhead: number;
  /** Bytes protectRtcp adds (index + tag). */
  readonly rtcpOverhead = RTCP_INDEX_LENGTH + RTCP_TAG_LENGTH;

  readonly #rtpCipher: KeystreamCipher;
  readonly #rtpMac: Authenticator;
  readonly #rtpSalt: Int32Array;
  readonly #rtcpCipher: KeystreamCipher;
  readonly #rtcpMac: Authenticator;
  readonly #rtcpSalt: Int32Array;
  readonly #maxStreams: number;
  // Separate maps per direction and protocol, keyed by the SSRC as a signed 32-bit integer
  // (a small integer to V8, so lookups do not box). The last stream used is cached.
  readonly #rtpOut = new Map<number, RtpStream>();
  readonly #rtpIn = new Map<number, RtpStream>();
  readonly #rtcpOut = new Map<number, RtcpStream>();
  readonly #rtcpIn = new Map<number, RtcpStream>();
  #lastOutSsrc = 0;
  #lastOut: RtpStream | undefined;
  #lastInSsrc = 0;
  #lastIn: RtpStream | undefined;

  constructor(options: SrtpContextOptions) {
    const { profile } = options;
    if (profile !== SrtpProfile.AES128_CM_HMAC_SHA1_80 && profile !== SrtpProfile.AES128_CM_HMAC_SHA1_32) {
      throw new RangeError(`unsupported SRTP protection profile 0x${Number(profile).toString(16).padStart(4, '0')}`);
    }
    this.profile = profile;
    this.rtpOverhead = rtpTagLength(profile);
    const keys = deriveSessionKeys(options.masterKey, options.masterSalt);
    const primitives = options.primitives ?? typescriptPrimitives;
    this.#rtpCipher = primitives.cipher(keys.rtp.encryptionKey);
    this.#rtpMac = primitives.mac(keys.rtp.authKey);
    this.#rtpSalt = saltWords(keys.rtp.salt);
    this.#rtcpCipher = primitives.cipher(keys.rtcp.encryptionKey);
    this.#rtcpMac = primitives.mac(keys.rtcp.authKey);
    this.#rtcpSalt = saltWords(keys.rtcp.salt);
    this.#maxStreams = options.maxStreams ?? 256;
  }

  /**
   * Encrypts the payload of the RTP packet buf[0, len) and appends the tag at buf[len].
   * Returns the SRTP length, or a negative SrtpError (the buffer is then untouched).
   */
  protectRtp(buf: Uint8Array, len: number): number {
    const tagLen = this.rtpOverhead;
    if (len < RTP_HEADER) return SrtpError.TOO_SHORT;
    const hdr = rtpHeaderLength(buf, len);
    if (hdr < 0) return hdr;
    if (buf.length < len + tagLen) return SrtpError.BUFFER_TOO_SMALL;
    const seq = (buf[2] << 8) | buf[3];
    const ssrc = readInt32(buf, 8);
    let s = this.#lastOut;
    if (s === undefined || this.#lastOutSsrc !== ssrc) {
      s = this.#rtpOut.get(ssrc);
      if (s === undefined) {
        if (this.#rtpOut.size >= this.#maxStreams) return SrtpError.TOO_MANY_STREAMS;
        s = new RtpStream();
        s.sl = seq;
        this.#rtpOut.set(ssrc, s);
      }
      this.#lastOut = s;
      this.#lastOutSsrc = ssrc;
    }
    // The sender estimates the index like a receiver, so a retransmission of a packet from
    // before a wrap is protected with the ROC it was first sent with.
    const v = guessRoc(s.roc, s.sl, seq);
    if (v < 0) return SrtpError.REPLAY;
    if (v > MAX_ROC) return SrtpError.KEY_EXPIRED;
    if (v > s.roc) {
      s.roc = v;
      s.sl = seq;
    } else if (v === s.roc && seq > s.sl) {
      s.sl = seq;
    }
    const salt = this.#rtpSalt;
    this.#rtpCipher.xorKeystream(salt[0], salt[1] ^ ssrc, salt[2] ^ v, salt[3] ^ (seq << 16), buf, hdr, len - hdr);
    const mac = this.#rtpMac;
    mac.compute(buf, 0, len, v, true);
    const d = mac.digest;
    for (let i = 0; i < tagLen; i++) buf[len + i] = d[i];
    return len + tagLen;
  }

  /**
   * Authenticates and decrypts the SRTP packet buf[0, len) in place. Returns the RTP length
   * (header + payload, tag removed), or a negative SrtpError with the buffer untouched.
   */
  unprotectRtp(buf: Uint8Array, len: number): number {
    const tagLen = this.rtpOverhead;
    if (len < RTP_HEADER + tagLen) return SrtpError.TOO_SHORT;
    const end = len - tagLen;
    const hdr = rtpHeaderLength(buf, end);
    if (hdr < 0) return hdr;
    const seq = (buf[2] << 8) | buf[3];
    const ssrc = readInt32(buf, 8);
    let s = this.#lastIn;
    if (s === undefined || this.#lastInSsrc !== ssrc) {
      s = this.#rtpIn.get(ssrc);
      if (s !== undefined) {
        this.#lastIn = s;
        this.#lastInSsrc = ssrc;
      } else if (this.#rtpIn.size >= this.#maxStreams) {
        return SrtpError.TOO_MANY_STREAMS;
      }
    }
    // A new SSRC starts at ROC 0 (RFC 3711 §3.3.1); its state is only created once a packet
    // authenticates, so forged packets cannot fill the map.
    const v = s === undefined ? 0 : guessRoc(s.roc, s.sl, seq);
    if (v < 0) return SrtpError.REPLAY;
    if (v > MAX_ROC) return SrtpError.KEY_EXPIRED;
    const index = v * 0x10000 + seq;
    if (s !== undefined && !s.replay.check(index)) return SrtpError.REPLAY;
    const mac = this.#rtpMac;
    mac.compute(buf, 0, end, v, true);
    const d = mac.digest;
    let diff = 0;
    for (let i = 0; i < tagLen; i++) diff |= d[i] ^ buf[end + i];
    if (diff !== 0) return SrtpError.BAD_TAG;
    if (s === undefined) {
      s = new RtpStream();
      s.sl = seq;
      this.#rtpIn.set(ssrc, s);
      this.#lastIn = s;
      this.#lastInSsrc = ssrc;
    } else if (v > s.roc) {
      s.roc = v;
      s.sl = seq;
    } else if (v === s.roc && seq > s.sl) {
      s.sl = seq;
    }
    s.replay.accept(index);
    const salt = this.#rtpSalt;
    this.#rtpCipher.xorKeystream(salt[0], salt[1] ^ ssrc, salt[2] ^ v, salt[3] ^ (seq << 16), buf, hdr, end - hdr);
    return end;
  }

  /**
   * Protects the (compound) RTCP packet buf[0, len): encrypts everything after the first 8
   * bytes unless encrypt is false, appends E flag + SRTCP index and the 80-bit tag.
   * Returns the SRTCP length or a negative SrtpError (buffer untouched).
   */
  protectRtcp(buf: Uint8Array, len: number, encrypt = true): number {
    if (len < RTCP_HEADER) return SrtpError.TOO_SHORT;
    if ((buf[0] & 0xc0) !== 0x80) return SrtpError.BAD_HEADER;
    if (buf.length < len + this.rtcpOverhead) return SrtpError.BUFFER_TOO_SMALL;
    const ssrc = readInt32(buf, 4);
    let s = this.#rtcpOut.get(ssrc);
    if (s === undefined) {
      if (this.#rtcpOut.size >= this.#maxStreams) return SrtpError.TOO_MANY_STREAMS;
      s = new RtcpStream();
      this.#rtcpOut.set(ssrc, s);
    }
    const index = s.nextIndex;
    if (index > MAX_RTCP_INDEX) return SrtpError.KEY_EXPIRED;
    s.nextIndex = index + 1;
    if (encrypt) {
      const salt = this.#rtcpSalt;
      // The 31-bit index takes the place of the 48-bit packet index i in the IV (RFC 3711 §3.4).
      this.#rtcpCipher.xorKeystream(salt[0], salt[1] ^ ssrc, salt[2] ^ (index >>> 16), salt[3] ^ (index << 16), buf, RTCP_HEADER, len - RTCP_HEADER);
    }
    buf[len] = (index >>> 24) | (encrypt ? 0x80 : 0);
    buf[len + 1] = index >>> 16;
    buf[len + 2] = index >>> 8;
    buf[len + 3] = index;
    const authLen = len + RTCP_INDEX_LENGTH;
    const mac = this.#rtcpMac;
    mac.compute(buf, 0, authLen, 0, false);
    const d = mac.digest;
    for (let i = 0; i < RTCP_TAG_LENGTH; i++) buf[authLen + i] = d[i];
    return authLen + RTCP_TAG_LENGTH;
  }

  /**
   * Authenticates the SRTCP packet buf[0, len), checks its index against the replay window and
   * decrypts it in place if its E flag is set. Returns the RTCP length or a negative SrtpError
   * (buffer untouched).
   */
  unprotectRtcp(buf: Uint8Array, len: number): number {
    if (len < RTCP_HEADER + RTCP_INDEX_LENGTH + RTCP_TAG_LENGTH) return SrtpError.TOO_SHORT;
    if ((buf[0] & 0xc0) !== 0x80) return SrtpError.BAD_HEADER;
    const authLen = len - RTCP_TAG_LENGTH;
    const end = authLen - RTCP_INDEX_LENGTH;
    const eIndex = readInt32(buf, end);
    const index = eIndex & MAX_RTCP_INDEX;
    const ssrc = readInt32(buf, 4);
    let s = this.#rtcpIn.get(ssrc);
    if (s === undefined && this.#rtcpIn.size >= this.#maxStreams) return SrtpError.TOO_MANY_STREAMS;
    if (s !== undefined && !s.replay.check(index)) return SrtpError.REPLAY;
    const mac = this.#rtcpMac;
    mac.compute(buf, 0, authLen, 0, false);
    const d = mac.digest;
    let diff = 0;
    for (let i = 0; i < RTCP_TAG_LENGTH; i++) diff |= d[i] ^ buf[authLen + i];
    if (diff !== 0) return SrtpError.BAD_TAG;
    if (s === undefined) {
      s = new RtcpStream();
      this.#rtcpIn.set(ssrc, s);
    }
    s.replay.accept(index);
    if (eIndex < 0) {
      const salt = this.#rtcpSalt;
      this.#rtcpCipher.xorKeystream(salt[0], salt[1] ^ ssrc, salt[2] ^ (index >>> 16), salt[3] ^ (index << 16), buf, RTCP_HEADER, end - RTCP_HEADER);
    }
    return end;
  }

  /** Forgets the state of one SSRC (a stream that ended), in both directions. */
  removeStream(ssrc: number): void {
    const key = ssrc | 0;
    this.#rtpOut.delete(key);
    this.#rtpIn.delete(key);
    this.#rtcpOut.delete(key);
    this.#rtcpIn.delete(key);
    if (this.#lastOutSsrc === key) this.#lastOut = undefined;
    if (this.#lastInSsrc === key) this.#lastIn = undefined;
  }
}
