import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, type ServerMessage } from '../../src/protocol/index.ts';
import { participant, presenceFrom, RawClient, sleep, startTestServer, type TestServer } from './harness.ts';

const GRACE_MS = 1500;

function joinedId(c: RawClient, room: string): string {
  const joined = c.received.find((m) => m.op === 'joined' && m.room === room);
  if (!joined || joined.op !== 'joined') throw new Error('not joined');
  return joined.participantId;
}

describe('sessions survive connections', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ signalling: { resumeGraceMs: GRACE_MS, replayMaxMessages: 64 } });
  });
  afterAll(() => t.close());

  it('replays every event missed while away exactly once and in order, then resumed; others never see a leave', async () => {
    const a = await participant(t, 'alice', 'r1');
    const b = await participant(t, 'bob', 'r1');
    await a.waitOp('participant_joined', (m) => m.participant.userId === 'bob');
    const ready = a.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    const aliceId = joinedId(a, 'r1');
    // Ack part of the stream, so the buffer has been trimmed before the drop.
    a.send({ op: 'heartbeat', ack: a.lastSeq() });
    await a.waitOp('heartbeat_ack');
    const lastSeq = a.lastSeq();
    a.drop();
    await sleep(50);

    // Events while alice is away.
    await b.request({ op: 'mute', room: 'r1' });
    const c = await participant(t, 'carol', 'r1');
    await b.waitOp('participant_joined', (m) => m.participant.userId === 'carol');
    await b.request({ op: 'unmute', room: 'r1' });
    c.close();
    await b.waitOp('participant_left', (m) => m.participantId === joinedId(c, 'r1'));
    const d = await participant(t, 'dave', 'r1');
    // Carol's and Dave's snapshots still list alice: membership survives the drop.
    expect(d.received.find((m) => m.op === 'joined')).toMatchObject({ participants: expect.arrayContaining([expect.objectContaining({ userId: 'alice' })]) });

    const a2 = await RawClient.connect(t.wsUrl);
    a2.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq });
    const resumed = await a2.waitOp('resumed');
    const replayed = a2.received.slice(0, a2.received.indexOf(resumed));
    expect(resumed.replayed).toBe(replayed.length);
    expect(resumed.rooms).toEqual(['r1']);
    // Contiguous seqs right after lastSeq: nothing lost, nothing doubled.
    expect(replayed.map((m) => m.seq)).toEqual(replayed.map((_, i) => lastSeq + 1 + i));
    expect(replayed.map((m) => (m.op === 'participant_joined' || m.op === 'participant_updated' ? `${m.op}:${m.participant.userId}:${m.participant.muted}` : m.op === 'participant_left' ? `left:${m.reason}` : m.op))).toEqual([
      'participant_updated:bob:true',
      'participant_joined:carol:false',
      'participant_updated:bob:false',
      'left:disconnected',
      'participant_joined:dave:false',
    ]);
    // Alice's view equals the server's truth; bob never saw alice leave.
    expect([...presenceFrom(a2Combined(a, a2), 'r1').values()].map((p) => p.userId).sort()).toEqual(['alice', 'bob', 'dave']);
    expect(b.received.some((m) => m.op === 'participant_left' && m.participantId === aliceId)).toBe(false);

    // Live events continue with the next seq on the new connection.
    await b.request({ op: 'mute', room: 'r1' });
    const live = await a2.waitFor(
      (m) => m.op === 'participant_updated' && m.participant.userId === 'bob' && m.participant.muted,
      5000,
      a2.received.indexOf(resumed) + 1,
    );
    expect(live.seq).toBe(lastSeq + replayed.length + 1);
    for (const x of [a2, b, d]) x.close();
  });

  it('after the grace period: others see the leave, and resume gets invalid_session', async () => {
    const a = await participant(t, 'erin', 'r2');
    const b = await participant(t, 'frank', 'r2');
    const erinId = joinedId(a, 'r2');
    const ready = a.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    a.drop();
    const droppedAt = Date.now();
    const left = await b.waitOp('participant_left', (m) => m.participantId === erinId, GRACE_MS + 3000);
    expect(Date.now() - droppedAt).toBeGreaterThanOrEqual(GRACE_MS - 100);
    expect(left.reason).toBe('disconnected');
    const a2 = await RawClient.connect(t.wsUrl);
    a2.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: a.lastSeq() });
    expect(await a2.waitOp('invalid_session')).toMatchObject({ reason: 'expired' });
    // The SDK's fallback: hello again and re-join on the same connection.
    await a2.hello(await t.token('erin'));
    const rejoined = await a2.join('r2');
    expect(rejoined.participants.map((p) => p.userId).sort()).toEqual(['erin', 'frank']);
    a2.close();
    b.close();
  });

  it('a wrong resume token is refused', async () => {
    const a = await participant(t, 'gina', 'r3');
    const ready = a.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    a.drop();
    const a2 = await RawClient.connect(t.wsUrl);
    a2.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: 'x'.repeat(ready.resumeToken.length), lastSeq: 0 });
    expect(await a2.waitOp('invalid_session')).toMatchObject({ reason: 'bad_token' });
    a2.close();
  });

  it('a resume that beats the detection of the old connection retires the old one', async () => {
    const a = await participant(t, 'hank', 'r4');
    const ready = a.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    const a2 = await RawClient.connect(t.wsUrl);
    a2.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: a.lastSeq() });
    expect(await a2.waitOp('resumed')).toMatchObject({ replayed: 0, rooms: ['r4'] });
    expect((await a.closed).code).toBe(CloseCode.SESSION_REPLACED);
    expect(t.server.core.registry.snapshot('r4').map((p) => p.userId)).toEqual(['hank']);
    a2.close();
    const stranger = await RawClient.connect(t.wsUrl);
    stranger.send({ op: 'resume', sessionId: 'no-such-session', resumeToken: 'x', lastSeq: 0 });
    expect(await stranger.waitOp('invalid_session')).toMatchObject({ reason: 'unknown_session' });
    stranger.close();
  });

  it('duplicate identity in a room: newest wins, the older session is closed with 4001', async () => {
    const old = await participant(t, 'ivy', 'r5');
    const watcher = await participant(t, 'jack', 'r5');
    const oldId = joinedId(old, 'r5');
    const fresh = await participant(t, 'ivy', 'r5');
    const closed = await old.closed;
    expect(closed.code).toBe(CloseCode.SESSION_REPLACED);
    const ready = old.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    const retry = await RawClient.connect(t.wsUrl);
    retry.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: old.lastSeq() });
    expect(await retry.waitOp('invalid_session')).toMatchObject({ reason: 'replaced' });
    retry.close();
    const left = await watcher.waitOp('participant_left', (m) => m.participantId === oldId);
    expect(left.reason).toBe('replaced');
    await watcher.waitOp('participant_joined', (m) => m.participant.participantId === joinedId(fresh, 'r5'));
    expect([...presenceFrom(watcher, 'r5').values()].map((p) => p.userId).sort()).toEqual(['ivy', 'jack']);
    fresh.close();
    watcher.close();
  });

  it('a client closing with 1000 leaves at once (no grace)', async () => {
    const a = await participant(t, 'kim', 'r6');
    const b = await participant(t, 'lou', 'r6');
    const kimId = joinedId(a, 'r6');
    const start = Date.now();
    a.close(1000);
    await b.waitOp('participant_left', (m) => m.participantId === kimId);
    expect(Date.now() - start).toBeLessThan(GRACE_MS);
    b.close();
  });

  it('a terminal close by the server (text frame → 1003) leaves at once', async () => {
    const a = await participant(t, 'max', 'r7');
    const b = await participant(t, 'ola', 'r7');
    const maxId = joinedId(a, 'r7');
    const start = Date.now();
    a.sendBytes('not msgpack');
    expect((await a.closed).code).toBe(CloseCode.UNSUPPORTED_DATA);
    expect((await b.waitOp('participant_left', (m) => m.participantId === maxId)).reason).toBe('disconnected');
    expect(Date.now() - start).toBeLessThan(GRACE_MS);
    b.close();
  });
});

