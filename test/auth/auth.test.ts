import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantsForRoom, mintToken, verifyToken } from '../../src/auth/index.ts';
import { CloseCode } from '../../src/protocol/index.ts';
import { participant, presenceFrom, RawClient, SECRET, sleep, startTestServer, type TestServer } from '../signalling/harness.ts';

describe('token grants', () => {
  it('matches exact, prefix* and * patterns and adds up grants', () => {
    const identity = {
      rooms: [
        { room: 'team-*', grants: ['join' as const] },
        { room: 'team-a', grants: ['admin' as const] },
        { room: '*', grants: ['subscribe' as const] },
      ],
    };
    expect([...grantsForRoom(identity, 'team-a')].sort()).toEqual(['admin', 'join', 'subscribe']);
    expect([...grantsForRoom(identity, 'team-b')].sort()).toEqual(['join', 'subscribe']);
    expect([...grantsForRoom(identity, 'other')]).toEqual(['subscribe']);
  });

  it('verifies EdDSA tokens with the public key and rejects HS256 ones for it', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const token = await mintToken({ key: privateKey, userId: 'ed', room: 'r' });
    const identity = await verifyToken(token, { alg: 'EdDSA', key: publicKey });
    expect(identity).toMatchObject({ userId: 'ed', name: 'ed', rooms: [{ room: 'r', grants: ['join', 'publish', 'subscribe'] }] });
    const hs = await mintToken({ key: SECRET, userId: 'x' });
    await expect(verifyToken(hs, { alg: 'EdDSA', key: publicKey })).rejects.toMatchObject({ code: 'AUTH_FAILED' });
  });
});

