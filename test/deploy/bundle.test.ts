import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { dominantFrequency } from '../codec/signal.ts';
import { waitFor } from '../media/harness.ts';

/**
 * The release as README "Deploy" describes it: `npm run build`, then dist/ with package.json and
 * package-lock.json (nothing else from the checkout) in an empty directory, `npm ci --omit=dev
 * --ignore-scripts` there, and `node dist/src/main.js` with the production config. The npm
 * cache of this host serves the install (`--prefer-offline`, the registry for anything missing); a real host fetches the same locked
 * versions from the registry. Checked: /healthz, a token minted by the bundled CLI
 * (`node dist/src/cli.js token`) joins, media through the bundled worker carries a tone, SIGTERM
 * stops it cleanly.
 */
const repo = fileURLToPath(new URL('../..', import.meta.url));
const SECRET = 'deploy-test-secret-0123456789abcdefghij';

let release: string;
let server: ChildProcess | undefined;
let port: number;
let output = '';
const clients: { client: VoxClient; media?: NodeMediaClient }[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function releaseEnv(): NodeJS.ProcessEnv {
  // Only what the unit gives the service (plus overrides that keep the test on loopback).
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    VOXLINK_CONFIG: join(repo, 'deploy/voxlink.production.json'),
    VOXLINK_SECRET: SECRET,
    VOXLINK_HOST: '127.0.0.1',
    VOXLINK_PORT: String(port),
    VOXLINK_DATA_DIR: join(release, 'state'),
    VOXLINK_RECORDING_DIR: join(release, 'state/recordings'),
    VOXLINK_ANNOUNCED_IP: '127.0.0.1',
    VOXLINK_RTC_MIN_PORT: '45000',
    VOXLINK_RTC_MAX_PORT: '45199',
    VOXLINK_MEDIA_WORKERS: '1',
    VOXLINK_TURN_SECRET: 'deploy-test-turn-secret-0123456789',
  };
}

beforeAll(async () => {
  execFileSync('node', ['scripts/build.mjs'], { cwd: repo, stdio: 'pipe' });
  release = mkdtempSync(join(tmpdir(), 'voxlink-release-'));
  cpSync(join(repo, 'dist'), join(release, 'dist'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(release, 'package.json'));
  cpSync(join(repo, 'package-lock.json'), join(release, 'package-lock.json'));
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: release,
    stdio: 'pipe',
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  port = await freePort();
}, 180_000);

afterAll(async () => {
  for (const c of clients) {
    await c.media?.close();
    await c.client.disconnect();
  }
  server?.kill('SIGKILL');
  if (release) rmSync(release, { recursive: true, force: true });
});

describe('the release: dist/ + package.json + package-lock.json, npm ci --omit=dev', () => {
  it('installs only the runtime dependencies', () => {
    expect(existsSync(join(release, 'node_modules/uWebSockets.js'))).toBe(true);
    expect(existsSync(join(release, 'node_modules/werift'))).toBe(true);
    for (const dev of ['vitest', 'playwright-core', 'typescript', 'opusscript', 'socket.io']) {
      expect(existsSync(join(release, 'node_modules', dev)), dev).toBe(false);
    }
    expect(existsSync(join(release, 'src'))).toBe(false);
  });

  it('starts with the production config and answers /healthz', async () => {
    server = spawn('node', ['dist/src/main.js'], { cwd: release, env: releaseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(() => /"msg":"VoxLink ready"/.test(output) || server!.exitCode !== null, 30_000, 'the bundled server to start');
    expect(server.exitCode, output).toBeNull();
    const ready = JSON.parse(output.split('\n').find((l) => l.includes('"VoxLink ready"'))!) as { devMode: boolean; media: boolean; native: boolean };
    expect(ready).toMatchObject({ devMode: false, media: true, native: true });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
    expect(await health.json()).toMatchObject({ status: 'ok', version, workers: 1, uws: { native: true } });
  }, 40_000);

  it('the bundled CLI mints a token with the same config that joins, and media flows through the bundled worker', async () => {
    const mint = (user: string) =>
      execFileSync('node', ['dist/src/cli.js', 'token', '--room', 'deploy-check', '--user', user], { cwd: release, env: releaseEnv(), encoding: 'utf8' }).trim();
    const url = `ws://127.0.0.1:${port}/ws`;
    const join = async (user: string) => {
      const client = createNodeClient();
      const media = new NodeMediaClient({ room: 'deploy-check', signal: { send: (m) => client.sendMedia(m) } });
      client.on('media', (m) => void media.handle(m));
      clients.push({ client, media });
      await client.connect(url, mint(user));
      const room = await client.join('deploy-check');
      await media.connected(15_000);
      return { client, media, room };
    };
    const speaker = await join('speaker');
    const listener = await join('listener');
    expect(speaker.client.session?.userId).toBe('speaker');
    expect([...listener.room.participants.values()].map((p) => p.userId).sort()).toEqual(['listener', 'speaker']);

    speaker.media.publish(new ToneSource(523));
    const speakerId = speaker.room.participantId;
    await waitFor(() => listener.media.audioFrom(speakerId, 1).length >= 48_000, 15_000, 'a second of the speaker at the listener');
    expect(dominantFrequency(listener.media.audioFrom(speakerId, 1), 48_000)).toBeCloseTo(523, -1);
  }, 60_000);

  it('stops cleanly on SIGTERM (systemd stop)', async () => {
    const exited = new Promise<number | null>((resolve) => server!.once('exit', (code) => resolve(code)));
    server!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
  }, 15_000);
});
