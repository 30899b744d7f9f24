import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientMediaMessage, ServerMessage } from '../../src/protocol/index.ts';
import type { MediaParticipant, MediaPlane, MediaSink } from '../../src/signalling/media-plane.ts';
import { participant, RawClient, sleep, startTestServer, until, type TestServer } from './harness.ts';

/**
 * A scripted media plane standing in for the SFU (src/rooms/media-plane.ts) to check the contract
 * from signalling's side: what it is called with, and how its messages reach clients.
 */
class ScriptedMediaPlane implements MediaPlane {
  sink: MediaSink | null = null;
  readonly calls: string[] = [];
  readonly joined: MediaParticipant[] = [];
  attach(sink: MediaSink): void {
    this.sink = sink;
  }
  async join(p: MediaParticipant): Promise<void> {
    this.joined.push(p);
    this.calls.push(`join:${p.roomId}:${p.name}`);
    // Like the SFU: answer a join with an offer to the new participant.
    this.sink?.toParticipant(p.roomId, p.participantId, { op: 'media', room: p.roomId, kind: 'offer', sdp: `offer-for-${p.name}` });
  }
  async leave(roomId: string, participantId: string): Promise<void> {
    const p = this.joined.find((j) => j.participantId === participantId);
    this.calls.push(`leave:${roomId}:${p?.name}`);
  }
  signal(roomId: string, _participantId: string, message: ClientMediaMessage): Promise<void> {
    // A bug that throws synchronously, before any promise exists.
    if (message.kind === 'unsubscribe_video') throw new TypeError('plane bug');
    if (message.kind === 'ice_restart') return Promise.reject(new Error('cannot restart'));
    this.calls.push(`signal:${roomId}:${message.kind}`);
    return Promise.resolve();
  }
  async setMuted(roomId: string, _participantId: string, muted: boolean): Promise<void> {
    this.calls.push(`muted:${roomId}:${muted}`);
  }
  async record(roomId: string, _participantId: string, action: 'start' | 'stop'): Promise<null> {
    this.calls.push(`record:${roomId}:${action}`);
    return null;
  }
  stats(): { workers: number; rooms: number } {
    return { workers: 3, rooms: 1 };
  }
  async close(): Promise<void> {}
}

describe('media plane contract', () => {
  let t: TestServer;
  const plane = new ScriptedMediaPlane();
  beforeAll(async () => {
    t = await startTestServer({ signalling: { resumeGraceMs: 500 } }, { mediaPlane: plane });
  });
  afterAll(() => t.close());

  it('join reaches the plane with grants; its offer arrives sequenced after joined', async () => {
    const a = await participant(t, 'pub', 'm1', { rooms: [{ room: 'm1', grants: ['join', 'publish'] }], name: 'Pub' });
    const offer = await a.waitOp('media', (m) => m.kind === 'offer');
    expect(offer).toMatchObject({ room: 'm1', sdp: 'offer-for-Pub' });
    const joined = a.received.find((m) => m.op === 'joined') as ServerMessage;
    expect(offer.seq).toBeGreaterThan(joined.seq ?? Infinity);
    expect(plane.joined.at(-1)).toMatchObject({ roomId: 'm1', name: 'Pub', grants: { publish: true, subscribe: false, record: false, admin: false } });
    a.close();
  });

  it('client media messages are forwarded; plane failures come back as MEDIA_FAILED', async () => {
    const a = await participant(t, 'neg', 'm2');
    a.send({ op: 'media', room: 'm2', kind: 'answer', sdp: 'v=0' });
    await until(() => plane.calls.includes('signal:m2:answer'), 5000, 'signal forwarded');
    expect(await a.request({ op: 'media', room: 'm2', kind: 'ice_restart' })).toMatchObject({ op: 'error', code: 'MEDIA_FAILED' });
    expect(await a.request({ op: 'media', room: 'nope', kind: 'answer' })).toMatchObject({ op: 'error', code: 'NOT_IN_ROOM' });
    const metrics = async (): Promise<number> =>
      Number(/voxlink_internal_errors_total (\d+)/.exec(await (await fetch(`${t.server.url}/metrics`)).text())?.[1] ?? 0);
    const before = await metrics();
    expect(await a.request({ op: 'media', room: 'm2', kind: 'unsubscribe_video', participantId: 'p' })).toMatchObject({ op: 'error', code: 'INTERNAL' });
    expect(await metrics()).toBe(before + 1);
    await a.request({ op: 'mute', room: 'm2' });
    await until(() => plane.calls.includes('muted:m2:true'), 5000, 'setMuted');
    a.close();
  });

  it('speaking goes to the room unsequenced and updates presence; slots are sequenced', async () => {
    const a = await participant(t, 'talker', 'm3');
    const b = await participant(t, 'hearer', 'm3');
    const talkerId = (a.received.find((m) => m.op === 'joined') as { participantId: string }).participantId;
    plane.sink?.toRoom('m3', { op: 'speaking', room: 'm3', participantId: talkerId, speaking: true, level: 0.7 });
    const speaking = await b.waitOp('speaking');
    expect(speaking).toMatchObject({ participantId: talkerId, speaking: true, level: 0.7 });
    expect(speaking.seq).toBeUndefined();
    expect(t.server.core.registry.participant('m3', talkerId)?.speaking).toBe(true);
    plane.sink?.toRoom('m3', { op: 'slots', room: 'm3', slots: [{ slot: 0, participantId: talkerId }] });
    expect((await a.waitOp('slots')).seq).toBeGreaterThan(0);
    a.close();
    b.close();
  });

  it('a drop does not leave the media plane; grace expiry does; messages in between are replayed', async () => {
    const a = await participant(t, 'dropper', 'm4', { name: 'Dropper' });
    const ready = a.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    const pid = (a.received.find((m) => m.op === 'joined') as { participantId: string }).participantId;
    await a.waitOp('media');
    const lastSeq = a.lastSeq();
    a.drop();
    await sleep(50);
    plane.sink?.toParticipant('m4', pid, { op: 'media_reconnect', room: 'm4', reason: 'worker_died' });
    expect(plane.calls).not.toContain('leave:m4:Dropper');
    const a2 = await RawClient.connect(t.wsUrl);
    a2.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq });
    await a2.waitOp('resumed');
    expect(a2.received[0]).toMatchObject({ op: 'media_reconnect', seq: lastSeq + 1, reason: 'worker_died' });
    a2.drop();
    await sleep(300);
    expect(plane.calls).not.toContain('leave:m4:Dropper'); // still within the 500 ms grace
    await until(() => plane.calls.includes('leave:m4:Dropper'), 5000, 'leave after grace');
  });

  it('/healthz reports the plane worker count and native uWS', async () => {
    const health = (await (await fetch(`${t.server.url}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', workers: 3, uws: { native: true } });
  });
});

describe('without a media plane', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it('media messages get MEDIA_UNAVAILABLE and /healthz reports 0 workers', async () => {
    const a = await participant(t, 'lonely', 'x');
    expect(await a.request({ op: 'media', room: 'x', kind: 'offer', sdp: 'v=0' })).toMatchObject({ op: 'error', code: 'MEDIA_UNAVAILABLE' });
    const health = (await (await fetch(`${t.server.url}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ workers: 0 });
    a.close();
  });
});
