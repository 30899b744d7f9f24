import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedDelayPolicy, newClient, presence, startTestServer, trackedWebSocket, waitFor, type TestServer } from './harness.ts';
import type { VoxClient } from '../../src/client/index.ts';

let ts: TestServer;
const clients: VoxClient[] = [];
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.disconnect()));
  await ts.close();
});

describe('two SDK clients in one room', () => {
  it("see each other's join, mute/unmute and leave, and their room models agree with the server", async () => {
    const alice = newClient();
    const bob = newClient();
    clients.push(alice, bob);
    const aliceSession = await alice.connect(ts.url, await ts.token('alice'));
    expect(aliceSession.userId).toBe('alice');
    expect(alice.state).toBe('connected');
    await bob.connect(ts.url, () => ts.token('bob'));

    const aliceRoom = await alice.join('standup');
    expect([...aliceRoom.participants.values()].map((p) => p.userId)).toEqual(['alice']);

    const joinedSeen = new Promise<string>((resolve) => alice.once('participant_joined', (e) => resolve(e.participant.userId)));
    const bobRoom = await bob.join('standup', { muted: true });
    expect(await joinedSeen).toBe('bob');
    expect(presence(bobRoom.participants.values())).toEqual(['alice:live', 'bob:muted']);
    expect(presence(aliceRoom.participants.values())).toEqual(['alice:live', 'bob:muted']);

    const updates: string[] = [];
    alice.on('participant_updated', (e) => updates.push(`${e.participant.userId}:${e.participant.muted}`));
    await bob.unmute('standup');
    await alice.mute('standup');
    await waitFor('alice sees bob unmuted', () => aliceRoom.participants.get(bobRoom.participantId)?.muted === false);
    await waitFor("bob sees alice's mute", () => bobRoom.participants.get(aliceRoom.participantId)?.muted === true);
    // Each change reported once, although the server sends both mute_ack and participant_updated.
    expect(updates).toEqual(['bob:false', 'alice:true']);
    expect(aliceRoom.self?.muted).toBe(true);
    expect(presence(aliceRoom.participants.values())).toEqual(presence(ts.server.core.registry.snapshot('standup')));

    const left = new Promise<{ participantId: string; reason: string }>((resolve) => alice.once('participant_left', resolve));
    await bob.leave('standup');
    expect(bob.room('standup')).toBeUndefined();
    expect(await left).toEqual({ room: 'standup', participantId: bobRoom.participantId, reason: 'left' });
    expect([...aliceRoom.participants.keys()]).toEqual([aliceRoom.participantId]);
  });

  it('shows a participant whose connection dropped as reconnecting (state + participant_updated), then connected after resume', async () => {
    const tracked = trackedWebSocket();
    // Erin retries every 50 ms but cannot get through while tracked.gate.closed is set.
    const erin = newClient({ WebSocket: tracked.WebSocket, reconnectPolicy: fixedDelayPolicy(50, 10_000) });
    const frank = newClient();
    clients.push(erin, frank);
    await erin.connect(ts.url, () => ts.token('erin'));
    await frank.connect(ts.url, await ts.token('frank'));
    const erinRoom = await erin.join('drops');
    const frankRoom = await frank.join('drops');
    await waitFor('frank sees erin', () => frankRoom.participants.get(erinRoom.participantId));
    expect(frankRoom.participants.get(erinRoom.participantId)?.state).toBe('connected');
    const seen: string[] = [];
    frank.on('participant_updated', (e) => seen.push(`${e.participant.userId} ${e.previous?.state}→${e.participant.state}`));

    tracked.gate.closed = true;
    ts.server.core.disconnect(erin.session!.sessionId, 4000, 'test: drop');
    await waitFor('erin reconnecting on frank’s side', () => frankRoom.participants.get(erinRoom.participantId)?.state === 'reconnecting');
    expect(seen).toEqual(['erin connected→reconnecting']);
    // Still in the room (no leave) while the server holds her place.
    expect(frankRoom.participants.has(erinRoom.participantId)).toBe(true);

    tracked.gate.closed = false;
    await waitFor('erin back', () => frankRoom.participants.get(erinRoom.participantId)?.state === 'connected');
    expect(seen).toEqual(['erin connected→reconnecting', 'erin reconnecting→connected']);
    expect(erin.state).toBe('resumed');
    // Her own view never says she was away.
    expect(erin.room('drops')?.self?.state).toBe('connected');
  });

  // Regression: a browser's long platform string made the server reject the hello (1008).
  it('connects with client info longer than the protocol allows, clipped by the SDK', async () => {
    const dave = newClient({ clientInfo: { name: 'n'.repeat(100), version: '1', platform: 'p'.repeat(200) } });
    clients.push(dave);
    const session = await dave.connect(ts.url, await ts.token('dave'));
    expect(session.userId).toBe('dave');
    expect(dave.state).toBe('connected');
  });

  it('rejects a request the server refuses with its protocol code, and keeps the session', async () => {
    const carol = newClient();
    clients.push(carol);
    await carol.connect(ts.url, await ts.token('carol'));
    const err = await carol.mute('not-joined').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CLIENT_REQUEST_FAILED', serverCode: 'NOT_IN_ROOM' });
    await carol.join('room-2');
    const again = await carol.join('room-2').catch((e: unknown) => e);
    expect(again).toMatchObject({ serverCode: 'ALREADY_IN_ROOM' });
    expect(carol.state).toBe('connected');
  });

  it('a media message on a server without media plane comes back as an error event, session intact', async () => {
    const dave = newClient();
    clients.push(dave);
    await dave.connect(ts.url, await ts.token('dave'));
    await dave.join('media-room');
    const error = new Promise<{ code: string; serverCode?: string }>((resolve) => dave.once('error', resolve));
    dave.sendMedia({ op: 'media', room: 'media-room', kind: 'offer', sdp: 'v=0' });
    expect(await error).toMatchObject({ code: 'CLIENT_REQUEST_FAILED', serverCode: 'MEDIA_UNAVAILABLE' });
    await dave.mute('media-room');
    expect(dave.state).toBe('connected');
  });

  it('refuses requests while not connected with CLIENT_NOT_CONNECTED', async () => {
    const idle = newClient();
    await expect(idle.join('x')).rejects.toMatchObject({ code: 'CLIENT_NOT_CONNECTED' });
  });
});
