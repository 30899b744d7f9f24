import { createSecretKey, type KeyObject } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { z } from 'zod';
import { VoxError } from '../errors.ts';
import { grantSchema, type Grant } from '../protocol/messages.ts';

/**
 * VoxLink access tokens: JWTs (RFC 7519) signed HS256 (shared secret, RFC 7518 §3.2) or EdDSA
 * (Ed25519, RFC 8037). Claims:
 *   sub   user id (required)          name  display name (optional, defaults to sub)
 *   rooms [{ room, grants }]          room: exact id, "prefix*" or "*"; grants ⊆ join, publish,
 *                                     subscribe, record, admin. Grants of all matching entries add up.
 *   exp / nbf / iat                   RFC 7519 §4.1.4/4.1.5; exp is required.
 */
export const roomGrantSchema = z.object({
  room: z.string().min(1).max(160),
  grants: z.array(grantSchema).max(5),
});
export type RoomGrant = z.infer<typeof roomGrantSchema>;

const claimsSchema = z.object({
  sub: z.string().min(1).max(128),
  name: z.string().max(128).optional(),
  rooms: z.array(roomGrantSchema).max(64),
  exp: z.number(),
});

/** Who a verified token says the client is. */
export interface Identity {
  userId: string;
  name: string;
  rooms: RoomGrant[];
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export type SigningAlgorithm = 'HS256' | 'EdDSA';

export interface VerifyKey {
  alg: SigningAlgorithm;
  key: KeyObject | Uint8Array;
  issuer?: string;
  audience?: string;
  clockToleranceSec?: number;
}

/** Does a grant entry's room pattern cover `room`? Exact, trailing-`*` prefix, or `*`. */
export function roomPatternMatches(pattern: string, room: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return room.startsWith(pattern.slice(0, -1));
  return pattern === room;
}

/** Union of the grants of every entry whose pattern covers `room`. */
export function grantsForRoom(identity: Pick<Identity, 'rooms'>, room: string): Set<Grant> {
  const grants = new Set<Grant>();
  for (const entry of identity.rooms) {
    if (roomPatternMatches(entry.room, room)) for (const grant of entry.grants) grants.add(grant);
  }
  return grants;
}

/** Verify signature, algorithm, exp/nbf and claim shapes. Throws VoxError AUTH_FAILED with a reason. */
export async function verifyToken(token: string, key: VerifyKey): Promise<Identity> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key.key, {
      algorithms: [key.alg],
      issuer: key.issuer,
      audience: key.audience,
      clockTolerance: key.clockToleranceSec ?? 5,
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (err) {
    throw new VoxError('AUTH_FAILED', describeJoseError(err), { cause: err });
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) {
    const issue = claims.error.issues[0];
    throw new VoxError('AUTH_FAILED', `token claims invalid: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return {
    userId: claims.data.sub,
    name: claims.data.name ?? claims.data.sub,
    rooms: claims.data.rooms,
    expiresAt: claims.data.exp * 1000,
  };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'token not yet valid';
    return `token claim ${err.claim} invalid`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'token malformed';
  return 'token rejected';
}

export interface MintTokenOptions {
  /** HS256 secret (string or bytes) or an Ed25519 private KeyObject (then alg EdDSA). */
  key: string | Uint8Array | KeyObject;
  userId: string;
  name?: string;
  /** Either full grant entries … */
  rooms?: RoomGrant[];
  /** … or one room pattern with `grants` (default join, publish, subscribe). */
  room?: string;
  grants?: Grant[];
  /** Lifetime: seconds, or a jose time span like "1h", "30m", "7d". Default 1 h. */
  ttl?: number | string;
  /** Not valid before: seconds from now (may be negative for tests). */
  notBeforeSec?: number;
  /** Absolute expiry (seconds since epoch); overrides ttl (tests mint expired tokens with it). */
  expiresAtSec?: number;
  issuer?: string;
  audience?: string;
}

/** Mint a VoxLink token (CLI, dev token, tests, other services). */
export async function mintToken(options: MintTokenOptions): Promise<string> {
  const rooms: RoomGrant[] =
    options.rooms ?? [{ room: options.room ?? '*', grants: options.grants ?? ['join', 'publish', 'subscribe'] }];
  const isKeyObject = typeof options.key === 'object' && !(options.key instanceof Uint8Array);
  const alg: SigningAlgorithm = isKeyObject && (options.key as KeyObject).asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'HS256';
  const signingKey: KeyObject | Uint8Array =
    typeof options.key === 'string' ? createSecretKey(Buffer.from(options.key, 'utf8')) : options.key;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ name: options.name ?? options.userId, rooms })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setSubject(options.userId)
    .setIssuedAt(now);
  if (options.expiresAtSec !== undefined) jwt.setExpirationTime(options.expiresAtSec);
  else if (typeof options.ttl === 'string') jwt.setExpirationTime(options.ttl);
  else jwt.setExpirationTime(now + (options.ttl ?? 3600));
  if (options.notBeforeSec !== undefined) jwt.setNotBefore(now + options.notBeforeSec);
  if (options.issuer) jwt.setIssuer(options.issuer);
  if (options.audience) jwt.setAudience(options.audience);
  return jwt.sign(signingKey);
}
