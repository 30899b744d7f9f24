/**
 * SRTP key derivation (RFC 3711 §4.3) with a key derivation rate of 0, the only rate DTLS-SRTP
 * uses (RFC 5764 §4.1.2): each session key is the AES-CM keystream of the master key at
 * IV = (label << 48 XOR master salt) * 2^16. Runs once per context, so it may allocate.
 */
import { Aes128 } from './aes.ts';
import { MASTER_KEY_LENGTH, MASTER_SALT_LENGTH } from './profile.ts';

/** Labels of RFC 3711 §4.3.2 (RTP) and §4.3.2 / §3.4 (RTCP). */
export const KdfLabel = {
  RTP_ENCRYPTION: 0x00,
  RTP_AUTH: 0x01,
  RTP_SALT: 0x02,
  RTCP_ENCRYPTION: 0x03,
  RTCP_AUTH: 0x04,
  RTCP_SALT: 0x05,
} as const;

export interface SessionKeys {
  /** 16-byte AES key. */
  encryptionKey: Uint8Array;
  /** 20-byte HMAC-SHA1 key. */
  authKey: Uint8Array;
  /** 14-byte session salt. */
  salt: Uint8Array;
}

/** Derives `length` bytes for one label. */
export function deriveKey(master: Aes128, masterSalt: Uint8Array, label: number, length: number): Uint8Array {
  const iv = new Uint8Array(16);
  iv.set(masterSalt); // bytes 0..13; 14..15 are the block counter
  iv[7] ^= label; // key_id = label || r (48 zero bits): label lands on byte 13 - 6 = 7
  const out = new Uint8Array(Math.ceil(length / 16) * 16);
  const word = (o: number): number => (iv[o] << 24) | (iv[o + 1] << 16) | (iv[o + 2] << 8) | iv[o + 3];
  master.xorKeystream(word(0), word(4), word(8), word(12), out, 0, out.length);
  return out.slice(0, length);
}

/** The SRTP and SRTCP session keys from one master key and salt. */
export function deriveSessionKeys(masterKey: Uint8Array, masterSalt: Uint8Array): { rtp: SessionKeys; rtcp: SessionKeys } {
  if (masterKey.length !== MASTER_KEY_LENGTH) throw new RangeError(`SRTP master key must be ${MASTER_KEY_LENGTH} bytes, got ${masterKey.length}`);
  if (masterSalt.length !== MASTER_SALT_LENGTH) throw new RangeError(`SRTP master salt must be ${MASTER_SALT_LENGTH} bytes, got ${masterSalt.length}`);
  const master = new Aes128(masterKey);
  const keys = (enc: number, auth: number, salt: number): SessionKeys => ({
    encryptionKey: deriveKey(master, masterSalt, enc, 16),
    authKey: deriveKey(master, masterSalt, auth, 20),
    salt: deriveKey(master, masterSalt, salt, 14),
  });
  return {
    rtp: keys(KdfLabel.RTP_ENCRYPTION, KdfLabel.RTP_AUTH, KdfLabel.RTP_SALT),
    rtcp: keys(KdfLabel.RTCP_ENCRYPTION, KdfLabel.RTCP_AUTH, KdfLabel.RTCP_SALT),
  };
}
