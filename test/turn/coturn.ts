import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bindingWorks } from './stun.ts';

/**
 * A real coturn (Debian's /usr/bin/turnserver) on loopback for one test file, started from the
 * production template deploy/coturn.conf with its placeholders filled in, plus the loopback-only
 * additions a test needs: listening and relaying on 127.0.0.1, and `allow-loopback-peers`
 * (coturn refuses 127.x peers by default; 4.6 accepts the flag only with the CLI off or
 * password-protected, and the template has `no-cli`).
 */
export interface Coturn {
  readonly host: string;
  readonly port: number;
  /** The static-auth-secret; '' when coturn reads its secrets from a user DB. */
  readonly secret: string;
  readonly realm: string;
  /** TLS port when started with `tls`. */
  readonly tlsPort: number | undefined;
  /** Relay port range handed to coturn (--min-port/--max-port). */
  readonly relayPorts: readonly [number, number];
  /** `turn:` URL as VoxLink's `turn.urls` config takes it. */
  readonly url: string;
  /** Everything coturn printed so far. */
  log(): string;
  /** Resolves with the first log line matching `re` (already printed or yet to come). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export interface CoturnOptions {
  /** static-auth-secret (default: a random one); null: no static secret, coturn reads them from its user DB. */
  secret?: string | null;
  realm?: string;
  /** Where to look for a block of free relay ports; default 47500…47999 (clear of other tests' RTC ranges). */
  relaySearch?: [number, number];
  relayCount?: number;
  /** Extra or replaced config lines (false removes a line): e.g. the redis-userdb of a variant. */
  values?: Record<string, string | true | false>;
  /** A deploy/coturn-<variant>.conf appended to the template (its lines then filled in by `values`). */
  variant?: 'redis' | 'postgres';
  /** TURN over TLS: coturn listens for TLS on a free port with this certificate (PEM files). */
  tls?: { certFile: string; keyFile: string };
}

const TURNSERVER = '/usr/bin/turnserver';
/** The production template this test exercises (deploy/coturn.conf). */
export const TEMPLATE = resolve(dirname(fileURLToPath(import.meta.url)), '../../deploy/coturn.conf');

/**
 * Fills in the template the way a deployer would: each `name=value` (or bare flag) line whose
 * name is in `values` gets the new value; names the template lacks are appended. Throws if a
 * CHANGE_ME placeholder is left, so a test can never run coturn with the template's dummy secret.
 */
export function renderCoturnConf(template: string, values: Record<string, string | boolean>): string {
  const pending = new Map(Object.entries(values));
  const lines = template.split('\n').flatMap((line) => {
    const name = /^([a-z0-9-]+)(=|$)/.exec(line)?.[1];
    if (name === undefined || !pending.has(name)) return [line];
    const value = pending.get(name)!;
    pending.delete(name);
    if (value === false) return [];
    return [value === true ? name : `${name}=${value}`];
  });
  for (const [name, value] of pending) if (value !== false) lines.push(value === true ? name : `${name}=${value}`);
  const text = lines.join('\n') + '\n';
  const left = text.split('\n').find((l) => !l.startsWith('#') && l.includes('CHANGE_ME'));
  if (left !== undefined) throw new Error(`coturn config still has a placeholder: ${left}`);
  return text;
}

/** deploy/coturn-<variant>.conf: what a Redis or PostgreSQL deployment appends to deploy/coturn.conf. */
export function variantPath(variant: 'redis' | 'postgres'): string {
  return resolve(dirname(TEMPLATE), `coturn-${variant}.conf`);
}

