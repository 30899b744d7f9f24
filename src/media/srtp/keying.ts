/**
 * SRTP master keys from DTLS-SRTP (RFC 5764 §4.2). The DTLS exporter with label
 * "EXTRACTOR-dtls_srtp" yields 2·(key + salt) bytes laid out as
 *
 *   client_write_SRTP_master_key | server_write_SRTP_master_key |
 *   client_write_SRTP_master_salt | server_write_SRTP_master_salt
 *
 * The DTLS client protects what it sends with the client_write pair and unprotects with the
 * server_write pair; the DTLS server the other way round. (werift's DTLS transport does the same
 * split in extractSessionKeys() and keeps the result in `srtp.config.keys`.)
 */
import { SrtpContext, type SrtpPrimitives } from './context.ts';
import { MASTER_KEY_LENGTH, MASTER_SALT_LENGTH, type SrtpProfile } from './profile.ts';

/** Exporter label and length for the AES-128 profiles. */
export const DTLS_SRTP_EXPORTER_LABEL = 'EXTRACTOR-dtls_srtp';
export const DTLS_SRTP_KEYING_MATERIAL_LENGTH = 2 * (MASTER_KEY_LENGTH + MASTER_SALT_LENGTH);

export interface SrtpMasterKeys {
  localMasterKey: Uint8Array;
  localMasterSalt: Uint8Array;
  remoteMasterKey: Uint8Array;
  remoteMasterSalt: Uint8Array;
}

/** Splits exported keying material for our side of the DTLS handshake. */
export function splitKeyingMaterial(material: Uint8Array, role: 'client' | 'server'): SrtpMasterKeys {
  if (material.length !== DTLS_SRTP_KEYING_MATERIAL_LENGTH) {
    throw new RangeError(`DTLS-SRTP keying material must be ${DTLS_SRTP_KEYING_MATERIAL_LENGTH} bytes, got ${material.length}`);
  }
  const K = MASTER_KEY_LENGTH;
  const S = MASTER_SALT_LENGTH;
  const clientKey = material.slice(0, K);
  const serverKey = material.slice(K, 2 * K);
  const clientSalt = material.slice(2 * K, 2 * K + S);
  const serverSalt = material.slice(2 * K + S, 2 * K + 2 * S);
  return role === 'client'
    ? { localMasterKey: clientKey, localMasterSalt: clientSalt, remoteMasterKey: serverKey, remoteMasterSalt: serverSalt }
    : { localMasterKey: serverKey, localMasterSalt: serverSalt, remoteMasterKey: clientKey, remoteMasterSalt: clientSalt };
}

/** The two contexts of one DTLS-SRTP association: `outbound` protects, `inbound` unprotects. */
export interface SrtpSessionContexts {
  outbound: SrtpContext;
  inbound: SrtpContext;
}

export function createSrtpContexts(
  keys: SrtpMasterKeys,
  profile: SrtpProfile,
  options: { maxStreams?: number; primitives?: SrtpPrimitives } = {},
): SrtpSessionContexts {
  return {
    outbound: new SrtpContext({ profile, masterKey: keys.localMasterKey, masterSalt: keys.localMasterSalt, ...options }),
    inbound: new SrtpContext({ profile, masterKey: keys.remoteMasterKey, masterSalt: keys.remoteMasterSalt, ...options }),
  };
}
