import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes } from '../../src/admin/routes.ts';
import { resolveAuthKeys } from '../../src/auth/keys.ts';
import { loadConfig } from '../../src/config.ts';
import { participant, SECRET, startTestServer, type RawClient, type TestServer } from '../signalling/harness.ts';

/** examples/admin-rooms.ts (docs/sdk.md "Admin API") run as a user runs it, against a real server. */

const root = new URL('../../', import.meta.url).pathname;
let t: TestServer;
let alice: RawClient;

beforeAll(async () => {
  const keys = resolveAuthKeys(loadConfig({ env: {}, overrides: { auth: { hs256Secret: SECRET } } }));
  t = await startTestServer({}, { keys, routes: [adminRoutes(keys)] });
  alice = await participant(t, 'alice', 'example/room', { name: 'Alice' });
});
afterAll(async () => {
  alice?.close();
  await t?.close();
});

describe('examples/admin-rooms.ts', () => {
  it('lists the room and its participant, sets metadata, ends the room', { timeout: 30_000 }, async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'examples/admin-rooms.ts', `http://127.0.0.1:${t.server.port}`, 'example/room', '--metadata', 'hello', '--end'],
      { cwd: root, env: { ...process.env, VOXLINK_SECRET: SECRET } },
    );
    expect(stdout.trim().split('\n')).toEqual(['room example/room (sfu): 1 in it', '  Alice (alice)', 'metadata of example/room: hello', 'ended example/room: 1 removed']);
    expect((await alice.waitOp('room_metadata')).metadata).toBe('hello');
    await alice.waitOp('participant_left', (m) => m.reason === 'room_ended');
  });
});
