import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AuthKeys } from '../auth/keys.ts';
import { mintToken } from '../auth/tokens.ts';
import type { VoxConfig } from '../config.ts';
import { roomIdSchema } from '../protocol/messages.ts';
import { TokenBucket } from '../signalling/token-bucket.ts';

/**
 * Dev mode's token desk for the demo page: `POST /dev/token {room, name}` → a short-lived token
 * with join + publish + subscribe on that one room. Only in dev mode (anyone who can reach the
 * port can mint), rate limited per client address so a loop cannot flood the server with sessions.
 */
export interface DevTokenOptions {
  /** Token lifetime, seconds. Default 600: the page asks again whenever the SDK needs a new session. */
  ttlSec?: number;
  /** Sustained tokens per minute per client address. Default 20. */
  perMinute?: number;
  /** Burst per client address. Default 10. */
  burst?: number;
}

export const devTokenRequestSchema = z.object({
  room: roomIdSchema,
  name: z.string().trim().min(1).max(64),
});

export type DevTokenReply =
  | { status: 200; body: { token: string; userId: string; room: string; expiresAt: number } }
  | { status: 400 | 403 | 429 | 503; body: { error: string; message: string } };

/** Addresses remembered for rate limiting; beyond this the table starts over (dev only, not a defence). */
const MAX_TRACKED_ADDRESSES = 10_000;

export class DevTokenDesk {
  readonly #config: VoxConfig;
  readonly #keys: AuthKeys;
  readonly #ttlSec: number;
  readonly #perMinute: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(config: VoxConfig, keys: AuthKeys, options: DevTokenOptions = {}) {
    this.#config = config;
    this.#keys = keys;
    this.#ttlSec = options.ttlSec ?? 600;
    this.#perMinute = options.perMinute ?? 20;
    this.#burst = options.burst ?? 10;
  }

  get enabled(): boolean {
    return this.#config.auth.devMode === true;
  }

  async issue(address: string, rawBody: string): Promise<DevTokenReply> {
    if (!this.enabled) {
      return { status: 403, body: { error: 'DEV_MODE_OFF', message: 'dev tokens are only minted in dev mode (auth.devMode)' } };
    }
    if (!this.#take(address)) {
      return { status: 429, body: { error: 'RATE_LIMITED', message: `at most ${this.#perMinute} dev tokens per minute` } };
    }
    let json: unknown;
    try {
      json = JSON.parse(rawBody);
    } catch {
      return { status: 400, body: { error: 'INVALID_ARGUMENT', message: 'body must be JSON {room, name}' } };
    }
    const parsed = devTokenRequestSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { status: 400, body: { error: 'INVALID_ARGUMENT', message: `${issue?.path.join('.') || 'body'}: ${issue?.message}` } };
    }
    const secret = this.#keys.hs256Secret;
    if (secret === undefined) {
      return { status: 503, body: { error: 'DEV_TOKEN_UNAVAILABLE', message: 'the server holds no HS256 secret to sign with' } };
    }
    const { room, name } = parsed.data;
    // A fresh identity per token: two tabs with the same name are two participants, not a replacement.
    const userId = `web-${randomBytes(6).toString('hex')}`;
    const token = await mintToken({
      key: secret,
      userId,
      name,
      // Dev mode is a demo: anyone may record, and the page shows everyone that the room is recorded.
      rooms: [{ room, grants: ['join', 'publish', 'subscribe', 'record'] }],
      ttl: this.#ttlSec,
      issuer: this.#config.auth.issuer,
      audience: this.#config.auth.audience,
    });
    return { status: 200, body: { token, userId, room, expiresAt: Date.now() + this.#ttlSec * 1000 } };
  }

  #take(address: string): boolean {
    const now = Date.now();
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#buckets.clear();
      bucket = new TokenBucket(this.#perMinute / 60, this.#burst, now);
      this.#buckets.set(address, bucket);
    }
    return bucket.take(now);
  }
}
