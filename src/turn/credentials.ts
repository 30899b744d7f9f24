import { createHmac } from 'node:crypto';
import type { IceServer } from '../protocol/messages.ts';

/**
 * TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2.2, what coturn's
 * `use-auth-secret` checks): username = "<expiry unix seconds>:<userId>",
 * credential = base64(HMAC-SHA1(secret, username)). coturn rejects the username after its expiry.
 */
export interface TurnCredentials {
  username: string;
  credential: string;
  /** Seconds the credentials stay valid. */
  ttl: number;
  urls: string[];
}

/** Something that knows the secret to sign with now (a secret store's in-memory cache, src/turn/service.ts). */
export interface SecretSource {
  /** The secret signalling was handed at start-up (what it passes back to the functions below). */
  readonly initial: string;
  /** The secret new credentials are signed with right now. */
  readonly current: string;
}

const sources = new Set<SecretSource>();

/** Registers a running store's cache: credentials asked for with its start-up secret are signed with its current one. */
export function addSecretSource(source: SecretSource): () => void {
  sources.add(source);
  return () => sources.delete(source);
}

/**
 * The secret to sign with when signalling asks with `secret`: with turn.store redis/postgres,
 * signalling holds the secret it got at start-up, and the store's cache knows the current one
 * (rotations happen while the server runs). With the static store, `secret` itself.
 */
export function signingSecret(secret: string): string {
  for (const s of sources) if (s.initial === secret) return s.current;
  return secret;
}

/** Credentials signed with exactly `secret` (no store lookup). */
export function restCredentials(secret: string, userId: string, ttlSec: number, urls: string[], nowMs = Date.now()): TurnCredentials {
  const expiry = Math.floor(nowMs / 1000) + ttlSec;
  // A ':' inside userId would be ambiguous for coturn's parser (it splits at the first ':').
  const username = `${expiry}:${userId.replaceAll(':', '_')}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, ttl: ttlSec, urls };
}

/** Credentials for `userId` (GET /turn): signed with the store's current secret when `secret` is a running store's (see signingSecret). */
export function turnCredentials(secret: string, userId: string, ttlSec: number, urls: string[], nowMs = Date.now()): TurnCredentials {
  return restCredentials(signingSecret(secret), userId, ttlSec, urls, nowMs);
}

/**
 * The iceServers list for `ready` and `/turn`: STUN entries plus one TURN entry with fresh
 * credentials for every configured URL (turn: over UDP and TCP, turns: over TLS).
 */
export function iceServersFor(
  turn: { urls: string[]; stunUrls: string[]; ttlSec: number },
  secret: string | undefined,
  userId: string,
): IceServer[] {
  const servers: IceServer[] = [];
  if (turn.stunUrls.length > 0) servers.push({ urls: turn.stunUrls });
  if (turn.urls.length > 0 && secret !== undefined) {
    const creds = turnCredentials(secret, userId, turn.ttlSec, turn.urls);
    servers.push({ urls: creds.urls, username: creds.username, credential: creds.credential });
  }
  return servers;
}
