import { Redis } from 'ioredis';
import { VoxError } from '../errors.ts';
import { REALM_OPTION_NAMES, type RealmOptions, type SecretRecord, type TurnSecretStore } from './secrets.ts';

/**
 * Secrets in coturn's Redis user DB (`redis-userdb`, /usr/share/doc/coturn/schema.userdb.redis):
 * the set `turn/realm/<realm>/secret`, which coturn reads on every authentication, and the realm
 * options `turn/realm/<realm>/{user-quota,total-quota,max-bps}`, which it re-reads periodically.
 * VoxLink's bookkeeping is the hash `voxlink/turn/realm/<realm>/secret-meta` (secret → JSON
 * {addedAt, retireAt}); coturn never reads it. Set and hash change together in MULTI blocks.
 *
 * The client fails fast (no offline queue) and reconnects by itself; a failed read leaves the
 * caller's cached secrets in use.
 */
export class RedisSecretStore implements TurnSecretStore {
  readonly kind = 'redis';
  readonly realm: string;
  readonly #redis: Redis;
  readonly #setKey: string;
  readonly #metaKey: string;

  private constructor(redis: Redis, realm: string) {
    this.#redis = redis;
    this.realm = realm;
    this.#setKey = `turn/realm/${realm}/secret`;
    this.#metaKey = `voxlink/turn/realm/${realm}/secret-meta`;
  }

  /** Connects (waiting up to `timeoutMs` for the first connection) to `url` (redis://[:password@]host:port/db). */
  static async open(url: string, realm: string, timeoutMs = 5_000): Promise<RedisSecretStore> {
    const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, connectionName: 'voxlink-turn-secrets' });
    redis.on('error', () => undefined); // reported by the failing command; ioredis keeps reconnecting
    await connectRedis(redis, url, timeoutMs);
    return new RedisSecretStore(redis, realm);
  }

  async list(): Promise<SecretRecord[]> {
    const [values, meta] = await Promise.all([this.#redis.smembers(this.#setKey), this.#redis.hgetall(this.#metaKey)]);
    return values.map((value) => {
      const m = parseMeta(meta[value]);
      return { value, addedAt: m.addedAt, retireAt: m.retireAt };
    });
  }

  async add(record: SecretRecord): Promise<void> {
    await this.#redis
      .multi()
      .sadd(this.#setKey, record.value)
      .hset(this.#metaKey, record.value, JSON.stringify({ addedAt: record.addedAt, retireAt: record.retireAt }))
      .exec()
      .then(execResult);
  }

  async retire(values: readonly string[], retireAt: number): Promise<void> {
    if (values.length === 0) return;
    const meta = await this.#redis.hgetall(this.#metaKey);
    const multi = this.#redis.multi();
    for (const value of values) {
      const m = parseMeta(meta[value]);
      if (m.retireAt !== null && m.retireAt <= retireAt) continue;
      multi.hset(this.#metaKey, value, JSON.stringify({ addedAt: m.addedAt, retireAt }));
    }
    await multi.exec().then(execResult);
  }

  async remove(values: readonly string[]): Promise<void> {
    if (values.length === 0) return;
    await this.#redis
      .multi()
      .srem(this.#setKey, ...values)
      .hdel(this.#metaKey, ...values)
      .exec()
      .then(execResult);
  }

  async setRealmOptions(options: RealmOptions): Promise<void> {
    const multi = this.#redis.multi();
    for (const [field, name] of Object.entries(REALM_OPTION_NAMES) as [keyof RealmOptions, string][]) {
      const key = `turn/realm/${this.realm}/${name}`;
      const value = options[field];
      if (value === undefined) multi.del(key);
      else multi.set(key, String(value));
    }
    await multi.exec().then(execResult);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

/** Connects a lazyConnect client, or throws TURN_STORE_UNAVAILABLE after `timeoutMs`. */
export async function connectRedis(redis: Redis, url: string, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    throw new VoxError('TURN_STORE_UNAVAILABLE', `cannot reach Redis at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function parseMeta(raw: string | undefined): { addedAt: number; retireAt: number | null } {
  if (raw === undefined) return { addedAt: 0, retireAt: null };
  try {
    const m = JSON.parse(raw) as { addedAt?: unknown; retireAt?: unknown };
    return {
      addedAt: typeof m.addedAt === 'number' ? m.addedAt : 0,
      retireAt: typeof m.retireAt === 'number' ? m.retireAt : null,
    };
  } catch {
    return { addedAt: 0, retireAt: null };
  }
}

/** MULTI/EXEC answers per command; the first command error becomes the call's error. */
function execResult(results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error('Redis transaction aborted');
  for (const [err] of results) if (err) throw err;
}
