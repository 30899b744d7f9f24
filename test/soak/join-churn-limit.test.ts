import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { ServerMessage } from '../../src/protocol/index.ts';
import { participant, presenceFrom, RawClient, startTestServer, until, type TestServer } from '../signalling/harness.ts';

/**
 * The join rate limit (src/signalling/join-limit.ts) against a real server with real WebSocket
 * clients: a client that joins and leaves in a tight loop is refused with JOIN_RATE_LIMITED after
 * its burst, the refused join changes nothing, a well-behaved client in the same room goes on
 * seeing presence and joining, and dropping the connection and resuming does not refill the bucket.
 */

const BURST = 5;

type ErrorMessage = Extract<ServerMessage, { op: 'error' }>;

async function metric(t: TestServer, line: string): Promise<number> {
  const text = await (await fetch(`${t.server.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

/** join/leave until the first refused join; returns how many joins went through and the refusal. */
async function churn(c: RawClient, room: string, max: number): Promise<{ joins: number; refusal: ErrorMessage | null }> {
  let joins = 0;
  for (let i = 0; i < max; i++) {
    const reply = await c.request({ op: 'join', room });
    if (reply.op === 'error') return { joins, refusal: reply };
    expect(reply.op).toBe('joined');
    joins++;
    expect(await c.request({ op: 'leave', room })).toMatchObject({ op: 'left', room });
  }
  return { joins, refusal: null };
}

describe('join churn limit', () => {
  let t: TestServer;
  beforeAll(async () => {
    // One token per 10 s: nothing refills noticeably while a test runs, even on a slow box.
    t = await startTestServer({ limits: { joinsPerMinute: 6, joinBurst: BURST } });
  });
  afterAll(() => t.close());

  it('defaults to 60 joins a minute with a burst of 20, and reads VOXLINK_JOINS_PER_MINUTE / VOXLINK_JOIN_BURST', () => {
    const defaults = loadConfig({ env: {} }).limits;
    expect([defaults.joinsPerMinute, defaults.joinBurst]).toEqual([60, 20]);
    const fromEnv = loadConfig({ env: { VOXLINK_JOINS_PER_MINUTE: '30', VOXLINK_JOIN_BURST: '4' } }).limits;
    expect([fromEnv.joinsPerMinute, fromEnv.joinBurst]).toEqual([30, 4]);
    expect(() => loadConfig({ env: { VOXLINK_JOIN_BURST: '0' } })).toThrow(/joinBurst/);
  });

  it('a join/leave loop is refused after the burst; a well-behaved client in the room is unaffected; resume keeps the limit', async () => {
    const room = 'churn';
    const before = await metric(t, 'voxlink_errors_total{code="JOIN_RATE_LIMITED"}');
    const calm = await participant(t, 'calm', room);
    const churner = await participant(t, 'churner');
    const ready = churner.received.find((m): m is Extract<ServerMessage, { op: 'ready' }> => m.op === 'ready')!;

    const { joins, refusal } = await churn(churner, room, 50);
    expect(joins).toBe(BURST);
    expect(refusal).toMatchObject({ op: 'error', code: 'JOIN_RATE_LIMITED', room, about: 'join' });
    // One token per 10 s: the next join is between 0 and 10 s away.
    expect(refusal!.retryAfterMs).toBeGreaterThan(0);
    expect(refusal!.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(await metric(t, 'voxlink_errors_total{code="JOIN_RATE_LIMITED"}')).toBe(before + 1);

    // The refused join changed nothing: the room holds the calm client only, who saw each of the
    // churner's joins and leaves and nothing of the refused one.
    expect(t.server.core.registry.snapshot(room).map((p) => p.userId)).toEqual(['calm']);
    await until(() => calm.received.filter((m) => m.op === 'participant_left' && m.room === room).length === BURST, 5000, 'the churner’s leaves');
    expect(calm.received.filter((m) => m.op === 'participant_joined' && m.room === room)).toHaveLength(BURST);
    expect([...presenceFrom(calm, room).values()].map((p) => p.userId)).toEqual(['calm']);

    // The well-behaved client keeps its own bucket and keeps seeing presence.
    await calm.join('elsewhere');
    const newcomer = await participant(t, 'newcomer', room);
    await calm.waitFor((m) => m.op === 'participant_joined' && m.room === room && m.participant.userId === 'newcomer');
    expect([...presenceFrom(calm, room).values()].map((p) => p.userId).sort()).toEqual(['calm', 'newcomer']);
    expect(calm.received.filter((m) => m.op === 'error')).toEqual([]);

    // Drop without a close frame and resume on a new connection: still limited.
    churner.drop();
    await churner.closed;
    const resumed = await RawClient.connect(t.wsUrl);
    resumed.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: churner.lastSeq() });
    await resumed.waitOp('resumed');
    const again = await resumed.request({ op: 'join', room });
    expect(again).toMatchObject({ op: 'error', code: 'JOIN_RATE_LIMITED', room });
    expect((again as ErrorMessage).retryAfterMs).toBeLessThanOrEqual(refusal!.retryAfterMs!);
    expect(t.server.core.registry.snapshot(room).map((p) => p.userId).sort()).toEqual(['calm', 'newcomer']);
    // The session itself is fine: other ops still work.
    expect((await resumed.request({ op: 'heartbeat', ack: resumed.lastSeq() })).op).toBe('heartbeat_ack');

    for (const c of [calm, newcomer, resumed]) c.close();
  });

  it('the bucket refills: a join after retryAfterMs is accepted', async () => {
    const fast = await startTestServer({ limits: { joinsPerMinute: 600, joinBurst: 2 } });
    try {
      const c = await participant(fast, 'refill');
      // Sent together, so the 100 ms refill cannot keep up even on a slow box.
      const replies = await Promise.all(['a', 'b', 'c', 'd'].map((room) => c.request({ op: 'join', room })));
      const refusals = replies.filter((m): m is ErrorMessage => m.op === 'error');
      expect(replies.filter((m) => m.op === 'joined').length).toBeGreaterThanOrEqual(2);
      expect(refusals.length).toBeGreaterThanOrEqual(1);
      const refusal = refusals[0];
      expect(refusal).toMatchObject({ code: 'JOIN_RATE_LIMITED' });
      // 600 a minute: one token per 100 ms.
      expect(refusal.retryAfterMs).toBeLessThanOrEqual(100);
      await new Promise((r) => setTimeout(r, refusal.retryAfterMs! + 20));
      expect(await c.request({ op: 'join', room: 'e' })).toMatchObject({ op: 'joined', room: 'e' });
      c.close();
    } finally {
      await fast.close();
    }
  });
});
