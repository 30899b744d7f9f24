import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.ts';
import { participant, RawClient, sleep, startTestServer, type TestServer } from './harness.ts';

async function metric(t: TestServer, line: string): Promise<number> {
  const text = await (await fetch(`${t.server.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

describe('limits', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      limits: { messagesPerSecond: 10, messageBurst: 10, rateCloseAfterDropped: 50, maxParticipantsPerRoom: 3, maxRoomsPerSession: 2, maxPayloadBytes: 2048 },
    });
  });
  afterAll(() => t.close());

  it('rate limit: one RATE_LIMITED error per burst, dropped messages, then close 4003; others unaffected', async () => {
    const before = await metric(t, 'voxlink_errors_total{code="RATE_LIMITED"}');
    const flooder = await participant(t, 'flooder');
    const calm = await participant(t, 'calm');
    for (let i = 0; i < 30; i++) flooder.send({ op: 'heartbeat', ack: 0 });
    await flooder.waitFor((m) => m.op === 'error' && m.code === 'RATE_LIMITED');
    await sleep(100);
    const acks = flooder.received.filter((m) => m.op === 'heartbeat_ack').length;
    expect(acks).toBeLessThanOrEqual(10); // burst 10, hello took one token
    expect(flooder.received.filter((m) => m.op === 'error' && m.code === 'RATE_LIMITED')).toHaveLength(1);
    expect(await metric(t, 'voxlink_errors_total{code="RATE_LIMITED"}')).toBe(before + 1);
    for (let i = 0; i < 100; i++) flooder.send({ op: 'heartbeat', ack: 0 });
    expect((await flooder.closed).code).toBe(CloseCode.RATE_LIMITED);
    expect((await calm.request({ op: 'heartbeat', ack: 0 })).op).toBe('heartbeat_ack');
    calm.close();
  });

  it('max participants per room: ROOM_FULL, and the room keeps exactly the first three', async () => {
    const members = [await participant(t, 'm1', 'small'), await participant(t, 'm2', 'small'), await participant(t, 'm3', 'small')];
    const late = await participant(t, 'm4');
    expect(await late.request({ op: 'join', room: 'small' })).toMatchObject({ op: 'error', code: 'ROOM_FULL', room: 'small' });
    expect(t.server.core.registry.snapshot('small').map((p) => p.userId).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const c of [...members, late]) c.close();
  });

  it('max rooms per session: TOO_MANY_ROOMS', async () => {
    const c = await participant(t, 'hopper', 'h1');
    await c.join('h2');
    expect(await c.request({ op: 'join', room: 'h3' })).toMatchObject({ op: 'error', code: 'TOO_MANY_ROOMS' });
    expect(await c.request({ op: 'join', room: 'h1' })).toMatchObject({ op: 'error', code: 'ALREADY_IN_ROOM' });
    c.close();
  });

  it('max sessions: a hello beyond the limit is closed with 1013', async () => {
    const small = await startTestServer({ limits: { maxSessions: 2 } });
    try {
      const a = await participant(small, 's1');
      const b = await participant(small, 's2');
      const c = await RawClient.connect(small.wsUrl);
      c.send({ op: 'hello', token: await small.token('s3') });
      expect((await c.closed).code).toBe(CloseCode.TRY_AGAIN_LATER);
      a.close();
      b.close();
    } finally {
      await small.close();
    }
  });

  it('max payload: close 1009', async () => {
    const c = await participant(t, 'sender');
    c.sendBytes(new Uint8Array(3000));
    expect((await c.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
  });
});

describe('backpressure', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000, maxBackpressureBytes: 64 * 1024 } });
  });
  afterAll(() => t.close());

  it('a client that stops reading is closed with 4002 instead of growing server memory', { timeout: 30_000 }, async () => {
    const name = 'n'.repeat(120);
    const crowd = await Promise.all(Array.from({ length: 60 }, (_, i) => participant(t, `c${i}`, 'crowd', { name })));
    const slow = await participant(t, 'slow', 'crowd', { name });
    // Stop reading: kernel buffers fill, then uWS's user-space buffer grows past the limit.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const closesBefore = await metric(t, 'voxlink_closes_total{code="4002"}');
    const deadline = Date.now() + 20_000;
    // Each leave/join cycle makes the server send a ~15 KB `joined` snapshot. The server decides
    // to close while the client is paused; the client sees the close frame once it reads again.
    while (Date.now() < deadline && (await metric(t, 'voxlink_closes_total{code="4002"}')) === closesBefore) {
      for (let i = 0; i < 50; i++) {
        slow.send({ op: 'leave', room: 'crowd' });
        slow.send({ op: 'join', room: 'crowd' });
      }
      await sleep(20);
    }
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(CloseCode.BACKPRESSURE);
    // The server is fine and the crowd still served.
    expect((await crowd[0].request({ op: 'heartbeat', ack: 0 })).op).toBe('heartbeat_ack');
    for (const c of crowd) c.close();
  });
});

describe('liveness', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ signalling: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1200, helloTimeoutMs: 400, resumeGraceMs: 2000 } });
  });
  afterAll(() => t.close());

  it('a connection that never says hello is closed with 4004', async () => {
    const c = await RawClient.connect(t.wsUrl);
    expect((await c.closed).code).toBe(CloseCode.HELLO_TIMEOUT);
  });

  it('missed heartbeats: zombie closed with 4000; a heartbeating client stays', async () => {
    const zombie = await participant(t, 'zombie', 'live');
    const alive = await participant(t, 'alive', 'live');
    const timer = setInterval(() => alive.send({ op: 'heartbeat', ack: alive.lastSeq() }), 150);
    const closed = await zombie.closed;
    expect(closed.code).toBe(CloseCode.HEARTBEAT_TIMEOUT);
    await sleep(300);
    clearInterval(timer);
    expect(alive.ws.readyState).toBe(alive.ws.OPEN);
    // The zombie's session is in its grace period: still present in the room.
    expect(t.server.core.registry.snapshot('live').map((p) => p.userId).sort()).toEqual(['alive', 'zombie']);
    alive.close();
  });
});