export async function startCoturn(options: CoturnOptions = {}): Promise<Coturn> {
  if (!existsSync(TURNSERVER)) throw new Error(`${TURNSERVER} not found: install coturn (scripts/install-system-deps.sh)`);
  const secret = options.secret === undefined ? randomBytes(24).toString('base64url') : options.secret;
  const realm = options.realm ?? 'voxlink.test';
  const host = '127.0.0.1';
  const port = await freeUdpTcpPort(host);
  const relayPorts = await freeUdpBlock(host, options.relayCount ?? 10, options.relaySearch ?? [47500, 47999]);
  // coturn opens its (SQLite) user database even when REST-API auth needs none: keep it private.
  const tlsPort = options.tls ? await freeUdpTcpPort(host) : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'voxlink-coturn-'));
  const confPath = join(dir, 'turnserver.conf');
  let template = readFileSync(TEMPLATE, 'utf8');
  if (options.variant) template += '\n' + readFileSync(variantPath(options.variant), 'utf8');
  writeFileSync(
    confPath,
    renderCoturnConf(template, {
      // null: the variant's secrets come from the user DB (a static-auth-secret would take precedence).
      'static-auth-secret': secret ?? false,
      ...(options.tls
        ? { 'tls-listening-port': String(tlsPort), cert: options.tls.certFile, pkey: options.tls.keyFile }
        : { 'tls-listening-port': false, cert: false, pkey: false, 'no-tls': true }),
      realm,
      'listening-port': String(port),
      'min-port': String(relayPorts[0]),
      'max-port': String(relayPorts[1]),
      // Loopback-only test additions (never in production: see the template's comments).
      'listening-ip': host,
      'relay-ip': host,
      'allow-loopback-peers': true,
      'relay-threads': '1',
      // With a variant the user DB is its redis-userdb / psql-userdb (coturn takes only one).
      userdb: options.variant ? false : join(dir, 'turndb'),
      pidfile: join(dir, 'turnserver.pid'),
      // The per-session lines (ALLOCATE processed, 401 ...) the tests read are verbose-level.
      verbose: true,
      ...options.values,
    }),
  );
  const args = ['-c', confPath];
  const child = spawn(TURNSERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const onChunk = (chunk: Buffer): void => {
    const start = text.lastIndexOf('\n') + 1;
    text += chunk.toString('utf8');
    const complete = text.slice(start, text.lastIndexOf('\n') + 1);
    if (complete === '') return;
    for (const line of complete.split('\n')) {
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i].re.test(line)) waiters.splice(i, 1)[0].resolve(line);
      }
    }
  };
  child.stdout.on('data', onChunk);
  child.stderr.on('data', onChunk);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let closed = false;

  const waitForLog = (re: RegExp, timeoutMs = 5_000): Promise<string> => {
    const found = text.split('\n').find((line) => re.test(line));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = waiters.indexOf(waiter);
        if (i >= 0) waiters.splice(i, 1);
        reject(new Error(`coturn never logged ${re} within ${timeoutMs} ms; log tail:\n${text.slice(-2000)}`));
      }, timeoutMs);
      const waiter = {
        re,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      waiters.push(waiter);
      void exited.then((code) => {
        if (closed) return;
        clearTimeout(timer);
        reject(new Error(`coturn exited (${code}) before logging ${re}; log:\n${text.slice(-2000)}`));
      });
    });
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await stop(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    // Ready = its UDP listener answers a STUN Binding request (log lines vary between versions).
    const deadline = Date.now() + 10_000;
    while (!(await bindingWorks(host, port, 300))) {
      if (child.exitCode !== null) throw new Error(`coturn exited (${child.exitCode}); log:\n${text.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`coturn did not answer STUN within 10 s; log tail:\n${text.slice(-2000)}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    host,
    port,
    secret: secret ?? '',
    realm,
    tlsPort,
    relayPorts,
    url: `turn:${host}:${port}?transport=udp`,
    log: () => text,
    waitForLog,
    close,
  };
}

async function stop(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

/** A port free for both UDP and TCP on `host` (coturn listens on both), chosen by the kernel. */
async function freeUdpTcpPort(host: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, host, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    if (await tcpFree(host, port)) return port;
  }
  throw new Error('no free UDP+TCP port on loopback');
}

function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

/** `count` consecutive UDP ports free right now, from a random start inside `range`. */
async function freeUdpBlock(host: string, count: number, range: [number, number]): Promise<[number, number]> {
  const span = range[1] - range[0] + 1 - count;
  const offset = Math.floor(Math.random() * (span + 1));
  for (let i = 0; i <= span; i += count) {
    const first = range[0] + ((offset + i) % (span + 1));
    let ok = true;
    for (let p = first; p < first + count && ok; p++) ok = await udpFree(host, p);
    if (ok) return [first, first + count - 1];
  }
  throw new Error(`no ${count} free UDP ports in ${range[0]}-${range[1]}`);
}
