import { afterEach, describe, expect, it } from 'vitest';
import type { VoxClient, RoomState } from '../../src/client/index.ts';
import { fixedDelayPolicy, newClient, nextState, presence, startTestServer, trackedWebSocket, waitFor, type TestServer } from './harness.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(grace?: number) {
  const ts = await startTestServer(grace === undefined ? {} : { resumeGraceMs: grace });
  cleanup.push(() => ts.close());
  const tracked = trackedWebSocket();
  // Alice retries every 50 ms but cannot get through while tracked.gate.closed is set.
  const alice = newClient({ WebSocket: tracked.WebSocket, reconnectPolicy: fixedDelayPolicy(50, 10_000) });
  const bob = newClient();
  cleanup.push(() => alice.disconnect(), () => bob.disconnect());
  await alice.connect(ts.url, () => ts.token('alice'));
  await bob.connect(ts.url, await ts.token('bob'));
  const aliceRoom = await alice.join('r');
  await bob.join('r');
  await waitFor('alice sees bob', () => aliceRoom.participants.size === 2);
  const events: string[] = [];
  alice.on('participant_joined', (e) => events.push(`joined ${e.participant.userId}`));
  alice.on('participant_left', (e) => events.push(`left ${userOf(aliceRoom, e.participantId) ?? e.participantId} ${e.reason}`));
  alice.on('participant_updated', (e) => events.push(`${e.participant.userId} ${e.participant.muted ? 'muted' : 'unmuted'}`));
  return { ts, alice, bob, aliceRoom, tracked, dropAlice: (code: number, reason: string) => ts.drop(alice.session!.sessionId, code, reason), events };
}

const names = new Map<string, string>();
function userOf(room: RoomState, participantId: string): string | undefined {
  const p = room.participants.get(participantId);
  if (p) names.set(participantId, p.userId);
  return names.get(participantId);
}

/** While alice is away: bob toggles mute 10 times, carol joins and leaves. Returns what alice must see. */
async function burstWhileAway(ts: TestServer, alice: VoxClient, bob: VoxClient, aliceRoom: RoomState): Promise<string[]> {
  const expected: string[] = [];
  for (let i = 0; i < 10; i++) {
    if (i % 2 === 0) await bob.mute('r');
    else await bob.unmute('r');
    expected.push(`bob ${i % 2 === 0 ? 'muted' : 'unmuted'}`);
  }
  const carol = newClient();
  await carol.connect(ts.url, await ts.token('carol'));
  const carolRoom = await carol.join('r');
  names.set(carolRoom.participantId, 'carol');
  await carol.leave('r');
  await carol.disconnect();
  expected.push('joined carol', 'left carol left');
  expect(alice.state).toBe('reconnecting'); // the burst really happened while alice was away
  expect(aliceRoom.participants.size).toBe(2);
  return expected;
}

/**
 * Alice goes away through `drop` and cannot get back while bob makes a burst of changes; then she
 * may: every event of the gap must arrive exactly once, in order, before "resumed". Returns them.
 */
async function awayAndBack(s: Awaited<ReturnType<typeof setup>>, drop: () => void): Promise<string[]> {
  s.tracked.gate.closed = true;
  drop();
  await waitFor('alice reconnecting', () => s.alice.state === 'reconnecting');
  const expected = await burstWhileAway(s.ts, s.alice, s.bob, s.aliceRoom);
  const resumed = nextState(s.alice, 'resumed');
  s.tracked.gate.closed = false;
  await resumed;
  expect(s.events).toEqual(expected);
  return expected;
}

describe('resume after a dropped signalling connection', () => {
  it('server-side close: every event from the gap arrives exactly once, in order, then "resumed"', async () => {
    const setupResult = await setup();
    const { ts, alice, bob, aliceRoom, dropAlice, events } = setupResult;
    const sessionId = alice.session!.sessionId;
    const states: string[] = [];
    alice.on('state', (s) => states.push(s));
    const expected = await awayAndBack(setupResult, () => dropAlice(4000, 'killed by test')); // resumable close code from the server
    expect(states).toEqual(['reconnecting', 'resumed']);
    expect(alice.session!.sessionId).toBe(sessionId);
    expect(presence(aliceRoom.participants.values())).toEqual(presence(ts.server.core.registry.snapshot('r')));

    // Live events keep flowing on the resumed session, still once each.
    await bob.mute('r');
    await waitFor('live update', () => events.length === expected.length + 1);
    expect(events.at(-1)).toBe('bob muted');
  });

  it('client-side drop of the TCP socket: same guarantees', async () => {
    const setupResult = await setup();
    const { ts, alice, tracked, aliceRoom } = setupResult;
    const sessionId = alice.session!.sessionId;
    expect(tracked.sockets).toHaveLength(1);
    await awayAndBack(setupResult, () => tracked.sockets[0].terminate()); // no close frame: what a dead Wi-Fi looks like (1006)
    expect(alice.session!.sessionId).toBe(sessionId);
    expect(presence(aliceRoom.participants.values())).toEqual(presence(ts.server.core.registry.snapshot('r')));
  });

  it('after the grace period: invalid_session → the SDK re-joins by itself and the room matches the server', async () => {
    const { ts, alice, bob, aliceRoom, tracked, events } = await setup(200);
    await alice.mute('r');
    await waitFor('bob sees alice muted', () => [...bob.room('r')!.participants.values()].some((p) => p.userId === 'alice' && p.muted));
    events.length = 0;
    const oldSession = alice.session!.sessionId;
    const oldParticipantId = aliceRoom.participantId;
    const refreshed = new Promise<string>((resolve) => alice.on('room', (e) => resolve(e.reason)));
    const bobSawAliceLeave = new Promise<string>((resolve) => bob.on('participant_left', (e) => resolve(e.reason)));

    tracked.gate.closed = true;
    tracked.sockets[0].terminate();
    await waitFor('alice reconnecting', () => alice.state === 'reconnecting');
    await bob.unmute('r'); // bob was live already: no change, no event
    await bob.mute('r');
    const carol = newClient();
    cleanup.push(() => carol.disconnect());
    await carol.connect(ts.url, await ts.token('carol'));
    await carol.join('r');
    expect(await bobSawAliceLeave).toBe('disconnected'); // grace expired on the server

    const connected = nextState(alice, 'connected');
    tracked.gate.closed = false;
    await connected;
    expect(await refreshed).toBe('rejoined');
    expect(alice.session!.sessionId).not.toBe(oldSession);
    expect(aliceRoom.participantId).not.toBe(oldParticipantId);
    expect(alice.room('r')).toBe(aliceRoom); // the same object the app holds, reconciled in place
    expect(presence(aliceRoom.participants.values())).toEqual(presence(ts.server.core.registry.snapshot('r')));
    expect(presence(aliceRoom.participants.values())).toEqual(['alice:muted', 'bob:muted', 'carol:live']);
    // What changed while away is reported once, as ordinary events, so listeners can reconcile.
    expect(events.sort()).toEqual(['bob muted', 'joined carol']);
  });
});
