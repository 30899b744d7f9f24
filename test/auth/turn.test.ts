import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.ts';
import { turnCredentials } from '../../src/turn/credentials.ts';
import { participant, startTestServer, type TestServer } from '../signalling/harness.ts';

const TURN_SECRET = 'coturn-static-auth-secret';

describe('TURN REST credentials', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ turn: { urls: ['turn:127.0.0.1:3478?transport=udp'], secret: TURN_SECRET, ttlSec: 600, stunUrls: ['stun:127.0.0.1:3478'] } });
  });
  afterAll(() => t.close());

  it('username is expiry:user and the credential is base64 HMAC-SHA1 of it (coturn use-auth-secret)', () => {
    const now = 1_700_000_000_000;
    const creds = turnCredentials(TURN_SECRET, 'alice', 600, ['turn:x'], now);
    expect(creds.username).toBe(`${now / 1000 + 600}:alice`);
    expect(creds.credential).toBe(createHmac('sha1', TURN_SECRET).update(creds.username).digest('base64'));
  });

  it('GET /turn with a valid bearer token returns credentials valid for ttl', async () => {
    const token = await t.token('bob');
    const res = await fetch(`${t.server.url}/turn`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { username: string; password: string; ttl: number; uris: string[]; iceServers: unknown[] };
    const [expiry, user] = body.username.split(':');
    expect(user).toBe('bob');
    expect(Number(expiry) - Date.now() / 1000).toBeGreaterThan(590);
    expect(body.password).toBe(createHmac('sha1', TURN_SECRET).update(body.username).digest('base64'));
    expect(body.uris).toEqual(['turn:127.0.0.1:3478?transport=udp']);
    expect(body.iceServers).toHaveLength(2);
  });

  it('GET /turn without or with a bad token is 401', async () => {
    expect((await fetch(`${t.server.url}/turn`)).status).toBe(401);
    const forged = await mintToken({ key: 'another-secret-another-secret', userId: 'x' });
    expect((await fetch(`${t.server.url}/turn`, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
  });

  it('ready carries the ICE servers with TURN credentials', async () => {
    const c = await participant(t, 'carol');
    const ready = c.received.find((m) => m.op === 'ready');
    expect(ready).toMatchObject({ iceServers: [{ urls: ['stun:127.0.0.1:3478'] }, { urls: ['turn:127.0.0.1:3478?transport=udp'] }] });
    c.close();
  });
});
