import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { mediaPlaneOptionsFromConfig } from '../../src/rooms/media-plane.ts';
import { RawClient, until } from './harness.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'voxlink-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config layering', () => {
  it('defaults: port 7880, dev mode on without a secret, media sections filled', () => {
    const config = loadConfig({ env: {} });
    expect(config.server.port).toBe(7880);
    expect(config.auth.devMode).toBe(true);
    expect(config.signalling.resumeGraceMs).toBe(30_000);
    expect(config.media).toMatchObject({ announcedIp: '127.0.0.1', rtcMinPort: 40000, rtcMaxPort: 49999, slots: 3 });
    expect(config.media.workers).toBeGreaterThanOrEqual(1);
  });

  it('file ← env: env wins, dev mode off once a secret is configured', () => {
    const file = join(dir, 'voxlink.json');
    writeFileSync(file, JSON.stringify({ server: { port: 9000 }, limits: { maxRoomsPerSession: 3 }, auth: { hs256Secret: 'from-file-secret-0123456789abcdef' } }));
    const config = loadConfig({ env: { VOXLINK_CONFIG: file, VOXLINK_PORT: '9100', VOXLINK_TURN_URLS: 'turn:a:3478, turn:b:3478' } });
    expect(config.server.port).toBe(9100);
    expect(config.limits.maxRoomsPerSession).toBe(3);
    expect(config.turn.urls).toEqual(['turn:a:3478', 'turn:b:3478']);
    expect(config.auth.devMode).toBe(false);
  });

  it('a bad value names the key and the problem', () => {
    expect(() => loadConfig({ env: { VOXLINK_PORT: 'eighty' } })).toThrow(/VOXLINK_PORT="eighty": expected an integer/);
    expect(() => loadConfig({ env: { VOXLINK_SLOTS: '0' } })).toThrow(/media\.slots/);
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"signalling": {"defaultRoomMode": "mesh"}}');
    expect(() => loadConfig({ env: { VOXLINK_CONFIG: file } })).toThrow(/signalling\.defaultRoomMode/);
    writeFileSync(file, '{ nope');
    expect(() => loadConfig({ env: { VOXLINK_CONFIG: file } })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ env: { VOXLINK_HEARTBEAT_INTERVAL_MS: '60000' } })).toThrow(/heartbeatTimeoutMs must exceed/);
  });
});

describe('dev mode stays on loopback', () => {
  const secret = 'a-production-secret-0123456789abcdef';
  it('binds 127.0.0.1 when no secret is configured and no host was asked for', () => {
    const config = loadConfig({ env: {} });
    expect(config.auth.devMode).toBe(true);
    expect(config.server.host).toBe('127.0.0.1');
  });

  it('refuses a public host without a secret, naming the way out', () => {
    expect(() => loadConfig({ env: { VOXLINK_HOST: '0.0.0.0' } })).toThrow(/dev mode .*only starts on loopback.*VOXLINK_DEV_MODE=true/s);
    expect(loadConfig({ env: { VOXLINK_HOST: '127.0.0.1' } }).auth.devMode).toBe(true);
  });

  it('runs dev mode on a public host only when asked explicitly; a secret binds all interfaces by default', () => {
    const asked = loadConfig({ env: { VOXLINK_HOST: '0.0.0.0', VOXLINK_DEV_MODE: 'true' } });
    expect(asked).toMatchObject({ server: { host: '0.0.0.0' }, auth: { devMode: true } });
    const production = loadConfig({ env: { VOXLINK_SECRET: secret } });
    expect(production).toMatchObject({ server: { host: '0.0.0.0' }, auth: { devMode: false } });
  });
});

it('takes p2p and auto as the default room mode, and the p2p block from the environment', () => {
  expect(loadConfig({ env: { VOXLINK_DEFAULT_ROOM_MODE: 'p2p' } }).signalling.defaultRoomMode).toBe('p2p');
  const config = loadConfig({ env: { VOXLINK_DEFAULT_ROOM_MODE: 'auto', VOXLINK_P2P_MAX_SDP_BYTES: '8192', VOXLINK_P2P_RETURN_TO_DIRECT: 'false' } });
  expect(config.signalling.defaultRoomMode).toBe('auto');
  expect(config.p2p).toMatchObject({ maxSdpBytes: 8192, returnToDirect: false, switchTimeoutMs: 15_000 });
});

