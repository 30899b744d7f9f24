import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.ts';
import { AdminClient } from '../../src/client/admin.ts';
import { RawClient, until } from '../signalling/harness.ts';

/**
 * `npm start` itself (src/main.ts, media plane on) at log level info: the admin API is wired, every
 * admin call leaves an audit line (who, method, room, target, result) and no token; rooms,
 * participants and recordings leave info lines; with metrics.roomLabels false no room name
 * reaches /metrics.
 */

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'voxlink-admin-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'admin-log-test-signing-secret-0123456789';
const ROOM = 'acme/secret-board-meeting';

type Line = Record<string, unknown> & { msg: string };

describe('info log and /metrics of a running server', () => {
  it('audits admin calls without tokens, logs room/participant/recording events, keeps room names out of /metrics', { timeout: 60_000 }, async () => {
    const env = {
      ...process.env,
      VOXLINK_PORT: '0',
      VOXLINK_HOST: '127.0.0.1',
      VOXLINK_DATA_DIR: dir,
      VOXLINK_LOG_LEVEL: 'info',
      VOXLINK_SECRET: SECRET,
      VOXLINK_MEDIA_WORKERS: '1',
      VOXLINK_RTC_MIN_PORT: '44200',
      VOXLINK_RTC_MAX_PORT: '44299',
      VOXLINK_MEDIA_STATS_INTERVAL_MS: '200',
      VOXLINK_RECORDING: 'true',
      VOXLINK_METRICS_ROOM_LABELS: 'false',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const tokens: string[] = [];
    let metrics = '';
    try {
      const listening = /"component":"server".*?"port":(\d+)/;
      await until(() => listening.test(out), 30_000, 'listening line');
      const port = Number(listening.exec(out)![1]);
      const userToken = await mintToken({ key: SECRET, userId: 'alice', room: ROOM, grants: ['join', 'publish', 'subscribe', 'record'] });
      const opsToken = await mintToken({ key: SECRET, userId: 'ops-bot', room: 'acme/*', grants: ['admin'] });
      const otherToken = await mintToken({ key: SECRET, userId: 'intruder', room: 'other/*', grants: ['admin'] });
      tokens.push(userToken, opsToken, otherToken);

      const alice = await RawClient.connect(`ws://127.0.0.1:${port}/ws`);
      await alice.hello(userToken);
      const aliceId = (await alice.join(ROOM)).participantId;
      // The first recording starts the media worker's room (a cold worker on a busy machine: seconds).
      expect(await alice.request({ op: 'record', room: ROOM, action: 'start' }, 20_000)).toMatchObject({ op: 'recording', recording: true });

      const admin = new AdminClient({ url: `http://127.0.0.1:${port}`, token: opsToken });
      expect((await admin.listRooms()).map((r) => r.room)).toEqual([ROOM]);
      await admin.muteParticipant(ROOM, { participantId: aliceId });
      await admin.updateRoomMetadata(ROOM, 'agenda');
      await expect(new AdminClient({ url: `http://127.0.0.1:${port}`, token: otherToken }).endRoom(ROOM)).rejects.toMatchObject({ status: 403 });

      // Room stats reach /metrics every 200 ms; with room labels off they are summed under room="_all".
      for (let i = 0; i < 50 && !/voxlink_room_participants\{room="_all"\} 1/.test(metrics); i++) {
        await new Promise((r) => setTimeout(r, 100));
        metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      }
      expect(await admin.endRoom(ROOM)).toBe(1);
      await until(() => out.includes('"room closed"'), 5000, 'room closed line');
      alice.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }

    expect(metrics).toMatch(/voxlink_room_participants\{room="_all"\} 1/);
    expect(metrics).toMatch(/voxlink_room_packets_in_total\{room="_all"\}/);
    expect(metrics).not.toContain('secret-board-meeting');

    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
    const audit = lines.filter((l) => l.msg === 'admin call').map(({ who, method, room, target, result }) => ({ who, method, room, target, result }));
    expect(audit).toEqual([
      { who: 'ops-bot', method: 'ListRooms', room: undefined, target: undefined, result: 'ok' },
      { who: 'ops-bot', method: 'MuteParticipant', room: ROOM, target: expect.any(String), result: 'ok' },
      { who: 'ops-bot', method: 'UpdateRoomMetadata', room: ROOM, target: undefined, result: 'ok' },
      { who: 'intruder', method: 'EndRoom', room: ROOM, target: undefined, result: 'FORBIDDEN' },
      { who: 'ops-bot', method: 'EndRoom', room: ROOM, target: undefined, result: 'ok' },
    ]);
    for (const l of lines.filter((l) => l.msg === 'admin call')) expect(l.level).toBe(30);
    const events = lines.filter((l) => l.component === 'events').map((l) => `${l.msg}${l.reason ? ` ${String(l.reason)}` : ''}`);
    expect(events).toEqual(['room created', 'participant joined', 'recording started', 'participant left room_ended', 'recording stopped room_closed', 'room closed']);
    expect(lines.find((l) => l.msg === 'participant joined')).toMatchObject({ roomId: ROOM, userId: 'alice', level: 30 });
    for (const token of tokens) expect(out).not.toContain(token);
    expect(out).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
  });
});
