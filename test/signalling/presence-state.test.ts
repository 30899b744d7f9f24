import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, type ServerMessage } from '../../src/protocol/index.ts';
import { participant, RawClient, sleep, startTestServer, type TestServer } from './harness.ts';

const GRACE_MS = 1500;

function joinedId(c: RawClient, room: string): string {
  const joined = c.received.find((m) => m.op === 'joined' && m.room === room);
  if (!joined || joined.op !== 'joined') throw new Error('not joined');
  return joined.participantId;
}

function ready(c: RawClient): Extract<ServerMessage, { op: 'ready' }> {
  return c.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
}

describe('presence: reconnecting during the resume grace period', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ signalling: { resumeGraceMs: GRACE_MS } });
  });
  afterAll(() => t.close());

  it('a dropped participant shows as reconnecting to the others (events and snapshots), connected again after resume', async () => {
    const a = await participant(t, 'alice', 'p1');
    const b = await participant(t, 'bob', 'p1');
    const aliceId = joinedId(a, 'p1');
    expect((await b.waitOp('joined')).participants.map((p) => p.state)).toEqual(['connected', 'connected']);
    const lastSeq = a.lastSeq();
    const dropAt = Date.now();
    a.drop();
    const away = await b.waitOp('participant_updated', (m) => m.participant.participantId === aliceId);
    expect(away.participant).toMatchObject({ userId: 'alice', state: 'reconnecting' });
    // Told at the drop, not at the end of the grace period.
    expect(Date.now() - dropAt).toBeLessThan(GRACE_MS / 2);
    expect(t.server.core.registry.participant('p1', aliceId)?.state).toBe('reconnecting');
    // A joiner during the grace period sees the state in its snapshot.
    const c = await participant(t, 'carol', 'p1');
    const snapshot = c.received.find((m) => m.op === 'joined');
    expect(snapshot?.op === 'joined' && snapshot.participants.find((p) => p.participantId === aliceId)?.state).toBe('reconnecting');

    const a2 = await RawClient.connect(t.wsUrl);
    const mark = b.received.length;
    a2.send({ op: 'resume', sessionId: ready(a).sessionId, resumeToken: ready(a).resumeToken, lastSeq });
    await a2.waitOp('resumed');
    const back = await b.waitOp('participant_updated', (m) => m.participant.participantId === aliceId && m.participant.state === 'connected');
    expect(b.received.indexOf(back)).toBeGreaterThanOrEqual(mark);
    await c.waitOp('participant_updated', (m) => m.participant.participantId === aliceId && m.participant.state === 'connected');
    // Alice herself is not told about her own absence.
    expect(a2.received.some((m) => m.op === 'participant_updated' && m.participant.participantId === aliceId)).toBe(false);
    // Nobody saw a leave.
    expect(b.received.some((m) => m.op === 'participant_left' && m.participantId === aliceId)).toBe(false);
    for (const x of [a2, b, c]) x.close();
  });

  it('grace expiry after reconnecting: participant_left disconnected', async () => {
    const a = await participant(t, 'dora', 'p2');
    const b = await participant(t, 'eli', 'p2');
    const doraId = joinedId(a, 'p2');
    a.drop();
    await b.waitOp('participant_updated', (m) => m.participant.participantId === doraId && m.participant.state === 'reconnecting');
    const left = await b.waitOp('participant_left', (m) => m.participantId === doraId);
    expect(left.reason).toBe('disconnected');
    b.close();
  });

  it('a goodbye (1000) is a leave, never a reconnecting', async () => {
    const a = await participant(t, 'fay', 'p3');
    const b = await participant(t, 'gus', 'p3');
    const fayId = joinedId(a, 'p3');
    a.close(1000);
    await b.waitOp('participant_left', (m) => m.participantId === fayId);
    expect(b.received.some((m) => m.op === 'participant_updated' && m.participant.participantId === fayId)).toBe(false);
    b.close();
  });
});

