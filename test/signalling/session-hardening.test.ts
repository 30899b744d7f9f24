import { connect as tcpConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/tokens.ts';
import { createNodeClient, SignallingError } from '../../src/client/node.ts';
import { CloseCode } from '../../src/protocol/index.ts';
import { participant, RawClient, SECRET, sleep, startTestServer, until, type TestServer } from './harness.ts';

/**
 * Session hardening (issue 14): token expiry for the session's whole life, `refresh`, the rate
 * limit across resume, 1009 for every oversized frame up to the frame ceiling, idle and half-open
 * connections, the per-IP connection cap.
 */

const nowSec = (): number => Math.floor(Date.now() / 1000);

function shortToken(userId: string, lifetimeSec: number): Promise<string> {
  return mintToken({ key: SECRET, userId, room: '*', grants: ['join', 'publish', 'subscribe'], expiresAtSec: nowSec() + lifetimeSec });
}

describe('token expiry and refresh', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ auth: { clockToleranceSec: 0 }, signalling: { resumeGraceMs: 10_000 } });
  });
  afterAll(() => t.close());

  it('a session ends when its token expires: close 1008 "token expired", the room sees it leave', { timeout: 15_000 }, async () => {
    const watcher = await participant(t, 'watcher', 'exp-room');
    const c = await RawClient.connect(t.wsUrl);
    const ready = await c.hello(await shortToken('shortlived', 2));
    expect(ready.tokenExpiresAt).toBeGreaterThan(Date.now());
    await c.join('exp-room');
    const beat = setInterval(() => c.send({ op: 'heartbeat', ack: c.lastSeq() }), 200);
    try {
      const closed = await c.closed;
      expect(closed).toEqual({ code: CloseCode.POLICY_VIOLATION, reason: 'token expired' });
      expect(Date.now()).toBeGreaterThanOrEqual(ready.tokenExpiresAt!);
    } finally {
      clearInterval(beat);
    }
    await watcher.waitFor((m) => m.op === 'participant_left' && m.room === 'exp-room');
    expect(t.server.core.registry.snapshot('exp-room').map((p) => p.userId)).toEqual(['watcher']);
    watcher.close();
  });

  it('refresh before expiry keeps the session past the first token; a bad or foreign token is TOKEN_REJECTED', { timeout: 15_000 }, async () => {
    const c = await RawClient.connect(t.wsUrl);
    await c.hello(await shortToken('refresher', 2));
    await c.join('refresh-room');
    expect(await c.request({ op: 'refresh', token: 'not-a-jwt' })).toMatchObject({ op: 'error', code: 'TOKEN_REJECTED', about: 'refresh' });
    expect(await c.request({ op: 'refresh', token: await shortToken('someone-else', 60) })).toMatchObject({ op: 'error', code: 'TOKEN_REJECTED', message: 'the new token is for another user' });
    expect(await c.request({ op: 'refresh', token: await shortToken('refresher', -10) })).toMatchObject({ op: 'error', code: 'TOKEN_REJECTED', message: 'token expired' });
    const reply = await c.request({ op: 'refresh', token: await shortToken('refresher', 60) });
    expect(reply.op).toBe('refreshed');
    expect(reply.op === 'refreshed' && reply.tokenExpiresAt).toBeGreaterThan(Date.now() + 50_000);
    const beat = setInterval(() => c.send({ op: 'heartbeat', ack: c.lastSeq() }), 200);
    await sleep(3500); // past the first token's expiry
    clearInterval(beat);
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect((await c.request({ op: 'heartbeat', ack: 0 })).op).toBe('heartbeat_ack');
    expect(t.server.core.registry.snapshot('refresh-room').map((p) => p.userId)).toEqual(['refresher']);
    c.close();
  });

  it('resume after the token expired during the grace period: invalid_session token_expired', { timeout: 15_000 }, async () => {
    const c = await RawClient.connect(t.wsUrl);
    const ready = await c.hello(await shortToken('graceful', 1));
    await c.join('grace-room');
    c.drop();
    await sleep(2100);
    const again = await RawClient.connect(t.wsUrl);
    expect(await again.request({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: 0 })).toMatchObject({
      op: 'invalid_session',
      reason: 'token_expired',
    });
    expect(t.server.core.registry.snapshot('grace-room')).toEqual([]);
    again.close();
  });

  it('SDK: an expired session surfaces as a terminal error "token expired"', { timeout: 15_000 }, async () => {
    const client = createNodeClient({ requestTimeoutMs: 3000 });
    const errors: SignallingError[] = [];
    client.on('error', (e) => errors.push(e as SignallingError));
    const session = await client.connect(t.wsUrl, await shortToken('sdk-expiring', 2));
    expect(session.tokenExpiresAt).toBeGreaterThan(Date.now());
    await until(() => client.state === 'failed', 8000, 'the SDK to give up on the expired session');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'CLIENT_TERMINAL_CLOSE', closeCode: 1008, closeReason: 'token expired', sentenceKey: 'auth:expired' });
  });

  it('SDK: refreshToken(token) extends the session; with a token function it refreshes by itself', { timeout: 20_000 }, async () => {
    const manual = createNodeClient();
    await manual.connect(t.wsUrl, await shortToken('sdk-manual', 2));
    await manual.join('sdk-refresh');
    const until60 = await manual.refreshToken(await shortToken('sdk-manual', 60));
    expect(manual.session?.tokenExpiresAt).toBe(until60);
    await expect(manual.refreshToken(await shortToken('intruder', 60))).rejects.toMatchObject({ serverCode: 'TOKEN_REJECTED' });

    let minted = 0;
    const auto = createNodeClient();
    await auto.connect(t.wsUrl, () => {
      minted++;
      return shortToken('sdk-auto', 3);
    });
    await auto.join('sdk-refresh');
    await sleep(4500); // beyond the first token (3 s): the SDK refreshed at ~2.4 s
    expect(minted).toBeGreaterThanOrEqual(2);
    expect(auto.state).toBe('connected');
    expect(manual.state).toBe('connected');
    expect(t.server.core.registry.snapshot('sdk-refresh').map((p) => p.userId).sort()).toEqual(['sdk-auto', 'sdk-manual']);
    await auto.disconnect();
    await manual.disconnect();
  });
});