describe('auth at the signalling server', () => {
  let t: TestServer;
  let observer: RawClient;

  beforeAll(async () => {
    t = await startTestServer();
    observer = await participant(t, 'observer', 'secure', { rooms: [{ room: 'secure', grants: ['join', 'subscribe'] }] });
  });
  afterAll(async () => {
    observer.close();
    await t.close();
  });

  async function rejectedAtHello(token: string, reason: RegExp): Promise<void> {
    const c = await RawClient.connect(t.wsUrl);
    c.send({ op: 'hello', token });
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.POLICY_VIOLATION);
    expect(closed.reason).toMatch(reason);
    expect(c.received.filter((m) => m.op === 'ready')).toEqual([]);
  }

  it('closes 1008 for a hello without a token', async () => {
    const c = await RawClient.connect(t.wsUrl);
    c.sendRaw({ op: 'hello' });
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.POLICY_VIOLATION);
    expect(closed.reason).toMatch(/token missing/);
  });
  it('closes 1008 for an empty token', () => rejectedAtHello('', /token missing/));
  it('closes 1008 for a malformed token', () => rejectedAtHello('not-a-jwt', /malformed/));
  it('closes 1008 for an expired token', async () =>
    rejectedAtHello(await mintToken({ key: SECRET, userId: 'late', expiresAtSec: Math.floor(Date.now() / 1000) - 60 }), /expired/));
  it('closes 1008 for a not-yet-valid token', async () =>
    rejectedAtHello(await mintToken({ key: SECRET, userId: 'early', notBeforeSec: 600 }), /not yet valid/));
  it('closes 1008 for a forged token (wrong secret)', async () =>
    rejectedAtHello(await mintToken({ key: 'some-other-secret-of-enough-length', userId: 'forger' }), /signature/));
  it('closes 1008 for a token without exp', async () => {
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({ rooms: [{ room: '*', grants: ['join'] }] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('forever')
      .sign(Buffer.from(SECRET));
    await rejectedAtHello(token, /exp|claim/);
  });
  it('closes 1008 for alg none', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ sub: 'none', rooms: [{ room: '*', grants: ['join'] }], exp: 9_999_999_999 })).toString('base64url');
    await rejectedAtHello(`${header}.${body}.`, /./);
  });

  it('closes 1008 when the token has no grant for the room asked', async () => {
    const c = await participant(t, 'intruder', undefined, { rooms: [{ room: 'other', grants: ['join', 'publish'] }] });
    c.send({ op: 'join', room: 'secure' });
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.POLICY_VIOLATION);
    expect(closed.reason).toMatch(/no join grant.*secure/);
  });

  it('closes 1008 when the grant for the room lacks join', async () => {
    const c = await participant(t, 'viewer', undefined, { rooms: [{ room: 'secure', grants: ['subscribe'] }] });
    c.send({ op: 'join', room: 'secure' });
    expect((await c.closed).code).toBe(CloseCode.POLICY_VIOLATION);
  });

  it('closes 1008 when the token expired while connected', async () => {
    const c = await participant(t, 'shortlived', undefined, { ttl: 2 });
    await sleep(2100);
    c.send({ op: 'join', room: 'secure' });
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.POLICY_VIOLATION);
    expect(closed.reason).toMatch(/expired/);
  });

  it('none of the rejected clients ever appeared in the room', async () => {
    const legit = await participant(t, 'legit', 'secure', { rooms: [{ room: 'secure', grants: ['join'] }] });
    await observer.waitOp('participant_joined', (m) => m.participant.userId === 'legit');
    const seen = new Set<string>();
    for (const m of observer.received) {
      if (m.op === 'participant_joined') seen.add(m.participant.userId);
      if (m.op === 'joined') for (const p of m.participants) seen.add(p.userId);
    }
    expect([...seen].sort()).toEqual(['legit', 'observer']);
    expect([...presenceFrom(observer, 'secure').values()].map((p) => p.userId).sort()).toEqual(['legit', 'observer']);
    expect(t.server.core.registry.snapshot('secure').map((p) => p.userId).sort()).toEqual(['legit', 'observer']);
    legit.close();
  });

  it('muting someone else needs admin; unmuting someone else is never allowed', async () => {
    const admin = await participant(t, 'admin', 'mod', { rooms: [{ room: 'mod', grants: ['join', 'admin'] }] });
    const user = await participant(t, 'plain', 'mod', { rooms: [{ room: 'mod', grants: ['join'] }] });
    const adminId = (admin.received.find((m) => m.op === 'joined') as { participantId: string }).participantId;
    const userId = (user.received.find((m) => m.op === 'joined') as { participantId: string }).participantId;
    expect(await user.request({ op: 'mute', room: 'mod', participantId: adminId })).toMatchObject({ op: 'error', code: 'FORBIDDEN' });
    expect(await admin.request({ op: 'mute', room: 'mod', participantId: userId })).toMatchObject({ op: 'mute_ack', muted: true });
    await user.waitOp('participant_updated', (m) => m.participant.participantId === userId && m.participant.muted);
    expect(await admin.request({ op: 'unmute', room: 'mod', participantId: userId })).toMatchObject({ op: 'error', code: 'FORBIDDEN' });
    expect(await admin.request({ op: 'mute', room: 'mod', participantId: 'nobody' })).toMatchObject({ op: 'error', code: 'PARTICIPANT_NOT_FOUND' });
    admin.close();
    user.close();
  });
});

describe('EdDSA deployment', () => {
  it('accepts tokens signed with the private key, closes 1008 for HS256 ones', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const t = await startTestServer({ auth: { hs256Secret: undefined, eddsaPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() } });
    try {
      const ok = await RawClient.connect(t.wsUrl);
      expect((await ok.hello(await mintToken({ key: privateKey, userId: 'ed', name: 'Ed' }))).name).toBe('Ed');
      ok.close();
      const bad = await RawClient.connect(t.wsUrl);
      bad.send({ op: 'hello', token: await mintToken({ key: SECRET, userId: 'hs' }) });
      expect((await bad.closed).code).toBe(CloseCode.POLICY_VIOLATION);
    } finally {
      await t.close();
    }
  });
});
