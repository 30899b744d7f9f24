import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { isVoxError } from '../../src/errors.ts';
import { startServer } from '../../src/signalling/server.ts';
import { announcedIpProblem, reachableUrls, selfSignedCertificate } from '../../src/signalling/tls.ts';
import { RawClient, startTestServer, SECRET } from './harness.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'voxlink-listen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** GET over HTTPS trusting only `ca`; resolves status and body. */
function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs src/main.ts to its end, or until it printed `stopAt` (then stops it), or kills it after 20 s. */
function runMain(env: Record<string, string>, stopAt?: RegExp): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { ...process.env, VOXLINK_MEDIA: 'false', VOXLINK_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (d: Buffer): void => {
      output += d.toString();
      if (stopAt?.test(output)) child.kill('SIGTERM');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('exclusive listen', () => {
  it('a second server on a port a VoxLink holds fails with PORT_IN_USE naming the port', async () => {
    const first = await startTestServer();
    try {
      const error = await startTestServer({ server: { port: first.server.port } }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isVoxError(error, 'PORT_IN_USE')).toBe(true);
      expect((error as Error).message).toContain(`port ${first.server.port} is already in use`);
      // The first one still serves every connection.
      for (let i = 0; i < 5; i++) {
        const client = await RawClient.connect(first.wsUrl);
        expect((await client.hello(await first.token(`u${i}`))).op).toBe('ready');
        client.close();
      }
    } finally {
      await first.close();
    }
  });

  it('npm start on a taken port exits non-zero with a message naming the port', { timeout: 30_000 }, async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const { code, output } = await runMain({ VOXLINK_HOST: '127.0.0.1', VOXLINK_PORT: String(port), VOXLINK_SECRET: SECRET });
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      expect(output).toContain(`voxlink: port ${port} is already in use on 127.0.0.1`);
      expect(output).not.toMatch(/VoxLink ready/);
    } finally {
      holder.close();
    }
  });
});

describe('HTTPS', () => {
  it('server.tls.certFile/keyFile: page, /healthz and /ws over TLS; plain http is not answered', async () => {
    const pair = await selfSignedCertificate(join(dir, 'pair'), ['localhost', '127.0.0.1']);
    const ca = readFileSync(pair.certFile, 'utf8');
    const t = await startTestServer({ server: { tls: { certFile: pair.certFile, keyFile: pair.keyFile } } });
    try {
      expect(t.server.url).toBe(`https://127.0.0.1:${t.server.port}`);
      expect(t.server.tls?.selfSigned).toBe(false);
      const health = await httpsGet(`${t.server.url}/healthz`, ca);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
      const client = await RawClient.connect(`wss://127.0.0.1:${t.server.port}/ws`, { ca });
      expect((await client.hello(await t.token('alice'))).op).toBe('ready');
      expect((await client.join('tls-room')).participants).toHaveLength(1);
      client.close();
      // An untrusting client is refused at the handshake.
      await expect(httpsGet(`${t.server.url}/healthz`, '')).rejects.toThrow(/self.signed|certificate/i);
    } finally {
      await t.close();
    }
  });

  it('a self-signed certificate is made once, reused while it covers the names, and made again when a name is new', async () => {
    const dataDir = join(dir, 'self');
    const first = await selfSignedCertificate(dataDir, ['localhost', '127.0.0.1', '10.1.2.3']);
    const again = await selfSignedCertificate(dataDir, ['localhost', '127.0.0.1', '10.1.2.3']);
    expect(again.fingerprint).toBe(first.fingerprint);
    const moved = await selfSignedCertificate(dataDir, ['localhost', '127.0.0.1', '10.9.9.9']);
    expect(moved.fingerprint).not.toBe(first.fingerprint);
    expect(existsSync(join(dataDir, 'tls', 'self-signed-key.pem'))).toBe(true);
  });

  it('rejects half a TLS config and a missing certificate with a clear error', async () => {
    expect(() => loadConfig({ env: { VOXLINK_TLS_CERT: '/x.pem', VOXLINK_SECRET: SECRET } })).toThrow(/set both certFile and keyFile/);
    await expect(startTestServer({ server: { tls: { certFile: join(dir, 'none.pem'), keyFile: join(dir, 'none.key') } } })).rejects.toThrow(
      /server\.tls: cannot read the certificate or key/,
    );
  });
});

