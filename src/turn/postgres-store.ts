import pg from 'pg';
import { VoxError } from '../errors.ts';
import { redactUrl } from './redis-store.ts';
import { REALM_OPTION_NAMES, type RealmOptions, type SecretRecord, type TurnSecretStore } from './secrets.ts';

/**
 * Secrets in coturn's PostgreSQL user DB (`psql-userdb`, /usr/share/doc/coturn/schema.sql):
 * `turn_secret (realm, value)`, which coturn queries on every authentication, and
 * `turn_realm_option (realm, opt, value)` for user-quota, total-quota and max-bps. VoxLink's
 * bookkeeping is its own table `voxlink_turn_secret (realm, value, added_at, retire_at)`; coturn
 * never reads it. Both change in one transaction. Missing tables are created (coturn's with its own
 * schema), so an empty database works.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS turn_secret (
  realm varchar(127) default '',
  value varchar(256),
  primary key (realm,value)
);
CREATE TABLE IF NOT EXISTS turn_realm_option (
  realm varchar(127) default '',
  opt varchar(32),
  value varchar(128),
  primary key (realm,opt)
);
CREATE TABLE IF NOT EXISTS voxlink_turn_secret (
  realm varchar(127) not null,
  value varchar(256) not null,
  added_at bigint not null default 0,
  retire_at bigint,
  primary key (realm,value)
);`;

export class PostgresSecretStore implements TurnSecretStore {
  readonly kind = 'postgres';
  readonly realm: string;
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool, realm: string) {
    this.#pool = pool;
    this.realm = realm;
  }

  /** Connects to `url` (postgres://user[:password]@host[:port]/db, or ?host=/socket/dir) and creates missing tables. */
  static async open(url: string, realm: string, timeoutMs = 5_000): Promise<PostgresSecretStore> {
    // A small pool: reads every refresh interval, writes on rotation. Idle clients close, so a
    // database restart costs one failed read at most.
    const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: timeoutMs, idleTimeoutMillis: 30_000, application_name: 'voxlink-turn-secrets' });
    pool.on('error', () => undefined); // an idle client lost: the next query opens a new one
    try {
      await pool.query(SCHEMA);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new VoxError('TURN_STORE_UNAVAILABLE', `cannot use PostgreSQL at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
    }
    return new PostgresSecretStore(pool, realm);
  }

  async list(): Promise<SecretRecord[]> {
    const { rows } = await this.#pool.query<{ value: string; added_at: string | null; retire_at: string | null }>(
      `SELECT s.value, m.added_at, m.retire_at FROM turn_secret s
       LEFT JOIN voxlink_turn_secret m ON m.realm = s.realm AND m.value = s.value
       WHERE s.realm = $1`,
      [this.realm],
    );
    return rows.map((r) => ({ value: r.value, addedAt: r.added_at === null ? 0 : Number(r.added_at), retireAt: r.retire_at === null ? null : Number(r.retire_at) }));
  }

  async add(record: SecretRecord): Promise<void> {
    await this.#transaction(async (c) => {
      await c.query('INSERT INTO turn_secret (realm, value) VALUES ($1, $2) ON CONFLICT DO NOTHING', [this.realm, record.value]);
      await c.query(
        `INSERT INTO voxlink_turn_secret (realm, value, added_at, retire_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (realm, value) DO UPDATE SET added_at = EXCLUDED.added_at, retire_at = EXCLUDED.retire_at`,
        [this.realm, record.value, record.addedAt, record.retireAt],
      );
    });
  }

  async retire(values: readonly string[], retireAt: number): Promise<void> {
    if (values.length === 0) return;
    // A secret added by hand has no bookkeeping row yet: it gets one (added_at 0).
    await this.#pool.query(
      `INSERT INTO voxlink_turn_secret (realm, value, added_at, retire_at)
       SELECT $1, v, 0, $3 FROM unnest($2::text[]) AS v
       ON CONFLICT (realm, value) DO UPDATE SET retire_at = LEAST(COALESCE(voxlink_turn_secret.retire_at, EXCLUDED.retire_at), EXCLUDED.retire_at)`,
      [this.realm, values, retireAt],
    );
  }

  async remove(values: readonly string[]): Promise<void> {
    if (values.length === 0) return;
    await this.#transaction(async (c) => {
      await c.query('DELETE FROM turn_secret WHERE realm = $1 AND value = ANY($2::text[])', [this.realm, values]);
      await c.query('DELETE FROM voxlink_turn_secret WHERE realm = $1 AND value = ANY($2::text[])', [this.realm, values]);
    });
  }

  async setRealmOptions(options: RealmOptions): Promise<void> {
    await this.#transaction(async (c) => {
      for (const [field, name] of Object.entries(REALM_OPTION_NAMES) as [keyof RealmOptions, string][]) {
        const value = options[field];
        if (value === undefined) await c.query('DELETE FROM turn_realm_option WHERE realm = $1 AND opt = $2', [this.realm, name]);
        else {
          await c.query(
            `INSERT INTO turn_realm_option (realm, opt, value) VALUES ($1, $2, $3)
             ON CONFLICT (realm, opt) DO UPDATE SET value = EXCLUDED.value`,
            [this.realm, name, String(value)],
          );
        }
      }
    });
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}
