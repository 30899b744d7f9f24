import { randomBytes } from 'node:crypto';

/**
 * TURN REST shared secrets kept where coturn reads them (its Redis or PostgreSQL user DB), with
 * the bookkeeping rotation needs. coturn only knows a set of secrets per realm and tries each one
 * (`turn/realm/<realm>/secret`, table `turn_secret`); when a secret was added and when it may be
 * removed is VoxLink's own record next to it (docs/turn.md, "Rotation").
 */
export interface SecretRecord {
  value: string;
  /** When the secret was added (ms since the epoch); 0 for a secret someone added by hand. */
  addedAt: number;
  /** When it may be removed (ms); null while it is current or was never retired. */
  retireAt: number | null;
}

/** coturn realm options (turnserver options of the same names), applied per realm from the store. */
export interface RealmOptions {
  userQuota?: number;
  totalQuota?: number;
  maxBps?: number;
}

/** coturn's names for the realm options, in its Redis keys and its turn_realm_option table. */
export const REALM_OPTION_NAMES = { userQuota: 'user-quota', totalQuota: 'total-quota', maxBps: 'max-bps' } as const;

export interface TurnSecretStore {
  readonly kind: 'redis' | 'postgres';
  readonly realm: string;
  list(): Promise<SecretRecord[]>;
  add(record: SecretRecord): Promise<void>;
  /** Sets retireAt on each of `values` that has none or a later one. */
  retire(values: readonly string[], retireAt: number): Promise<void>;
  remove(values: readonly string[]): Promise<void>;
  /** Writes the options that are set and removes the others, so coturn's config file applies to those. */
  setRealmOptions(options: RealmOptions): Promise<void>;
  close(): Promise<void>;
}

/** A fresh secret: 32 random bytes, base64url (no characters a config file or SQL quoting cares about). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The secret new credentials are signed with: the newest one not yet retired, else the newest.
 * Every secret in the store stays valid for coturn until it is removed.
 */
export function currentOf(records: readonly SecretRecord[]): SecretRecord | undefined {
  let best: SecretRecord | undefined;
  for (const r of records) if (best === undefined || newer(r, best)) best = r;
  return best;
}

/** Not retired beats retired, then the later addedAt; the value breaks ties so every server picks the same. */
function newer(a: SecretRecord, b: SecretRecord): boolean {
  if ((a.retireAt === null) !== (b.retireAt === null)) return a.retireAt === null;
  if (a.addedAt !== b.addedAt) return a.addedAt > b.addedAt;
  return a.value > b.value;
}

export interface RotateOptions {
  /** Seconds the previous secrets stay valid: at least the longest credential lifetime (turn.ttlSec) plus the refresh interval. */
  retireAfterSec: number;
  now?: number;
  /** The new secret (default: newSecret()). */
  secret?: string;
}

/**
 * Adds a new secret and schedules every other one for removal after `retireAfterSec`. Credentials
 * minted with an old secret keep working until they expire; servers switch to the new secret at
 * their next refresh; the old one is deleted by the first server whose refresh sees it due.
 */
export async function rotateSecret(store: TurnSecretStore, options: RotateOptions): Promise<{ secret: string; retired: string[]; retireAt: number }> {
  const now = options.now ?? Date.now();
  const secret = options.secret ?? newSecret();
  const before = await store.list();
  await store.add({ value: secret, addedAt: now, retireAt: null });
  const retireAt = now + options.retireAfterSec * 1000;
  const retired = before.filter((r) => r.value !== secret).map((r) => r.value);
  await store.retire(retired, retireAt);
  return { secret, retired, retireAt };
}

/** Removes the secrets whose retirement time has passed (never the current one). Returns what it removed. */
export async function pruneSecrets(store: TurnSecretStore, records: readonly SecretRecord[], now = Date.now()): Promise<string[]> {
  const current = currentOf(records);
  const due = records.filter((r) => r !== current && r.retireAt !== null && r.retireAt <= now).map((r) => r.value);
  if (due.length > 0) await store.remove(due);
  return due;
}

/**
 * The synchronous view signalling signs with: the current secret and every secret seen so far in
 * this process. It survives a store that is briefly unreachable (the last good read stays in use).
 */
export class SecretCache {
  /** The current secret when the cache was made: what signalling holds and passes back (src/turn/credentials.ts). */
  readonly initial: string;
  #current: string;
  readonly #known = new Set<string>();

  constructor(initial: string) {
    this.initial = initial;
    this.#current = initial;
    this.#known.add(initial);
  }

  get current(): string {
    return this.#current;
  }

  /** Whether `secret` is or was one of this store's secrets (the startup secret included). */
  knows(secret: string): boolean {
    return this.#known.has(secret);
  }

  update(records: readonly SecretRecord[]): void {
    const current = currentOf(records);
    if (current === undefined) return; // an emptied store: keep signing with the last secret
    this.#current = current.value;
    for (const r of records) this.#known.add(r.value);
  }
}