describe('start-up warnings and the banner', () => {
  it('reachable URLs: the public URL first; every interface when bound to all; the bound host otherwise', () => {
    const all = reachableUrls({ server: { host: '0.0.0.0', port: 7880, tls: { selfSigned: 'auto' } } }, 7880, true);
    expect(all[all.length - 1]).toBe('https://127.0.0.1:7880');
    expect(all.every((u) => u.startsWith('https://'))).toBe(true);
    expect(reachableUrls({ server: { host: '192.0.2.10', port: 1, tls: { selfSigned: 'auto' } } }, 443, false)).toEqual(['http://192.0.2.10:443']);
    expect(reachableUrls({ server: { host: '0.0.0.0', port: 1, publicUrl: 'https://voice.example.com/', tls: { selfSigned: 'auto' } } }, 7880, false)[0]).toBe(
      'https://voice.example.com',
    );
  });

  it('warns when announcedIp is loopback or unspecified while clients come from elsewhere', () => {
    const config = (host: string, announcedIp: string) => loadConfig({ env: { VOXLINK_SECRET: SECRET, VOXLINK_HOST: host, VOXLINK_ANNOUNCED_IP: announcedIp } });
    expect(announcedIpProblem(config('0.0.0.0', '127.0.0.1'))).toMatch(/media\.announcedIp is 127\.0\.0\.1 while server\.host is 0\.0\.0\.0/);
    expect(announcedIpProblem(config('0.0.0.0', '0.0.0.0'))).toMatch(/media\.announcedIp is 0\.0\.0\.0/);
    expect(announcedIpProblem(config('0.0.0.0', '192.0.2.7'))).toBeUndefined();
    expect(announcedIpProblem(config('127.0.0.1', '127.0.0.1'))).toBeUndefined();
  });

  it('the log says so at start: announcedIp, and /metrics public on a non-loopback host', { timeout: 30_000 }, async () => {
    const { output } = await runMain({ VOXLINK_HOST: '0.0.0.0', VOXLINK_PORT: '0', VOXLINK_SECRET: SECRET, VOXLINK_MEDIA: 'true', VOXLINK_MEDIA_WORKERS: '1' }, /VoxLink ready/);
    expect(output).toMatch(/VoxLink ready/);
    expect(output).toMatch(/media\.announcedIp is 127\.0\.0\.1 while server\.host is 0\.0\.0\.0/);
    expect(output).toMatch(/\/metrics IS PUBLIC/);
  });
});

describe('voxlink token finds the server\'s secret', () => {
  const run = promisify(execFile);
  const cli = join(root, 'bin/voxlink.js');

  it('from another directory with --data-dir or --config; refuses to invent a secret; refuses a non-positive TTL', { timeout: 60_000 }, async () => {
    const dataDir = join(dir, 'server-data');
    const config = loadConfig({ env: {}, overrides: { server: { host: '127.0.0.1', port: 0 }, dataDir, metrics: { defaultMetrics: false } } });
    expect(config.auth.devMode).toBe(true);
    const server = await startServer(config);
    const t = { wsUrl: `ws://127.0.0.1:${server.port}/ws`, close: () => server.close() };
    try {
      const elsewhere = mkdtempSync(join(tmpdir(), 'voxlink-elsewhere-'));
      // Without pointing at the server's data dir: a clear error, and no new secret left behind.
      const lost = await run(process.execPath, [cli, 'token', '--user', 'alice'], { cwd: elsewhere }).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      expect(lost?.code).toBe(1);
      expect(lost?.stderr).toMatch(/no dev secret at .*dev-secret: the server creates it/);
      expect(existsSync(join(elsewhere, '.voxlink'))).toBe(false);

      for (const flags of [['--data-dir', dataDir], ['--config', writeConfig(elsewhere, { dataDir })]]) {
        const { stdout } = await run(process.execPath, [cli, 'token', '--user', 'alice', '--room', 'r1', ...flags], { cwd: elsewhere });
        const client = await RawClient.connect(t.wsUrl);
        expect((await client.hello(stdout.trim())).op).toBe('ready');
        client.close();
      }

      for (const ttl of ['0', '0h']) {
        const refused = await run(process.execPath, [cli, 'token', '--user', 'alice', '--ttl', ttl, '--data-dir', dataDir], { cwd: elsewhere }).then(
          () => undefined,
          (err: { code: number; stderr: string }) => err,
        );
        expect(refused?.code).toBe(64);
        expect(refused?.stderr).toMatch(/already expired: give a positive lifetime/);
      }
    } finally {
      await t.close();
    }
  });
});

function writeConfig(dirPath: string, config: unknown): string {
  const file = join(dirPath, 'voxlink.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}
