import { dataDirSecret, TURN_SECRET_FILE } from '../auth/keys.ts';
import type { VoxConfig } from '../config.ts';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { addSecretSource } from './credentials.ts';
import { turnMetrics } from './metrics.ts';
import { currentOf, newSecret, pruneSecrets, SecretCache, type TurnSecretStore } from './secrets.ts';
import type { CoturnStatsReader } from './stats.ts';

const log = logger('turn');

type TurnConfig = VoxConfig['turn'];

/** Opens the store `turn.store` names (redis or postgres). */
export async function openSecretStore(turn: TurnConfig, timeoutMs?: number): Promise<TurnSecretStore> {
  // Loaded on demand: a static deployment never loads the Redis or PostgreSQL client.
  if (turn.store === 'redis') return (await import('./redis-store.ts')).RedisSecretStore.open(turn.redisUrl!, turn.realm!, timeoutMs);
  if (turn.store === 'postgres') return (await import('./postgres-store.ts')).PostgresSecretStore.open(turn.postgresUrl!, turn.realm!, timeoutMs);
  throw new VoxError('CONFIG_INVALID', 'turn.store static keeps the secret in the config (turn.secret) and coturn.conf: nothing to open');
}

/** A running TURN integration: secret store with its refresh loop, statistics reader. */
export interface TurnService {
  /** The secret signalling signs with (a store's: its current one at start; credentials follow later rotations). */
  readonly secret: string | undefined;
  /** Re-reads the store now (the refresh loop does it every turn.refreshSec). */
  refresh(): Promise<void>;
  readonly stats: CoturnStatsReader | undefined;
  close(): Promise<void>;
}

const running = new Set<TurnService>();

/**
 * Starts what `config.turn` asks for and returns the secret signalling signs with, as
 * `startServer` needs it: static store → turn.secret (or the dev secret in the data dir);
 * redis/postgres → the store's current secret, seeding an empty store with turn.secret or a new
 * one, and keeping an in-memory copy that a timer refreshes (and that stays in use while the store
 * is unreachable). With turn.stats.redisUrl it also starts the coturn statistics reader.
 */
export async function startTurn(config: VoxConfig): Promise<string | undefined> {
  return (await startTurnService(config)).secret;
}

export async function startTurnService(config: VoxConfig): Promise<TurnService> {
  const { turn } = config;
  const stats =
    turn.stats.redisUrl === undefined
      ? undefined
      : new (await import('./stats.ts')).CoturnStatsReader({ url: turn.stats.redisUrl, userLabels: turn.stats.userLabels, metrics: turnMetrics() });
  if (turn.store === 'static') {
    const secret = turn.secret ?? (config.auth.devMode && turn.urls.length > 0 ? dataDirSecret(config.dataDir, TURN_SECRET_FILE).secret : undefined);
    const service: TurnService = {
      secret,
      stats,
      refresh: () => Promise.resolve(),
      close: async () => {
        running.delete(service);
        await stats?.close();
      },
    };
    running.add(service);
    return service;
  }

  let store: TurnSecretStore;
  try {
    store = await openSecretStore(turn);
  } catch (err) {
    await stats?.close();
    throw err;
  }
  try {
    let records = await store.list();
    if (records.length === 0) {
      // An empty store: seed it with the configured secret (what coturn.conf had before moving to
      // the store), else the dev secret, else a new one.
      const seed = turn.secret ?? (config.auth.devMode ? dataDirSecret(config.dataDir, TURN_SECRET_FILE).secret : newSecret());
      await store.add({ value: seed, addedAt: Date.now(), retireAt: null });
      records = await store.list();
      log.info({ store: store.kind, realm: store.realm }, 'TURN secret store was empty: seeded it');
    }
    await store.setRealmOptions({ userQuota: turn.userQuota, totalQuota: turn.totalQuota, maxBps: turn.maxBps });
    const cache = new SecretCache(currentOf(records)!.value);
    cache.update(records);
    const removeSource = addSecretSource(cache);
    let failing = false;
    let refreshing: Promise<void> | undefined;
    const refreshOnce = async (): Promise<void> => {
      try {
        const now = Date.now();
        const list = await store.list();
        cache.update(list);
        const removed = await pruneSecrets(store, list, now);
        if (removed.length > 0) {
          cache.update(await store.list());
          log.info({ store: store.kind, realm: store.realm, removed: removed.length }, 'retired TURN secrets removed');
        }
        if (failing) log.info({ store: store.kind }, 'TURN secret store reachable again');
        failing = false;
        turnMetrics().storeUp.set(1);
      } catch (err) {
        // Keep signing with the last secrets read; coturn keeps accepting them.
        if (!failing) log.warn({ err, store: store.kind }, 'TURN secret store unreachable: using the secrets read last');
        failing = true;
        turnMetrics().storeUp.set(0);
      }
    };
    const refresh = (): Promise<void> => (refreshing ??= refreshOnce().finally(() => (refreshing = undefined)));
    turnMetrics().storeUp.set(1);
    const timer = setInterval(() => void refresh(), turn.refreshSec * 1000);
    timer.unref();
    let closed = false;
    const service: TurnService = {
      get secret() {
        return cache.initial;
      },
      stats,
      refresh,
      close: async () => {
        if (closed) return;
        closed = true;
        running.delete(service);
        clearInterval(timer);
        removeSource();
        await refreshing;
        await Promise.all([store.close(), stats?.close()]);
      },
    };
    running.add(service);
    log.info({ store: store.kind, realm: store.realm, secrets: records.length }, 'TURN secrets from the store');
    return service;
  } catch (err) {
    await Promise.all([store.close().catch(() => undefined), stats?.close()]);
    throw err;
  }
}

/** Closes every TURN service this process started (tests; the server process exits instead). */
export async function stopTurn(): Promise<void> {
  await Promise.all([...running].map((s) => s.close()));
}
