import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { RawClient, sleep, startTestServer, type TestServer } from '../signalling/harness.ts';

/**
 * The server's side of peer-to-peer rooms over the real protocol (real signalling server, real
 * media plane): who is told to connect to whom (`transport`), the relay of offers, answers and
 * candidates (`peer`) only inside the room, clear errors for malformed or oversized SDP and
 * candidates (the other peer never sees them and keeps working), and an `auto` room's move to
 * the server when a third joins and back when two remain.
 */

type Transport = Extract<ServerMessage, { op: 'transport' }>;
type Peer = Extract<ServerMessage, { op: 'peer' }>;

/** A minimal well-formed audio offer (RFC 8866 lines), as a browser would send it. */
const SDP = ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=rtpmap:111 opus/48000/2', ''].join('\r\n');
const CANDIDATE = 'candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host';

describe('p2p and auto rooms: transport decisions and the peer relay', () => {
  let plane: PooledMediaPlane;
  let t: TestServer;
  const clients: RawClient[] = [];

  beforeAll(async () => {
    plane = createMediaPlane({
      room: { slots: 3, announcedIp: '127.0.0.1', rtcMinPort: 54100, rtcMaxPort: 54199, mode: 'sfu' },
      pool: { workers: 1 },
    });
    await plane.pool.ready();
    t = await startTestServer({ p2p: { maxSdpBytes: 4096, switchTimeoutMs: 3000 } }, { mediaPlane: plane });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await t?.close();
    await plane?.close();
  });

  async function joinAs(userId: string, room: string, mode: 'p2p' | 'auto' | 'sfu'): Promise<{ client: RawClient; self: string; reply: ServerMessage }> {
    const client = await RawClient.connect(t.wsUrl);
    clients.push(client);
    await client.hello(await t.token(userId, { grants: ['join', 'publish', 'subscribe', 'record'] }));
    const reply = await client.request({ op: 'join', room, options: { mode, direct: true } });
    return { client, self: reply.op === 'joined' ? reply.participantId : '', reply };
  }

  it('p2p: two participants are told to connect to each other; the server starts no media peer', async () => {
    const a = await joinAs('a', 'direct-1', 'p2p');
    expect(a.reply).toMatchObject({ op: 'joined', mode: 'p2p' });
    const alone = await a.client.waitOp('transport');
    expect(alone).toMatchObject({ transport: 'direct' });
    expect(alone.peer).toBeUndefined();
    const b = await joinAs('b', 'direct-1', 'p2p');
    const toB = await b.client.waitOp('transport', (m) => m.peer !== undefined);
    const toA = await a.client.waitOp('transport', (m) => m.peer !== undefined);
    expect(toB).toMatchObject({ transport: 'direct', peer: a.self, offerer: true, self: b.self });
    expect(toA).toMatchObject({ transport: 'direct', peer: b.self, offerer: false, link: toB.link });
    // Each one's slot 0 is the other, as in a two-person sfu room.
    expect(await b.client.waitOp('slots')).toMatchObject({ slots: [{ slot: 0, participantId: a.self }] });
    await sleep(300);
    for (const c of [a.client, b.client]) expect(c.received.filter((m) => m.op === 'media')).toEqual([]);
    expect(plane.workerOf('direct-1')).toBeUndefined();

    // Offer, answer and candidates reach only the other end, with the sender named.
    b.client.send({ op: 'peer', room: 'direct-1', kind: 'offer', to: a.self, link: toB.link, sdp: SDP });
    const offer = await a.client.waitOp('peer', (m) => m.kind === 'offer');
    expect(offer).toMatchObject({ from: b.self, sdp: SDP, link: toB.link });
    a.client.send({ op: 'peer', room: 'direct-1', kind: 'answer', to: b.self, link: toA.link, sdp: SDP });
    a.client.send({ op: 'peer', room: 'direct-1', kind: 'candidate', to: b.self, link: toA.link, candidate: { candidate: CANDIDATE, sdpMid: '0', sdpMLineIndex: 0 } });
    await b.client.waitOp('peer', (m) => m.kind === 'answer' && m.from === a.self);
    const candidate = await b.client.waitOp('peer', (m) => m.kind === 'candidate');
    expect(candidate.candidate).toMatchObject({ candidate: CANDIDATE, sdpMid: '0' });

    // A third participant does not fit a p2p room.
    const c = await joinAs('c', 'direct-1', 'p2p');
    expect(c.reply).toMatchObject({ op: 'error', code: 'ROOM_FULL', about: 'join' });
    expect((c.reply as Extract<ServerMessage, { op: 'error' }>).message).toMatch(/peer to peer.*use mode auto/);

    // Recording needs the server's media, which a p2p room does not have.
    const record = await a.client.request({ op: 'record', room: 'direct-1', action: 'start' });
    expect(record).toMatchObject({ op: 'error', code: 'MEDIA_FAILED' });
    expect((record as Extract<ServerMessage, { op: 'error' }>).message).toMatch(/peer to peer/);
  });

  it('malformed or oversized SDP and candidates get a clear error; the other peer sees nothing and keeps working', async () => {
    const a = await joinAs('ma', 'direct-2', 'p2p');
    const b = await joinAs('mb', 'direct-2', 'p2p');
    const link = (await b.client.waitOp('transport', (m) => m.peer !== undefined)).link;
    const before = a.client.received.length;
    const bad: [Partial<Extract<Parameters<RawClient['send']>[0], { op: 'peer' }>>, RegExp][] = [
      [{ kind: 'offer', sdp: 'not an sdp' }, /must start with "v=0"/],
      [{ kind: 'offer', sdp: `${SDP}x-injected\r\n` }, /line 8 is not/],
      [{ kind: 'offer', sdp: 'v=0\r\ns=-\r\n' }, /no media section/],
      [{ kind: 'answer', sdp: SDP + 'a=x:'.padEnd(5000, 'y') + '\r\n' }, /more than p2p.maxSdpBytes \(4096\)/],
      [{ kind: 'offer' }, /sdp is required/],
      [{ kind: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 1.2.3.4 9 typ host\r\na=evil' } }, /not an ICE candidate line/],
      [{ kind: 'candidate' }, /candidate is required/],
      [{ kind: 'level' }, /level is required/],
    ];
    for (const [fields, message] of bad) {
      const reply = await b.client.request({ op: 'peer', room: 'direct-2', to: a.self, link, ...fields } as Parameters<RawClient['send']>[0]);
      expect(reply, JSON.stringify(fields).slice(0, 80)).toMatchObject({ op: 'error', code: 'INVALID_MESSAGE', about: 'peer' });
      expect((reply as Extract<ServerMessage, { op: 'error' }>).message).toMatch(message);
    }
    // Not in the room, or someone who is not: refused.
    const outsider = await joinAs('mx', 'elsewhere', 'p2p');
    expect(await outsider.client.request({ op: 'peer', room: 'direct-2', kind: 'offer', to: a.self, link, sdp: SDP })).toMatchObject({ code: 'NOT_IN_ROOM' });
    expect(await b.client.request({ op: 'peer', room: 'direct-2', kind: 'offer', to: outsider.self, link, sdp: SDP })).toMatchObject({ code: 'PARTICIPANT_NOT_FOUND' });
    await sleep(200);
    expect(a.client.received.slice(before).filter((m) => m.op === 'peer')).toEqual([]);
    // The good offer still goes through.
    b.client.send({ op: 'peer', room: 'direct-2', kind: 'offer', to: a.self, link, sdp: SDP });
    expect(await a.client.waitOp('peer')).toMatchObject({ kind: 'offer', from: b.self });
  });

  it('auto: a third participant moves everyone to the server; back to two, the room returns to direct once both switched', async () => {
    const a = await joinAs('xa', 'auto-1', 'auto');
    const b = await joinAs('xb', 'auto-1', 'auto');
    await b.client.waitOp('transport', (m) => m.transport === 'direct' && m.peer !== undefined);
    expect(plane.workerOf('auto-1')).toBeUndefined();
    const c = await joinAs('xc', 'auto-1', 'auto');
    for (const x of [a, b, c]) {
      await x.client.waitOp('transport', (m) => m.transport === 'server');
      // Everyone gets a server peer (its offer), the two who were direct included.
      await x.client.waitOp('media', (m) => m.kind === 'offer', 10_000);
    }
    expect(plane.workerOf('auto-1')).toBeDefined();
    // Peer messages of the old link are dropped now (the room is on the server).
    const link = (a.client.received.find((m) => m.op === 'transport' && m.transport === 'server') as Transport).link;
    a.client.send({ op: 'peer', room: 'auto-1', kind: 'offer', to: b.self, link, sdp: SDP });

    await c.client.request({ op: 'leave', room: 'auto-1' });
    const back = await a.client.waitOp('transport', (m) => m.transport === 'direct' && m.link > link);
    const backB = await b.client.waitOp('transport', (m) => m.transport === 'direct' && m.link > link);
    expect([back.offerer, backB.offerer].sort()).toEqual([false, true]);
    // Make-before-break: the server peers stay until both report they play the direct link.
    await sleep(300);
    expect(plane.workerOf('auto-1')).toBeDefined();
    a.client.send({ op: 'peer', room: 'auto-1', kind: 'switched', transport: 'direct', link: back.link });
    b.client.send({ op: 'peer', room: 'auto-1', kind: 'switched', transport: 'direct', link: back.link });
    const deadline = Date.now() + 5000;
    while (plane.workerOf('auto-1') !== undefined && Date.now() < deadline) await sleep(50);
    expect(plane.workerOf('auto-1')).toBeUndefined();
    expect(await a.client.waitOp('slots', (m) => m.slots.length === 1 && m.slots[0].participantId === b.self)).toBeTruthy();
    expect(a.client.received.filter((m): m is Peer => m.op === 'peer')).toEqual([]);
  }, 30_000);

  it('auto: a pair whose direct link never comes up (nobody reports switched) moves to the server', async () => {
    const a = await joinAs('za', 'auto-3', 'auto');
    const b = await joinAs('zb', 'auto-3', 'auto');
    const direct = await a.client.waitOp('transport', (m) => m.transport === 'direct' && m.peer !== undefined);
    expect(plane.workerOf('auto-3')).toBeUndefined();
    // No direct route (no TURN, blocked UDP): after p2p.switchTimeoutMs both get the server's media.
    for (const x of [a, b]) {
      const server = await x.client.waitOp('transport', (m) => m.transport === 'server', 6000);
      expect(server.link).toBeGreaterThan(direct.link);
      await x.client.waitOp('media', (m) => m.kind === 'offer', 10_000);
    }
    expect(plane.workerOf('auto-3')).toBeDefined();
  }, 20_000);

  it('auto: a switch back to direct that the clients never finish returns the room to the server', async () => {
    const a = await joinAs('ya', 'auto-2', 'auto');
    const b = await joinAs('yb', 'auto-2', 'auto');
    const c = await joinAs('yc', 'auto-2', 'auto');
    for (const x of [a, b]) await x.client.waitOp('media', (m) => m.kind === 'offer', 10_000);
    const onServer = await a.client.waitOp('transport', (m) => m.transport === 'server');
    await c.client.request({ op: 'leave', room: 'auto-2' });
    const direct = await a.client.waitOp('transport', (m) => m.transport === 'direct' && m.link > onServer.link);
    // Nobody reports `switched` (e.g. no direct route): after p2p.switchTimeoutMs the room is on the server again.
    const server = await a.client.waitOp('transport', (m) => m.transport === 'server' && m.link > direct.link, 6000);
    expect(server.link).toBeGreaterThan(direct.link);
    expect(plane.workerOf('auto-2')).toBeDefined();
  }, 20_000);
});
