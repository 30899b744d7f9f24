import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../signalling/harness.ts';

/**
 * Regression (found by the soak's restart chaos, bench/soak/chaos.ts): main.ts listened before its
 * media worker threads were up. After a restart every client re-joins at once, and on a loaded
 * host the joins reached threads still starting and timed out (CHANNEL_TIMEOUT → MEDIA_FAILED):
 * those clients stayed in the room without audio. Now the server listens only once every worker
 * has reported: the first /metrics it serves already lists both threads.
 */
const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'voxlink-listen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('main.ts starts listening after its media workers', () => {
  it('the first answer on the port comes from a server whose worker threads have all reported', { timeout: 180_000 }, async () => {
    const env = {
      ...process.env,
      VOXLINK_PORT: '0',
      VOXLINK_HOST: '127.0.0.1',
      VOXLINK_DATA_DIR: dir,
      VOXLINK_SECRET: 'listen-test-secret-0123456789abcdefghij',
      VOXLINK_LOG_LEVEL: 'info',
      VOXLINK_MEDIA_WORKERS: '2',
      VOXLINK_RTC_MIN_PORT: '55750',
      VOXLINK_RTC_MAX_PORT: '55769',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const listening = /"component":"server".*?"port":(\d+)/;
      // Up to a minute for the threads (main.ts's own bound) on a loaded host, plus the start itself.
      await until(() => listening.test(out), 150_000, 'listening line').catch((err: unknown) => {
        throw new Error(`${String(err)}; output: ${out.slice(-2000)}`);
      });
      const port = Number(listening.exec(out)![1]);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const threads = metrics.split('\n').filter((l) => l.startsWith('voxlink_worker_rooms{'));
      expect(threads.length, metrics.slice(0, 2000)).toBe(2);
      // And the log says so, before it says it listens.
      expect(out.indexOf('"media workers ready"')).toBeGreaterThan(-1);
      expect(out.indexOf('"media workers ready"')).toBeLessThan(out.search(listening));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