describe('room mixer knobs (media.mixing)', () => {
  it('defaults reach the media rooms: −50 dBFS, 400 ms hangover, normal profile', () => {
    const room = mediaPlaneOptionsFromConfig(loadConfig({ env: {} }).media).room;
    expect(room.mixing).toEqual({ mixer: { voiceThresholdDbfs: -50, hangoverMs: 400 }, opusProfile: 'normal' });
  });

  it('file ← env values reach MediaRoomOptions.mixing', () => {
    const file = join(dir, 'mixing.json');
    writeFileSync(file, JSON.stringify({ media: { mixing: { hangoverMs: 200, voiceThresholdDbfs: -40 } } }));
    const config = loadConfig({ env: { VOXLINK_CONFIG: file, VOXLINK_MIX_VOICE_THRESHOLD_DBFS: '-45.5', VOXLINK_MIX_OPUS_PROFILE: 'low' } });
    const room = mediaPlaneOptionsFromConfig(config.media).room;
    expect(room.mixing).toEqual({ mixer: { voiceThresholdDbfs: -45.5, hangoverMs: 200 }, opusProfile: 'low' });
    // The room options are cloned into the worker thread: plain data only.
    expect(structuredClone(room.mixing)).toEqual(room.mixing);
  });

  it('batched UDP sends are opt-in and reach the worker pool only with one port per worker', () => {
    expect(loadConfig({ env: {} }).media.udpBatch).toBe(false);
    expect(mediaPlaneOptionsFromConfig(loadConfig({ env: {} }).media).pool?.udpBatch).toBe(false); // a port per peer: nothing to batch
    expect(mediaPlaneOptionsFromConfig(loadConfig({ env: { VOXLINK_UDP_PORT: '50200' } }).media).pool?.udpBatch).toBe(false);
    expect(mediaPlaneOptionsFromConfig(loadConfig({ env: { VOXLINK_UDP_PORT: '50200', VOXLINK_UDP_BATCH: 'true' } }).media).pool?.udpBatch).toBe(true);
    expect(mediaPlaneOptionsFromConfig(loadConfig({ env: { VOXLINK_UDP_BATCH: 'true' } }).media).pool?.udpBatch).toBe(false); // a port per peer: nothing to batch
  });

  it('a bad knob names the key', () => {
    expect(() => loadConfig({ env: { VOXLINK_MIX_OPUS_PROFILE: 'loud' } })).toThrow(/media\.mixing\.opusProfile/);
    expect(() => loadConfig({ env: { VOXLINK_MIX_HANGOVER_MS: '10' } })).toThrow(/media\.mixing\.hangoverMs/);
    expect(() => loadConfig({ env: { VOXLINK_MIX_VOICE_THRESHOLD_DBFS: '3' } })).toThrow(/media\.mixing\.voiceThresholdDbfs/);
  });
});

/** Run src/main.ts until it prints the demo URL; returns the URL, the output so far and the child. */
async function startMain(dataDir: string, extraEnv: Record<string, string> = {}): Promise<{ demo: URL; output: () => string; env: NodeJS.ProcessEnv; child: ReturnType<typeof spawn> }> {
  const env = { ...process.env, VOXLINK_PORT: '0', VOXLINK_HOST: '127.0.0.1', VOXLINK_DATA_DIR: dataDir, VOXLINK_MEDIA: 'false', VOXLINK_LOG_LEVEL: 'info', ...extraEnv };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const demo = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no demo URL; output: ${out}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      // The first printed URL that carries a token ("Demo: …" before, "With a ready token: …" now).
      const match = /: (http\S*[?&]token=\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  return { demo: new URL(demo), output: () => out, env, child };
}

describe('npm start and voxlink token', () => {
  it('reports the uWS JS fallback loudly in the log and in /healthz', { timeout: 30_000 }, async () => {
    const { demo, output, child } = await startMain(join(dir, 'fallback'), { UWS_USE_FALLBACK: '1' });
    try {
      await until(() => /NATIVE BINARY NOT LOADED/.test(output()), 5000, 'fallback warning in the log');
      const health = (await (await fetch(`http://127.0.0.1:${demo.port}/healthz`)).json()) as { uws: { native: boolean } };
      expect(health.uws.native).toBe(false);
      // Signalling still works on the fallback.
      const a = await RawClient.connect(`ws://127.0.0.1:${demo.port}/ws`);
      expect((await a.hello(demo.searchParams.get('token') as string)).server.native).toBe(false);
      a.close();
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('starts on defaults with a dev secret in the data dir, prints a working demo token; the CLI mints tokens it accepts', { timeout: 30_000 }, async () => {
    const { demo: url, output, env, child } = await startMain(join(dir, 'data'));
    try {
      await until(() => /DEV MODE/.test(output()), 5000, 'dev mode warning in the log');
      const metrics = await (await fetch(`http://127.0.0.1:${url.port}/metrics`)).text();
      expect(metrics).toMatch(/^nodejs_eventloop_lag_seconds /m);
      expect(metrics).toMatch(/^voxlink_sessions\{state="connected"\} /m);
      const token = url.searchParams.get('token') as string;
      const wsUrl = `ws://127.0.0.1:${url.port}/ws`;
      const a = await RawClient.connect(wsUrl);
      expect((await a.hello(token)).server.native).toBe(true);
      expect((await a.join('demo')).participants).toHaveLength(1);

      const { stdout } = await promisify(execFile)(process.execPath, ['bin/voxlink.js', 'token', '--room', 'demo', '--user', 'alice', '--name', 'Alice', '--grants', 'join,publish', '--ttl', '1h'], {
        cwd: root,
        env,
      });
      const b = await RawClient.connect(wsUrl);
      expect((await b.hello(stdout.trim())).name).toBe('Alice');
      const joined = await b.join('demo');
      expect(joined.participants.map((p) => p.userId)).toContain('alice');
      a.close();
      b.close();
    } finally {
      child.kill('SIGTERM');
    }
  });
});
