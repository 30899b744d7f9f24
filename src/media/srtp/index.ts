/**
 * VoxLink's SRTP engine (RFC 3711, DTLS-SRTP keys per RFC 5764): in-place, allocation-free
 * protect/unprotect for RTP and RTCP. Design and measurements: docs/srtp.md.
 */
export { SrtpContext, typescriptPrimitives } from './context.ts';
export type { SrtpContextOptions, SrtpPrimitives, KeystreamCipher, Authenticator } from './context.ts';
export { SrtpProfile, SrtpError, srtpErrorName, rtpTagLength, RTCP_TAG_LENGTH, RTCP_INDEX_LENGTH, MASTER_KEY_LENGTH, MASTER_SALT_LENGTH } from './profile.ts';
export { splitKeyingMaterial, createSrtpContexts, DTLS_SRTP_EXPORTER_LABEL, DTLS_SRTP_KEYING_MATERIAL_LENGTH } from './keying.ts';
export type { SrtpMasterKeys, SrtpSessionContexts } from './keying.ts';
export { REPLAY_WINDOW } from './replay.ts';
export { adaptivePrimitives } from './node-keystream.ts';