describe('rate limit across resume', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { messagesPerSecond: 5, messageBurst: 10, rateCloseAfterDropped: 20 }, signalling: { resumeGraceMs: 10_000 } });
  });
  afterAll(() => t.close());

  it('rate-limit state survives resume: a flooder closed with 4003 does not come back to a full bucket', async () => {
    const c = await RawClient.connect(t.wsUrl);
    const ready = await c.hello(await t.token('flooder'));
    for (let i = 0; i < 60; i++) c.send({ op: 'heartbeat', ack: 0 });
    expect((await c.closed).code).toBe(CloseCode.RATE_LIMITED);

    const back = await RawClient.connect(t.wsUrl);
    expect((await back.request({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: c.lastSeq() })).op).toBe('resumed');
    for (let i = 0; i < 30; i++) back.send({ op: 'heartbeat', ack: 0 });
    await sleep(300);
    // A fresh bucket would answer 10 of these (the burst); the session's bucket is nearly empty
    // (5/s refill for the few hundred ms since the close).
    const acks = back.received.filter((m) => m.op === 'heartbeat_ack').length;
    expect(acks).toBeLessThanOrEqual(3);
    expect((await back.closed).code).toBe(CloseCode.RATE_LIMITED);
  });

  it('a well-behaved client keeps its allowance across resume', async () => {
    const c = await RawClient.connect(t.wsUrl);
    const ready = await c.hello(await t.token('polite'));
    c.drop();
    await sleep(100);
    const back = await RawClient.connect(t.wsUrl);
    expect((await back.request({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: 0 })).op).toBe('resumed');
    for (let i = 0; i < 5; i++) expect((await back.request({ op: 'heartbeat', ack: 0 })).op).toBe('heartbeat_ack');
    back.close();
  });
});

describe('oversized frames', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { maxPayloadBytes: 2048, frameCeilingBytes: 1024 * 1024 } });
  });
  afterAll(() => t.close());

  for (const size of [2049, 4097, 20_000, 1024 * 1024]) {
    it(`a ${size}-byte frame (limit 2048) is answered with close 1009`, async () => {
      const c = await participant(t, `big-${size}`);
      c.sendBytes(new Uint8Array(size));
      expect(await c.closed).toEqual({ code: CloseCode.MESSAGE_TOO_BIG, reason: 'frame larger than 2048 bytes' });
    });
  }

  it('above the frame ceiling uWS cuts the connection; the server carries on', async () => {
    const c = await participant(t, 'huge');
    c.sendBytes(new Uint8Array(1024 * 1024 + 1));
    expect((await c.closed).code).toBe(1006);
    const after = await participant(t, 'after-huge');
    expect((await after.request({ op: 'heartbeat', ack: 0 })).op).toBe('heartbeat_ack');
    after.close();
  });
});