describe('replay buffer bounds', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ signalling: { resumeGraceMs: 5000, replayMaxMessages: 4 } });
  });
  afterAll(() => t.close());

  it('a resume that needs more than the buffer holds gets invalid_session replay_gap, and others see the leave', async () => {
    const a = await participant(t, 'mia', 'big');
    const b = await participant(t, 'ned', 'big');
    const miaId = joinedId(a, 'big');
    await a.waitOp('participant_joined');
    const ready = a.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    const lastSeq = a.lastSeq();
    a.drop();
    await sleep(50);
    for (let i = 0; i < 4; i++) {
      await b.request({ op: 'mute', room: 'big' });
      await b.request({ op: 'unmute', room: 'big' });
    }
    const a2 = await RawClient.connect(t.wsUrl);
    a2.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq });
    expect(await a2.waitOp('invalid_session')).toMatchObject({ reason: 'replay_gap' });
    expect((await b.waitOp('participant_left', (m) => m.participantId === miaId)).reason).toBe('disconnected');
    a2.close();
    b.close();
  });
});

/** Messages of the first connection up to its drop, then the second connection's. */
function a2Combined(a: RawClient, a2: RawClient): RawClient {
  const merged = Object.create(RawClient.prototype) as RawClient;
  Object.defineProperty(merged, 'received', { value: [...a.received, ...a2.received] });
  return merged;
}
