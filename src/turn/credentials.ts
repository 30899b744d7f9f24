import { createHmac } from 'node:crypto';
import type { IceServer } from '../protocol/messages.ts';

/**
 * TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2.2, what coturn's
 * `use-auth-secret` / `static-auth-secret` checks): username = "<expiry unix seconds>:<userId>",
 * credential = base64(HMAC-SHA1(secret, username)). coturn rejects the username after its expiry.
 */
export interface TurnCredentials {
  username: string;
  credential: string;
  /** Seconds the credentials stay valid. */
  ttl: number;
  urls: string[];
}

export function turnCredentials(secret: string, userId: string, ttlSec: number, urls: string[], nowMs = Date.now()): TurnCredentials {
  const expiry = Math.floor(nowMs / 1000) + ttlSec;
  // A ':' inside userId would be ambiguous for coturn's parser (it splits at the first ':').
  const username = `${expiry}:${userId.replaceAll(':', '_')}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, ttl: ttlSec, urls };
}

/** The iceServers list for `ready` and `/turn`: STUN entries plus TURN with fresh credentials. */
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
