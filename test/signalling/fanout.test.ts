import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRaw, encodeMessage, stampedLength, stampSeq, stampSeqInto } from '../../src/protocol/codec.ts';
import { CloseCode, type ServerMessage } from '../../src/protocol/index.ts';
import type { MediaPlane, MediaSink } from '../../src/signalling/media-plane.ts';
import { ReplayBuffer } from '../../src/signalling/replay-buffer.ts';
import { participant, RawClient, startTestServer, until, type TestServer } from './harness.ts';

/**
 * Regression tests for the coalesced, corked fan-out (src/signalling/server.ts UwsConnection):
 * frames queued per connection and written once per event-loop turn, sequenced frames stamped
 * into a scratch buffer at write time, replay buffers sharing one body per room event.
 */

async function metric(t: TestServer, line: string): Promise<number> {
  const text = await (await fetch(`${t.server.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

function sequenced(c: RawClient): ServerMessage[] {
  return c.received.filter((m) => m.seq !== undefined);
}

describe('coalesced fan-out', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { messagesPerSecond: 100_000, messageBurst: 100_000 } });
  });
  afterAll(() => t.close());

  it('a burst of updates from every member reaches every member once, in order, with gapless seqs', { timeout: 20_000 }, async () => {
    const members = 6;
    const toggles = 40;
    const clients: RawClient[] = [];
    for (let i = 0; i < members; i++) clients.push(await participant(t, `burst-${i}`, 'burst'));
    for (const c of clients) await until(() => c.received.filter((m) => m.op === 'participant_joined').length >= members - 1 - clients.indexOf(c), 5000, 'joins');
    const countedBefore = await metric(t, 'voxlink_messages_out_total{op="participant_updated"}');
    const seqBefore = clients.map((c) => c.lastSeq());

    // Everyone fires all their toggles at once: many room events per recipient per loop turn, and
    // each sender's own mute_ack written inside its own callback while others' events are queued.
    for (const c of clients) for (let k = 0; k < toggles; k++) c.send({ op: k % 2 === 0 ? 'mute' : 'unmute', room: 'burst', ref: c.nextRef() });
    for (const c of clients) {
      await until(() => c.received.filter((m) => m.op === 'participant_updated').length === members * toggles, 15_000, 'all updates');
      await until(() => c.received.filter((m) => m.op === 'mute_ack').length === toggles, 5000, 'all acks');
    }

    const ids = clients.map((c) => (c.received.find((m) => m.op === 'joined') as Extract<ServerMessage, { op: 'joined' }>).participantId);
    for (let i = 0; i < members; i++) {
      const c = clients[i];
      // Seqs are consecutive in arrival order: nothing reordered, duplicated or lost.
      const seqs = sequenced(c).map((m) => m.seq as number);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, k) => k + 1));
      expect(seqs.length).toBe(seqBefore[i] + members * toggles + toggles);
      // Every sender's updates arrive in the order it sent them: muted, unmuted, muted, …
      for (const id of ids) {
        const states = c.received.filter((m) => m.op === 'participant_updated' && m.participant.participantId === id).map((m) => (m as Extract<ServerMessage, { op: 'participant_updated' }>).participant.muted);
        expect(states).toEqual(Array.from({ length: toggles }, (_, k) => k % 2 === 0));
      }
    }
    // Counted once per broadcast with n recipients: the total is still one per delivery.
    expect((await metric(t, 'voxlink_messages_out_total{op="participant_updated"}')) - countedBefore).toBe(members * members * toggles);
    for (const c of clients) c.close();
  });
});

describe('queued frames and close', () => {
  let t: TestServer;
  let sink: MediaSink | null = null;
  const plane: MediaPlane = {
    attach: (s) => {
      sink = s;
    },
    join: async () => undefined,
    leave: async () => undefined,
    signal: async () => undefined,
    setMuted: async () => undefined,
    record: async () => null,
    stats: () => ({ workers: 0, rooms: 0 }),
    close: async () => undefined,
  };
  beforeAll(async () => {
    t = await startTestServer({}, { mediaPlane: plane });
  });
  afterAll(() => t.close());

  it('frames queued in the same turn as a shutdown arrive before the 1001 close; speaking events arrive without pub/sub', async () => {
    const a = await participant(t, 'queued-a', 'q');
    const b = await participant(t, 'queued-b', 'q');
    const bId = (b.received.find((m) => m.op === 'joined') as Extract<ServerMessage, { op: 'joined' }>).participantId;
    const aId = (a.received.find((m) => m.op === 'joined') as Extract<ServerMessage, { op: 'joined' }>).participantId;
    await a.waitOp('participant_joined', (m) => m.participant.participantId === bId);

    sink?.toRoom('q', { op: 'speaking', room: 'q', participantId: bId, speaking: true, level: 0.5 });
    const speaking = await a.waitOp('speaking');
    expect(speaking).toMatchObject({ participantId: bId, speaking: true });
    expect(speaking.seq).toBeUndefined();

    // Outside any socket callback: queued for this turn, then the server shuts down in the same turn.
    sink?.toParticipant('q', aId, { op: 'media', room: 'q', kind: 'offer', sdp: 'v=0 last words' });
    await t.close();
    const closed = await a.closed;
    expect(closed.code).toBe(CloseCode.GOING_AWAY);
    const last = a.received[a.received.length - 1];
    expect(last).toMatchObject({ op: 'media', kind: 'offer', sdp: 'v=0 last words' });
    expect(last.seq).toBe(a.lastSeq());
  });
});

describe('stamping and replay storage', () => {
  it('stampSeqInto writes exactly what stampSeq returns, at every map-header and seq-width boundary', () => {
    const scratch = new Uint8Array(512);
    for (const fields of [0, 13, 14, 15, 16, 40]) {
      const message: Record<string, unknown> = { op: 'participant_updated' };
      for (let i = 0; i < fields; i++) message[`f${i}`] = i;
      const body = encodeMessage(message as never);
      for (const seq of [1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER]) {
        scratch.fill(0xc1);
        const n = stampSeqInto(body, seq, scratch);
        const expected = stampSeq(body, seq);
        expect(n).toBe(expected.length);
        expect(n).toBe(stampedLength(body, seq));
        expect(Buffer.from(scratch.subarray(0, n)).equals(Buffer.from(expected))).toBe(true);
        expect(decodeRaw(scratch.subarray(0, n))).toEqual({ ...message, seq });
      }
    }
  });

  it('replay holds one shared body per event, returns the frames after lastSeq, and a seq gap starts over', () => {
    const shared = encodeMessage({ op: 'participant_left', room: 'r', participantId: 'p', reason: 'left' });
    const a = new ReplayBuffer(8, 1 << 16);
    const b = new ReplayBuffer(8, 1 << 16);
    for (let seq = 1; seq <= 5; seq++) {
      a.push(seq, shared);
      b.push(seq + 10, shared);
    }
    expect(a.since(2, 5)).toEqual([shared, shared, shared]);
    expect(a.since(2, 5)?.[0]).toBe(shared); // the same bytes, not a copy
    expect(b.firstSeq).toBe(11);
    b.push(20, shared); // 16…19 never pushed: what is held can no longer be replayed without a gap
    expect(b.firstSeq).toBe(20);
    expect(b.count).toBe(1);
    expect(b.since(15, 20)).toBeNull();
    a.clear();
    expect(a.count).toBe(0);
    expect(a.bytes).toBe(0);
    expect(a.since(0, 5)).toBeNull();
  });
});
