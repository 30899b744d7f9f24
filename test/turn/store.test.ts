import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsText } from '../../src/metrics/registry.ts';
import { restCredentials } from '../../src/turn/credentials.ts';
import { rotateSecret, type TurnSecretStore } from '../../src/turn/secrets.ts';
import { openSecretStore, stopTurn } from '../../src/turn/service.ts';
import { startTestServer, type TestServer } from '../signalling/harness.ts';
import { startCoturn, type Coturn } from './coturn.ts';
import { sleep } from './harness.ts';
import { startPostgres, startRedis, type PostgresService, type RedisService } from './services.ts';
import { allocate, TurnSession } from './stun.ts';

const REALM = 'voxlink.test';
const execFileAsync = promisify(execFile);
const root = join(import.meta.dirname, '../..');

interface TurnBody {
  username: string;
  password: string;
  uris: string[];
}

type Kind = 'redis' | 'postgres';

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** One real database per kind, coturn reading its secrets from it, a VoxLink server writing them. */
describe.each<Kind>(['redis', 'postgres'])('TURN secrets in %s: coturn reads what VoxLink writes, rotation drops nobody', (kind) => {
  let db: RedisService | PostgresService;
  let coturn: Coturn;
  let t: TestServer;
  let store: TurnSecretStore;
  let turnConfig: Record<string, unknown>;

  beforeAll(async () => {
    db = kind === 'redis' ? await startRedis() : await startPostgres();
    turnConfig =
      kind === 'redis'
        ? { store: 'redis', redisUrl: (db as RedisService).url(2) }
        : { store: 'postgres', postgresUrl: (db as PostgresService).url() };
    // VoxLink first: it creates coturn's tables in an empty PostgreSQL and seeds the secret.
    t = await startTestServer({ turn: { urls: ['turn:127.0.0.1:1?transport=udp'], realm: REALM, ttlSec: 600, refreshSec: 1, userQuota: 4, ...turnConfig } });
    coturn = await startCoturn({
      secret: null,
      realm: REALM,
      variant: kind,
      values: kind === 'redis' ? { 'redis-userdb': `"${(db as RedisService).coturnConn(2)}"`, 'redis-statsdb': false } : { 'psql-userdb': `"${(db as PostgresService).coturnConn()}"` },
    });
    store = await openSecretStore(t.config.turn);
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await t?.close();
    await stopTurn();
    await coturn?.close();
    await db?.close();
  });

  async function turnFromHttp(userId: string): Promise<TurnBody> {
    const res = await fetch(`${t.server.url}/turn`, { headers: { authorization: `Bearer ${await t.token(userId)}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as TurnBody;
  }

  const allocates = async (username: string, password: string): Promise<number> => {
    const outcome = await allocate(coturn.host, coturn.port, username, password);
    return outcome.ok ? 0 : outcome.errorCode;
  };

  it('the server seeds the empty store; GET /turn credentials from it allocate on coturn', async () => {
    const secrets = await store.list();
    expect(secrets).toHaveLength(1);
    const creds = await turnFromHttp('ann');
    expect(restCredentials(secrets[0].value, 'ann', 600, [], Number(creds.username.split(':')[0]) * 1000 - 600_000).credential).toBe(creds.password);
    expect(await allocates(creds.username, creds.password)).toBe(0);
    // Credentials under a secret the store does not hold are refused.
    const forged = restCredentials('not-in-the-store-0123456789', 'ann', 600, []);
    expect(await allocates(forged.username, forged.credential)).toBe(401);
  });

  it('user-quota from turn.userQuota (4) is enforced by coturn: the fifth allocation of one username gets 486', async () => {
    const creds = await turnFromHttp('quincy');
    // coturn counts a username's sessions (UDP 5-tuples with an allocation), so each on its own socket.
    const sessions = await Promise.all([0, 1, 2, 3, 4].map(() => TurnSession.open(coturn.host, coturn.port)));
    try {
      const results = [];
      for (const s of sessions) results.push((await s.allocate(creds.username, creds.password)).errorCode ?? 0);
      expect(results).toEqual([0, 0, 0, 0, 486]);
    } finally {
      for (const s of sessions) {
        await s.refresh(0).catch(() => undefined);
        s.close();
      }
    }
  });

  it('voxlink turn rotate-secret: new credentials use the new secret, old ones keep working until the retirement, then stop', async () => {
    const [old] = await store.list();
    const before = await turnFromHttp('bea');
    // An allocation made with the old secret: it must survive the old secret's removal.
    const running = await TurnSession.open(coturn.host, coturn.port);
    expect((await running.allocate(before.username, before.password)).kind).toBe('success');

    const dir = mkdtempSync(join(tmpdir(), 'voxlink-cli-'));
    try {
      const configFile = join(dir, 'voxlink.json');
      writeFileSync(configFile, JSON.stringify({ auth: { hs256Secret: 'x'.repeat(32) }, turn: { realm: REALM, ttlSec: 600, refreshSec: 1, ...turnConfig } }));
      const { stdout } = await promisify(execFile)(process.execPath, ['bin/voxlink.js', 'turn', 'rotate-secret', '--config', configFile, '--retire-after', '4'], { cwd: root, env: { PATH: process.env.PATH } });
      expect(stdout).toMatch(new RegExp(`added a TURN secret to ${kind} \\(realm ${REALM}\\); 1 older secret\\(s\\) stay valid until`));
      expect(stdout).not.toContain(old.value);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const rotatedAt = Date.now();
    const after = await store.list();
    expect(after).toHaveLength(2);
    const fresh = after.find((r) => r.value !== old.value)!;
    expect(after.find((r) => r.value === old.value)!.retireAt).toBeGreaterThan(rotatedAt);

    // Within turn.refreshSec the server signs with the new secret.
    await until(async () => {
      const c = await turnFromHttp('bea');
      return restCredentials(fresh.value, 'bea', 0, [], Number(c.username.split(':')[0]) * 1000).credential === c.password;
    }, 5_000, 'credentials signed with the rotated secret');
    const rotated = await turnFromHttp('bea');
    expect(await allocates(rotated.username, rotated.password)).toBe(0);
    // Before the retirement both secrets are valid: credentials handed out before still allocate.
    expect(await allocates(before.username, before.password)).toBe(0);

    // After it, a server's refresh removes the old secret; coturn then refuses credentials signed
    // with it, even unexpired ones, and keeps accepting the new secret's.
    await until(async () => (await store.list()).length === 1, 10_000, 'the retired secret removed from the store');
    expect((await store.list()).map((r) => r.value)).toEqual([fresh.value]);
    expect(await allocates(before.username, before.password)).toBe(401);
    expect(await allocates(rotated.username, rotated.password)).toBe(0);
    // Nobody dropped: the allocation made under the old secret still refreshes and opens permissions.
    expect((await running.refresh(600)).kind).toBe('success');
    expect((await running.createPermission('127.0.0.1')).kind).toBe('success');
    await running.refresh(0);
    running.close();
  }, 30_000);

  it('closing a server closes its secret store connection and refresh loop', async () => {
    const connections = async (): Promise<number> => {
      if (kind === 'redis') {
        const { stdout } = await execFileAsync('redis-cli', ['-p', String(db.port), 'CLIENT', 'LIST']);
        return stdout.trim().split('\n').filter((line) => !/ cmd=client\|list /.test(line)).length;
      }
      const c = new pg.Client({ connectionString: (db as PostgresService).url() });
      await c.connect();
      try {
        const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
        return Number(r.rows[0].n);
      } finally {
        await c.end();
      }
    };
    const before = await connections();
    const second = await startTestServer({ turn: { urls: ['turn:127.0.0.1:1?transport=udp'], realm: REALM, ttlSec: 600, refreshSec: 1, ...turnConfig } });
    await sleep(1_500); // one refresh on the second server's loop
    expect(await connections()).toBeGreaterThan(before);
    await second.close();
    await until(async () => (await connections()) === before, 5_000, 'the closed server’s store connection gone');
  }, 30_000);

  it('the store briefly unavailable: /turn keeps answering from the cached secret, and the server notices the return', async () => {
    const [current] = await store.list();
    await db.stop();
    await sleep(2_500); // at least one failed refresh (refreshSec 1)
    expect(await metricsText()).toMatch(/^voxlink_turn_secret_store_up 0$/m);
    const creds = await turnFromHttp('cy');
    expect(restCredentials(current.value, 'cy', 0, [], Number(creds.username.split(':')[0]) * 1000).credential).toBe(creds.password);
    await db.start();
    await until(async () => /^voxlink_turn_secret_store_up 1$/m.test(await metricsText()), 15_000, 'the store back up');
    // coturn's own connection: after a PostgreSQL restart its first query fails (one 401), then it
    // reconnects; the cached credentials handed out during the outage then allocate.
    await until(async () => (await allocates(creds.username, creds.password)) === 0, 10_000, 'coturn allocating again');
  }, 40_000);
});

describe('rotateSecret against a real Redis', () => {
  let redis: RedisService;
  afterAll(async () => {
    await redis?.close();
  });

  it('retires every older secret and never moves an earlier retirement later', async () => {
    redis = await startRedis();
    const store = await openSecretStore({ store: 'redis', redisUrl: redis.url(5), realm: 'r.test' } as never);
    try {
      await rotateSecret(store, { retireAfterSec: 100, now: 1_000, secret: 'first-secret-0123456789' });
      await rotateSecret(store, { retireAfterSec: 100, now: 2_000, secret: 'second-secret-0123456789' });
      await rotateSecret(store, { retireAfterSec: 100, now: 3_000, secret: 'third-secret-0123456789' });
      const byValue = Object.fromEntries((await store.list()).map((r) => [r.value, r]));
      expect(byValue['first-secret-0123456789'].retireAt).toBe(102_000); // retired by the second rotation, not moved to 103_000
      expect(byValue['second-secret-0123456789'].retireAt).toBe(103_000);
      expect(byValue['third-secret-0123456789'].retireAt).toBeNull();
    } finally {
      await store.close();
    }
  });
});
