import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes } from '../../src/admin/routes.ts';
import { AdminApiError, AdminClient } from '../../src/client/admin.ts';
import { createNodeClient } from '../../src/client/node.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import { resolveAuthKeys } from '../../src/auth/keys.ts';
import { loadConfig } from '../../src/config.ts';
import type { ServerEventName } from '../../src/signalling/observer.ts';
import { participant, presenceFrom, RawClient, SECRET, sleep, startTestServer, until, type TestServer } from '../signalling/harness.ts';

/**
 * The admin API (docs/api.md) against a real server, raw protocol clients and the SDK: auth
 * (401/403, room-scoped tokens), input errors, and each method's effect on the room as the
 * participants see it. The typed client (voxlink/admin) drives most calls.
 */

let t: TestServer;
let base: string;
const events: string[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  const config = loadConfig({ env: {}, overrides: { auth: { hs256Secret: SECRET } } });
  t = await startTestServer({}, { routes: [adminRoutes(resolveAuthKeys(config))] });
  base = `http://127.0.0.1:${t.server.port}`;
  for (const name of ['participant_left', 'room_closed'] as ServerEventName[]) {
    t.server.observer.on(name, (e) => events.push(`${name} ${JSON.stringify(e)}`));
  }
});
afterAll(async () => {
  for (const c of clients) c.close();
  await t?.close();
});

const adminToken = (room = '*', grants: ('admin' | 'join')[] = ['admin']): Promise<string> => mintToken({ key: SECRET, userId: 'ops', room, grants });

async function member(userId: string, room: string): Promise<RawClient> {
  const c = await participant(t, userId, room);
  clients.push(c);
  return c;
}

