/** Public surface of src/auth. */
export { grantsForRoom, mintToken, roomGrantSchema, roomPatternMatches, verifyToken } from './tokens.ts';
export type { Identity, MintTokenOptions, RoomGrant, SigningAlgorithm, VerifyKey } from './tokens.ts';
export { dataDirSecret, DEV_SECRET_FILE, resolveAuthKeys, TURN_SECRET_FILE } from './keys.ts';
export type { AuthKeys } from './keys.ts';