/** A raw TCP client that completes the WebSocket handshake and then never reads nor writes again. */
async function halfOpenSocket(port: number, send?: Buffer): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  socket.write(
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: voxlink.v1\r\n\r\n',
  );
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  if (send) socket.write(send);
  socket.pause(); // from now on: silent, reads nothing, answers no ping and no close frame
  return socket;
}

/** A client → server WebSocket binary frame (RFC 6455 §5.2: masked; 7-bit or 16-bit length). */
function maskedFrame(payload: Uint8Array): Buffer {
  const extended = payload.length >= 126;
  const head = extended ? 4 : 2;
  const frame = Buffer.alloc(head + 4 + payload.length);
  frame[0] = 0x82;
  frame[1] = 0x80 | (extended ? 126 : payload.length);
  if (extended) frame.writeUInt16BE(payload.length, 2);
  frame.writeUInt32BE(0x01020304, head);
  for (let i = 0; i < payload.length; i++) frame[head + 4 + i] = payload[i] ^ frame[head + (i % 4)];
  return frame;
}

describe('idle and half-open connections', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ signalling: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1000, helloTimeoutMs: 500, resumeGraceMs: 500 } });
  });
  afterAll(() => t.close());

  it('a silent socket after the handshake (no hello, no close frame back) is gone from the server', { timeout: 30_000 }, async () => {
    const before = t.server.core.stats().connections;
    const socket = await halfOpenSocket(t.server.port);
    await until(() => t.server.core.stats().connections === before + 1, 2000, 'the connection to open');
    await until(() => t.server.core.stats().connections === before, 25_000, 'the half-open connection to be reaped');
    socket.destroy();
  });

  it('a session whose peer went silent mid-call (half-open) times out and its place is freed', { timeout: 30_000 }, async () => {
    const { encodeMessage } = await import('../../src/protocol/codec.ts');
    const watcher = await participant(t, 'watcher2', 'silent-room');
    const beat = setInterval(() => watcher.send({ op: 'heartbeat', ack: watcher.lastSeq() }), 150);
    try {
      const hello = encodeMessage({ op: 'hello', token: await t.token('ghost') });
      const join = encodeMessage({ op: 'join', room: 'silent-room' });
      const socket = await halfOpenSocket(t.server.port, Buffer.concat([maskedFrame(hello), maskedFrame(join)]));
      await watcher.waitFor((m) => m.op === 'participant_joined' && m.participant.userId === 'ghost');
      // Heartbeat timeout (1 s) closes it, the grace period (0.5 s) ends the session.
      await watcher.waitFor((m) => m.op === 'participant_left', 10_000);
      await until(() => !t.server.core.registry.snapshot('silent-room').some((p) => p.userId === 'ghost'), 5000, 'ghost to leave');
      await until(() => t.server.core.stats().connections === 1, 25_000, 'the dead socket to be released');
      socket.destroy();
    } finally {
      clearInterval(beat);
    }
    watcher.close();
  });

  it('an HTTP request that never finishes its headers (slowloris) is dropped by the server', { timeout: 30_000 }, async () => {
    const socket = tcpConnect(t.server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const started = Date.now();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(Date.now() - started).toBeLessThan(25_000);
  });
});

describe('connections per IP', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { maxConnectionsPerIp: 3 } });
  });
  afterAll(() => t.close());

  it('the cap refuses the upgrade with 429; a closed connection frees its place', async () => {
    const open = await Promise.all([1, 2, 3].map(() => RawClient.connect(t.wsUrl)));
    await expect(RawClient.connect(t.wsUrl)).rejects.toThrow(/429/);
    const text = await (await fetch(`${t.server.url}/metrics`)).text();
    expect(text).toMatch(/voxlink_upgrades_rejected_total\{reason="per_ip"\} [1-9]/);
    open[0].close();
    await open[0].closed;
    await until(() => t.server.core.stats().connections === 2, 2000, 'the close to be seen');
    const again = await RawClient.connect(t.wsUrl);
    expect((await again.hello(await t.token('fourth'))).op).toBe('ready');
    for (const c of [again, ...open.slice(1)]) c.close();
  });
});