describe('same identity joining again (signalling.replaceIdentity, default true)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ signalling: { resumeGraceMs: GRACE_MS } });
  });
  afterAll(() => t.close());

  it('the old participant is told it was replaced, the room sees one of them', async () => {
    const old = await participant(t, 'ivy', 'q1');
    const watcher = await participant(t, 'jack', 'q1');
    const oldId = joinedId(old, 'q1');
    const fresh = await participant(t, 'ivy', 'q1');
    const told = await old.waitOp('participant_left', (m) => m.participantId === oldId);
    expect(told.reason).toBe('replaced');
    expect((await old.closed).code).toBe(CloseCode.SESSION_REPLACED);
    expect((await watcher.waitOp('participant_left', (m) => m.participantId === oldId)).reason).toBe('replaced');
    expect(t.server.core.registry.snapshot('q1').map((p) => [p.userId, p.participantId]).sort()).toEqual(
      [['ivy', joinedId(fresh, 'q1')], ['jack', joinedId(watcher, 'q1')]].sort(),
    );
    fresh.close();
    watcher.close();
  });

  it('an old participant still in its grace period (closed tab) is replaced at once', async () => {
    const old = await participant(t, 'kai', 'q2');
    const watcher = await participant(t, 'lea', 'q2');
    const oldId = joinedId(old, 'q2');
    old.drop();
    await watcher.waitOp('participant_updated', (m) => m.participant.participantId === oldId && m.participant.state === 'reconnecting');
    const start = Date.now();
    const fresh = await participant(t, 'kai', 'q2');
    expect((await watcher.waitOp('participant_left', (m) => m.participantId === oldId)).reason).toBe('replaced');
    expect(Date.now() - start).toBeLessThan(GRACE_MS);
    expect(t.server.core.registry.snapshot('q2').map((p) => p.userId).sort()).toEqual(['kai', 'lea']);
    fresh.close();
    watcher.close();
  });

  it('an old session in other rooms too loses only this room and stays connected', async () => {
    const old = await participant(t, 'max', 'q3');
    await old.join('q4');
    const oldId = joinedId(old, 'q3');
    const fresh = await participant(t, 'max', 'q3');
    expect((await old.waitOp('participant_left', (m) => m.participantId === oldId)).reason).toBe('replaced');
    await sleep(100);
    expect(t.server.core.registry.snapshot('q3').map((p) => p.participantId)).toEqual([joinedId(fresh, 'q3')]);
    expect(t.server.core.registry.snapshot('q4').map((p) => p.participantId)).toEqual([joinedId(old, 'q4')]);
    // Still connected and usable.
    expect((await old.request({ op: 'mute', room: 'q4' })).op).toBe('mute_ack');
    // And may join q3 again (replacing the other one in turn).
    await old.join('q3');
    expect((await fresh.closed).code).toBe(CloseCode.SESSION_REPLACED);
    old.close();
  });
});

describe('same identity joining again with signalling.replaceIdentity false', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ signalling: { resumeGraceMs: GRACE_MS, replaceIdentity: false } });
  });
  afterAll(() => t.close());

  it('both stay, as two participants; either leaving keeps the other findable', async () => {
    const first = await participant(t, 'nia', 'r1');
    const second = await participant(t, 'nia', 'r1');
    await sleep(100);
    expect(first.received.some((m) => m.op === 'participant_left')).toBe(false);
    const ids = t.server.core.registry.snapshot('r1').map((p) => p.participantId).sort();
    expect(ids).toEqual([joinedId(first, 'r1'), joinedId(second, 'r1')].sort());
    expect(t.server.core.registry.findByUser('r1', 'nia')?.participantId).toBe(joinedId(second, 'r1'));
    second.close(1000);
    await first.waitOp('participant_left', (m) => m.participantId === joinedId(second, 'r1'));
    expect(t.server.core.registry.findByUser('r1', 'nia')?.participantId).toBe(joinedId(first, 'r1'));
    first.close();
  });
});
