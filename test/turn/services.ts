import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Real Redis and PostgreSQL for one test file, on private ports and directories (loopback only).
 * Missing binaries fail the test (scripts/install-system-deps.sh installs them); nothing is skipped.
 */
export interface Service {
  readonly port: number;
  /** Stops the process (data kept, so `start()` brings the same data back: a restart). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface RedisService extends Service {
  url(db?: number): string;
  /** coturn's redis-userdb / redis-statsdb connection string. */
  coturnConn(db: number): string;
}

export interface PostgresService extends Service {
  readonly socketDir: string;
  readonly database: string;
  readonly user: string;
  url(): string;
  /** coturn's psql-userdb connection string (libpq keywords). */
  coturnConn(): string;
}

const REDIS = '/usr/bin/redis-server';
const PG_BIN = '/usr/lib/postgresql/15/bin';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntil(what: string, check: () => Promise<boolean>, child: () => ChildProcess | undefined, log: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    const c = child();
    if (c && c.exitCode !== null) throw new Error(`${what} exited (${c.exitCode}); log:\n${log().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms; log:\n${log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

export async function startRedis(): Promise<RedisService> {
  if (!existsSync(REDIS)) throw new Error(`${REDIS} not found: install redis-server (scripts/install-system-deps.sh)`);
  const dir = mkdtempSync(join(tmpdir(), 'voxlink-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let text = '';
  const start = async (): Promise<void> => {
    // coturn needs the connection never timed out (schema.stats.redis): timeout 0, tcp-keepalive 60.
    child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--timeout', '0', '--tcp-keepalive', '60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
    await waitUntil('redis-server', () => ping(port), () => child, () => text);
  };
  await start();
  return {
    port,
    url: (db = 0) => `redis://127.0.0.1:${port}/${db}`,
    coturnConn: (db) => `ip=127.0.0.1 dbname=${db} port=${port} connect_timeout=30`,
    start,
    stop: () => stopChild(child),
    close: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function ping(port: number): Promise<boolean> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/**
 * Debian's PostgreSQL 15 as the unprivileged `postgres` user (we run as root, which initdb refuses):
 * initdb into a temp dir, a private port, the socket in that dir, TCP on loopback, trust auth.
 */
export async function startPostgres(): Promise<PostgresService> {
  for (const bin of ['initdb', 'postgres']) {
    if (!existsSync(join(PG_BIN, bin))) throw new Error(`${PG_BIN}/${bin} not found: install postgresql (scripts/install-system-deps.sh)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'voxlink-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const asPostgres = process.getuid?.() === 0 ? { uid, gid } : {};
  execFileSync(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'voxlink', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...asPostgres, cwd: dir, stdio: 'pipe' });
  const port = await freePort();
  let child: ChildProcess | undefined;
  let text = '';
  const url = (): string => `postgres://voxlink@127.0.0.1:${port}/postgres`;
  const start = async (): Promise<void> => {
    child = spawn(join(PG_BIN, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'], {
      ...asPostgres,
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
    await waitUntil(
      'postgres',
      async () => {
        const c = new pg.Client({ connectionString: url(), connectionTimeoutMillis: 500 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          await c.query('SELECT 1');
          return true;
        } catch {
          return false;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      () => child,
      () => text,
    );
  };
  await start();
  return {
    port,
    socketDir: dir,
    database: 'postgres',
    user: 'voxlink',
    url,
    coturnConn: () => `host=127.0.0.1 port=${port} dbname=postgres user=voxlink connect_timeout=30`,
    start,
    // SIGINT: PostgreSQL's fast shutdown (disconnects clients, then stops cleanly).
    stop: () => stopChild(child, 'SIGINT'),
    close: async () => {
      await stopChild(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