async function post(method: string, body: unknown, token?: string, raw?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/admin/v1/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: raw ?? JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('admin API: auth and input', () => {
  it('401 without a token or with a forged one, 403 without the admin grant', async () => {
    expect(await post('ListRooms', {})).toMatchObject({ status: 401, json: { error: 'AUTH_FAILED' } });
    const forged = await mintToken({ key: 'another-secret-0123456789-abcdefghijkl', userId: 'x', room: '*', grants: ['admin'] });
    expect((await post('ListRooms', {}, forged)).status).toBe(401);
    const noAdmin = await mintToken({ key: SECRET, userId: 'u', room: '*', grants: ['join', 'publish', 'subscribe', 'record'] });
    expect(await post('ListRooms', {}, noAdmin)).toMatchObject({ status: 403, json: { error: 'FORBIDDEN' } });
    expect(await post('EndRoom', { room: 'a' }, noAdmin)).toMatchObject({ status: 403, json: { error: 'FORBIDDEN' } });
  });

  it('a room-scoped token sees and acts on its rooms only', async () => {
    await member('a1', 'team-a/standup');
    await member('b1', 'team-b/standup');
    const scoped = await adminToken('team-a/*');
    const { status, json } = await post('ListRooms', {}, scoped);
    expect(status).toBe(200);
    expect((json.rooms as { room: string }[]).map((r) => r.room)).toEqual(['team-a/standup']);
    const all = await post('ListRooms', {}, await adminToken('*'));
    expect((all.json.rooms as { room: string }[]).map((r) => r.room)).toEqual(expect.arrayContaining(['team-a/standup', 'team-b/standup']));
    // Acting on another team's room: 403 whether or not it exists (no probing).
    expect(await post('ListParticipants', { room: 'team-b/standup' }, scoped)).toMatchObject({ status: 403, json: { error: 'FORBIDDEN' } });
    expect(await post('EndRoom', { room: 'team-b/nothing' }, scoped)).toMatchObject({ status: 403, json: { error: 'FORBIDDEN' } });
    expect(await post('EndRoom', { room: 'team-b/standup' }, scoped)).toMatchObject({ status: 403 });
    expect(t.server.core.registry.size('team-b/standup')).toBe(1);
    const mine = await post('ListParticipants', { room: 'team-a/standup' }, scoped);
    expect(mine).toMatchObject({ status: 200, json: { room: 'team-a/standup', participants: [{ userId: 'a1', name: 'User a1' }] } });
  });

  it('bad input is a clear 4xx JSON error and the server goes on', async () => {
    const token = await adminToken();
    expect(await post('Nope', {}, token)).toMatchObject({ status: 404, json: { error: 'UNKNOWN_METHOD' } });
    expect(await post('EndRoom', undefined, token, '{not json')).toMatchObject({ status: 400, json: { error: 'INVALID_REQUEST', message: 'the body is not valid JSON' } });
    const missing = await post('EndRoom', {}, token);
    expect(missing).toMatchObject({ status: 400, json: { error: 'INVALID_REQUEST' } });
    expect(missing.json.message).toMatch(/^EndRoom: room: /);
    expect((await post('EndRoom', { room: 'bad room id!' }, token)).json.message).toMatch(/invalid room id/);
    expect((await post('ListRooms', { extra: 1 }, token)).status).toBe(400);
    expect((await post('RemoveParticipant', { room: 'r', participantId: 'p', userId: 'u' }, token)).status).toBe(400);
    expect((await post('UpdateRoomMetadata', { room: 'r', metadata: 'é'.repeat(2049) }, token)).json).toMatchObject({
      error: 'INVALID_REQUEST',
      message: expect.stringMatching(/4096 bytes/),
    });
    const big = await post('ListRooms', undefined, token, JSON.stringify({ pad: 'x'.repeat(20_000) }));
    expect(big).toMatchObject({ status: 413, json: { error: 'BODY_TOO_LARGE' } });
    const get = await fetch(`${base}/admin/v1/ListRooms`, { headers: { authorization: `Bearer ${token}` } });
    expect(get.status).toBe(405);
    expect(await post('ListParticipants', { room: 'nobody-here' }, token)).toMatchObject({ status: 404, json: { error: 'ROOM_NOT_FOUND' } });
    await member('n1', 'notfound');
    expect(await post('MuteParticipant', { room: 'notfound', participantId: 'zzz' }, token)).toMatchObject({ status: 404, json: { error: 'PARTICIPANT_NOT_FOUND' } });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe('admin API: operations (typed client)', () => {
  let admin: AdminClient;
  beforeAll(async () => {
    admin = new AdminClient({ url: base, token: await adminToken() });
  });

  it('the typed client turns refusals into AdminApiError with codes', async () => {
    const noToken = new AdminClient({ url: base, token: 'x.y.z' });
    await expect(noToken.listRooms()).rejects.toMatchObject({ name: 'VoxError', code: 'AUTH_FAILED', status: 401, serverCode: 'AUTH_FAILED' });
    const err = await admin.listParticipants('no-such-room').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminApiError);
    expect(err).toMatchObject({ code: 'CLIENT_REQUEST_FAILED', status: 404, serverCode: 'ROOM_NOT_FOUND', method: 'ListParticipants' });
    const nowhere = new AdminClient({ url: 'http://127.0.0.1:9', token: 'x' });
    await expect(nowhere.listRooms()).rejects.toMatchObject({ code: 'CLIENT_CONNECT_FAILED', status: 0 });
  });

  it('RemoveParticipant: the room and the participant hear `removed`; it is out, its session goes on', async () => {
    const alice = await member('alice', 'ops/remove');
    const bob = await member('bob', 'ops/remove');
    const bobId = (await bob.waitOp('joined')).participantId;
    events.length = 0;
    expect(await admin.removeParticipant('ops/remove', { userId: 'bob' })).toBe(bobId);
    await alice.waitOp('participant_left', (m) => m.participantId === bobId && m.reason === 'removed');
    await bob.waitOp('participant_left', (m) => m.participantId === bobId && m.reason === 'removed');
    expect([...presenceFrom(alice, 'ops/remove').values()].map((p) => p.userId)).toEqual(['alice']);
    expect((await admin.listParticipants('ops/remove')).map((p) => p.userId)).toEqual(['alice']);
    expect(events.some((e) => e.includes('"reason":"removed"') && e.includes('"userId":"bob"'))).toBe(true);
    // Still connected and able to join again (removal is not a ban: the token decides that).
    expect((await bob.request({ op: 'heartbeat', ack: bob.lastSeq() })).op).toBe('heartbeat_ack');
    await expect(admin.removeParticipant('ops/remove', { participantId: bobId })).rejects.toMatchObject({ serverCode: 'PARTICIPANT_NOT_FOUND' });
  });

  it('MuteParticipant: presence says muted, to everyone including the participant', async () => {
    const carol = await member('carol', 'ops/mute');
    const dave = await member('dave', 'ops/mute');
    const daveId = (await dave.waitOp('joined')).participantId;
    const muted = await admin.muteParticipant('ops/mute', { participantId: daveId });
    expect(muted).toMatchObject({ participantId: daveId, userId: 'dave', muted: true });
    await carol.waitOp('participant_updated', (m) => m.participant.participantId === daveId && m.participant.muted);
    await dave.waitOp('participant_updated', (m) => m.participant.participantId === daveId && m.participant.muted);
    expect((await admin.listParticipants('ops/mute')).find((p) => p.userId === 'dave')?.muted).toBe(true);
  });

  it('UpdateRoomMetadata: present participants get room_metadata, joiners joined.metadata, the SDK keeps it', async () => {
    const erin = await member('erin', 'ops/meta');
    const sdk = createNodeClient();
    await sdk.connect(t.wsUrl, await t.token('frank'));
    await sdk.join('ops/meta');
    const seen: string[] = [];
    sdk.on('room_metadata', (e) => seen.push(e.metadata));
    const metadata = JSON.stringify({ topic: 'Q3 planning', ünïcode: '✓' });
    const summary = await admin.updateRoomMetadata('ops/meta', metadata);
    expect(summary).toMatchObject({ room: 'ops/meta', participants: 2, metadata, recording: null, mode: 'sfu' });
    expect((await erin.waitOp('room_metadata')).metadata).toBe(metadata);
    await until(() => seen.length === 1, 5000, 'SDK room_metadata event');
    expect(seen[0]).toBe(metadata);
    expect(sdk.room('ops/meta')?.metadata).toBe(metadata);
    const late = await member('late', 'ops/meta');
    expect((await late.waitOp('joined')).metadata).toBe(metadata);
    expect((await admin.listRooms()).find((r) => r.room === 'ops/meta')?.metadata).toBe(metadata);
    // '' clears it; joiners then see none.
    await admin.updateRoomMetadata('ops/meta', '');
    await until(() => sdk.room('ops/meta')?.metadata === '', 5000, 'cleared');
    const later = await member('later', 'ops/meta');
    expect((await later.waitOp('joined')).metadata).toBeUndefined();
    await expect(admin.updateRoomMetadata('ops/no-room', 'x')).rejects.toMatchObject({ status: 404, serverCode: 'ROOM_NOT_FOUND' });
    await sdk.disconnect();
  });

  it('EndRoom: everyone is out with `room_ended` (the SDK drops the room), the room closes, its metadata is gone', async () => {
    const gina = await member('gina', 'ops/end');
    const sdk = createNodeClient();
    await sdk.connect(t.wsUrl, await t.token('hank'));
    await sdk.join('ops/end');
    const left: unknown[] = [];
    sdk.on('room', (e) => {
      if (e.reason === 'left') left.push(e.leftReason);
    });
    await admin.updateRoomMetadata('ops/end', 'old');
    events.length = 0;
    expect(await admin.endRoom('ops/end')).toBe(2);
    const ginaId = (await gina.waitOp('joined')).participantId;
    await gina.waitOp('participant_left', (m) => m.participantId === ginaId && m.reason === 'room_ended');
    await until(() => left.length === 1, 5000, 'SDK room left');
    expect(left).toEqual(['room_ended']);
    expect(sdk.room('ops/end')).toBeUndefined();
    expect(t.server.core.registry.get('ops/end')).toBeUndefined();
    expect(events.filter((e) => e.startsWith('participant_left')).every((e) => e.includes('room_ended'))).toBe(true);
    expect(events.filter((e) => e.startsWith('room_closed'))).toHaveLength(1);
    await expect(admin.endRoom('ops/end')).rejects.toMatchObject({ status: 404 });
    // A new room of the same name starts without the old metadata.
    const again = await member('ivy', 'ops/end');
    expect((await again.waitOp('joined')).metadata).toBeUndefined();
    await sdk.disconnect();
    await sleep(10);
  });
});
