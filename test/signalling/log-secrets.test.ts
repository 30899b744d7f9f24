import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.ts';
import { RawClient, until } from './harness.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'voxlink-logs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'log-test-signing-secret-0123456789abcdef';
const TURN_SECRET = 'log-test-coturn-static-auth-secret-0123';

describe('logs never carry tokens, secrets or TURN credentials', () => {
  it('a debug-level server log of hello, join, a forged token and /turn holds none of them', { timeout: 30_000 }, async () => {
    const env = {
      ...process.env,
      VOXLINK_PORT: '0',
      VOXLINK_HOST: '127.0.0.1',
      VOXLINK_DATA_DIR: dir,
      VOXLINK_MEDIA: 'false',
      VOXLINK_LOG_LEVEL: 'debug',
      VOXLINK_SECRET: SECRET,
      VOXLINK_TURN_URLS: 'turn:127.0.0.1:3478?transport=udp',
      VOXLINK_TURN_SECRET: TURN_SECRET,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const listening = /"component":"server".*?"port":(\d+)/;
      await until(() => listening.test(out), 20_000, 'listening line');
      const port = Number(listening.exec(out)![1]);
      const token = await mintToken({ key: SECRET, userId: 'alice', room: 'standup', grants: ['join', 'publish', 'subscribe'] });
      const forged = await mintToken({ key: 'not-the-server-secret-0123456789abcdef', userId: 'mallory', room: 'standup' });

      const alice = await RawClient.connect(`ws://127.0.0.1:${port}/ws`);
      const ready = await alice.hello(token);
      const credentials = ready.iceServers.map((s) => s.credential).filter((c): c is string => typeof c === 'string');
      expect(credentials.length).toBeGreaterThan(0);
      await alice.join('standup');

      const mallory = await RawClient.connect(`ws://127.0.0.1:${port}/ws`);
      mallory.send({ op: 'hello', token: forged });
      expect((await mallory.closed).code).toBe(1008);

      const turn = (await (await fetch(`http://127.0.0.1:${port}/turn`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
        iceServers: { credential?: string }[];
      };
      const turnCredential = turn.iceServers.find((s) => s.credential)?.credential;
      expect(turnCredential).toBeTypeOf('string');
      alice.close();
      // Wait until the server has logged the rejected hello, so the log covers every step above.
      await until(() => out.split('\n').filter((l) => l.startsWith('{')).length >= 4, 5_000, 'log lines');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    const lines = out.split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const secret of [SECRET, TURN_SECRET]) expect(out).not.toContain(secret);
    // No JWT of any kind (three base64url parts starting with the encoded '{"alg"'), no TURN credential.
    expect(out).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    expect(out).not.toMatch(/"credential"/);
  });
});
