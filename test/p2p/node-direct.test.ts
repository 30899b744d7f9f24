import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtpHeader, RtpPacket } from 'werift';
import { OpusEncoder } from '../../src/codec/index.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { startTestServer, type TestServer } from '../signalling/harness.ts';
import { until } from '../web/page-harness.ts';
import { ToneParticipant } from './node-harness.ts';

/**
 * The Node SDK in `auto` rooms (werift on both ends, real server and media plane): two Node
 * clients talk directly while the server forwards nothing for them; a third moves everyone to the
 * server make-before-break and all hear each other; it leaves and the two return to direct. The
 * gap at each switch is measured on the sender's media clock (frames never played). While direct,
 * speaking events come from the clients' level reports and a moderator's mute silences the link.
 * A client without `direct` keeps an `auto` room on the server and is refused by a `p2p` room.
 */

const ROOM = 'node-duo';
/** Ports of this file's media plane (the p2p helper's range). */
const RTC_PORTS = { rtcMinPort: 55800, rtcMaxPort: 55899 };

describe('auto room with the Node SDK: direct for two, the server from three', () => {
  let plane: PooledMediaPlane;
  let t: TestServer;
  let metricsUrl: string;
  const everyone: ToneParticipant[] = [];
  let alice: ToneParticipant;
  let bob: ToneParticipant;

  async function metric(prefix: string): Promise<string[]> {
    const text = await (await fetch(metricsUrl)).text();
    return text.split('\n').filter((line) => line.startsWith(prefix));
  }

  async function value(prefix: string): Promise<number> {
    const found = await metric(prefix);
    return found.length === 0 ? 0 : Number(found[0].slice(found[0].lastIndexOf(' ') + 1));
  }

  async function participant(name: string, hz: number, room: string, options: { direct: boolean; admin?: boolean; mode?: 'auto' | 'p2p' }): Promise<ToneParticipant> {
    const p = new ToneParticipant(name, hz, { direct: options.direct });
    everyone.push(p);
    const token = await t.token(name.toLowerCase(), { name, grants: ['join', 'publish', 'subscribe', ...(options.admin ? (['admin'] as const) : [])] });
    await p.join(t.wsUrl, token, room, options.mode ?? 'auto');
    return p;
  }

  async function hears(listener: ToneParticipant, speaker: ToneParticipant, what: string): Promise<void> {
    const heard = await until(`${listener.name} hears ${speaker.name} (${what})`, async () => listener.heard(speaker), (h) => h.rms > 0.05 && h.toneDb > 10, 15_000);
    expect(heard.toneDb, `${listener.name}: ${speaker.hz} Hz dominates ${speaker.name}'s audio (${what})`).toBeGreaterThan(10);
  }

  beforeAll(async () => {
    plane = createMediaPlane({ room: { slots: 3, announcedIp: '127.0.0.1', ...RTC_PORTS, mode: 'sfu' }, pool: { workers: 1 } });
    await plane.pool.ready();
    t = await startTestServer({ metrics: { enabled: true }, p2p: { switchTimeoutMs: 15_000 } }, { mediaPlane: plane });
    metricsUrl = `http://127.0.0.1:${t.server.port}/metrics`;
  });

  afterAll(async () => {
    for (const p of everyone) await p.leave(p.media?.room ?? ROOM).catch(() => undefined);
    await t?.close();
    await plane?.close();
  });

  it('two Node clients hear each other directly; the server starts no media room and forwards nothing', async () => {
    alice = await participant('Alice', 440, ROOM, { direct: true, admin: true });
    bob = await participant('Bob', 660, ROOM, { direct: true });
    for (const p of [alice, bob]) {
      await until(`${p.name} plays the direct link`, async () => p.media.transport, (path) => path === 'direct', 20_000);
      await p.media.connected(20_000);
      p.startTone();
    }
    await hears(alice, bob, 'direct');
    await hears(bob, alice, 'direct');
    expect(plane.workerOf(ROOM)).toBeUndefined();
    expect(await metric(`voxlink_room_packets_out_total{room="${ROOM}"}`)).toEqual([]);
    expect(await metric(`voxlink_room_packets_in_total{room="${ROOM}"}`)).toEqual([]);
    expect(await value('voxlink_p2p_rooms ')).toBe(1);
    expect(await value('voxlink_p2p_participants ')).toBe(2);
  }, 60_000);

  it('while direct, speaking events come from the clients’ level reports', async () => {
    const events: { participantId: string; speaking: boolean }[] = [];
    alice.client.on('speaking', (e) => events.push(e));
    // Both tones run since the first test: the room's model already says Bob speaks (a `speaking` event did).
    await until('Alice sees Bob speaking', async () => alice.client.room(ROOM)?.participants.get(bob.participantId)?.speaking, (s) => s === true, 10_000);
    await until('Bob sees Alice speaking', async () => bob.client.room(ROOM)?.participants.get(alice.participantId)?.speaking, (s) => s === true, 10_000);
    // Bob goes quiet (a silent source): the room hears he stopped.
    bob.source.gain = 0;
    await until('Alice is told Bob stopped', async () => events.filter((e) => e.participantId === bob.participantId).at(-1), (e) => e?.speaking === false, 10_000);
    bob.source.gain = 0.3;
    await until('Bob speaks again', async () => events.filter((e) => e.participantId === bob.participantId).at(-1), (e) => e?.speaking === true, 10_000);
    // Still direct: the levels went over signalling, not RTP through the server.
    expect(plane.workerOf(ROOM)).toBeUndefined();
  }, 40_000);

  it('a moderator mutes the other end of a direct link: it stops sending, and what it sends anyway is not played; unmuted, it is heard again', async () => {
    let raw = 0;
    for (const t of alice.media.directPc!.getTransceivers()) for (const track of t.receiver.tracks) track.onReceiveRtp.subscribe(() => raw++);
    expect(await until('RTP from Bob on the link', async () => raw, (n) => n > 10, 5000)).toBeGreaterThan(10);
    const speaking: boolean[] = [];
    alice.client.on('speaking', (e) => {
      if (e.participantId === bob.participantId) speaking.push(e.speaking);
    });
    await alice.client.mute(ROOM, bob.participantId);
    await until('Bob sees himself muted', async () => bob.client.room(ROOM)?.self?.muted, (m) => m === true);
    await new Promise((r) => setTimeout(r, 500));
    const before = raw;
    alice.media.clearRecordings();
    await new Promise((r) => setTimeout(r, 1500));
    // Bob's SDK sends nothing on the link (his tone is still running), and Alice decodes nothing of him.
    expect(raw - before, 'RTP packets from a muted Bob').toBeLessThan(3);
    expect(alice.heard(bob).rms).toBe(0);
    // A client that ignored the mute and kept sending on the link is not heard either: the
    // receiving SDK drops a server-muted participant's packets (Bob's werift sender, past his SDK).
    const encoder = new OpusEncoder({ sampleRate: 48_000, channels: 1 });
    const tone = new Float32Array(960).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 660 * i) / 48_000));
    const sender = bob.media.directPc!.getTransceivers()[0].sender;
    const rogue = raw;
    for (let i = 0; i < 50; i++) {
      const header = new RtpHeader({ payloadType: 111, sequenceNumber: 60_000 + i, timestamp: i * 960, marker: i === 0 });
      await sender.sendRtp(new RtpPacket(header, Buffer.from(encoder.encode(tone))));
      await new Promise((r) => setTimeout(r, 20));
    }
    encoder.close();
    await until('the rogue packets arrive', async () => raw - rogue, (n) => n >= 40, 5000);
    expect(alice.heard(bob).rms, 'nothing of the muted Bob decoded').toBe(0);
    expect(speaking.at(-1), 'muted: Bob no longer speaking').toBe(false);
    expect(plane.workerOf(ROOM)).toBeUndefined();
    await bob.client.unmute(ROOM);
    await hears(alice, bob, 'unmuted');
  }, 40_000);

  it('a malformed offer from one end gets a clear error; the direct call goes on', async () => {
    const errors: string[] = [];
    bob.client.on('error', (e) => errors.push(`${e.serverCode}: ${e.detail}`));
    expect(bob.media.directPc).not.toBeNull();
    bob.client.sendMedia({ op: 'peer', room: ROOM, kind: 'offer', to: alice.participantId, link: 0, sdp: 'v=0\r\nnot sdp\r\n' });
    await until('Bob is told why', async () => errors, (e) => e.length > 0, 5000);
    expect(errors[0]).toMatch(/INVALID_MESSAGE.*sdp line 2/);
    alice.media.clearRecordings();
    await hears(alice, bob, 'after the malformed offer');
    await hears(bob, alice, 'after the malformed offer');
    expect(alice.media.transport).toBe('direct');
  }, 30_000);

  let carol: ToneParticipant;

  it('a third joins: everyone moves to the server make-before-break, without a gap, and all three hear each other', async () => {
    const marks = { ab: alice.markPlayed(bob.participantId), ba: bob.markPlayed(alice.participantId) };
    carol = await participant('Carol', 880, ROOM, { direct: true });
    await carol.media.connected(20_000);
    carol.startTone();
    for (const p of [alice, bob, carol]) await until(`${p.name} on the server`, async () => p.media.transport, (path) => path === 'server', 30_000);
    await until('the switch reported done', () => value('voxlink_p2p_switches_total{to="server",outcome="done"}'), (v) => v === 1, 20_000);
    const gaps = { alice: alice.gapSince(bob.participantId, marks.ab), bob: bob.gapSince(alice.participantId, marks.ba) };
    console.log(`Node switch to the server: ${JSON.stringify(gaps)}`);
    for (const gap of Object.values(gaps)) {
      expect(gap.known).toBeGreaterThan(50);
      expect(gap.gapMs, 'no audible gap: never 100 ms of the other one missing').toBeLessThan(100);
    }
    for (const listener of [alice, bob, carol]) {
      for (const speaker of [alice, bob, carol]) if (speaker !== listener) await hears(listener, speaker, 'via the server');
    }
    expect(plane.workerOf(ROOM)).toBeDefined();
    await until('the server forwards for them', () => value(`voxlink_room_packets_out_total{room="${ROOM}"}`), (v) => v > 0, 10_000);
    expect(await value('voxlink_p2p_rooms ')).toBe(0);
  }, 90_000);

  it('the third leaves: the two return to direct make-before-break and still hear each other', async () => {
    const marks = { ab: alice.markPlayed(bob.participantId), ba: bob.markPlayed(alice.participantId) };
    await carol.leave(ROOM);
    for (const p of [alice, bob]) await until(`${p.name} direct again`, async () => p.media.transport, (path) => path === 'direct', 20_000);
    await until('the switch back reported done', () => value('voxlink_p2p_switches_total{to="direct",outcome="done"}'), (v) => v === 1, 20_000);
    const gaps = { alice: alice.gapSince(bob.participantId, marks.ab), bob: bob.gapSince(alice.participantId, marks.ba) };
    console.log(`Node switch back to direct: ${JSON.stringify(gaps)}`);
    for (const gap of Object.values(gaps)) {
      expect(gap.known).toBeGreaterThan(50);
      expect(gap.gapMs, 'no audible gap: never 100 ms of the other one missing').toBeLessThan(100);
    }
    await hears(alice, bob, 'direct again');
    await hears(bob, alice, 'direct again');
    await until('the media room closed', async () => plane.workerOf(ROOM), (w) => w === undefined, 15_000);
    expect(await metric(`voxlink_room_packets_out_total{room="${ROOM}"}`)).toEqual([]);
    expect(await value('voxlink_p2p_participants ')).toBe(2);
  }, 90_000);

  it('a client that cannot connect directly keeps an auto room on the server, and a p2p room refuses it', async () => {
    const room = 'node-mixed';
    const dana = await participant('Dana', 520, room, { direct: true });
    const eve = await participant('Eve', 780, room, { direct: false });
    for (const p of [dana, eve]) {
      await p.media.connected(20_000);
      p.startTone();
    }
    await hears(dana, eve, 'via the server');
    await hears(eve, dana, 'via the server');
    expect(dana.media.transport).toBe('server');
    expect(plane.workerOf(room)).toBeDefined();
    await until('the server forwards for them', () => value(`voxlink_room_packets_out_total{room="${room}"}`), (v) => v > 0, 10_000);

    const p2p = await participant('Finn', 600, 'node-p2p', { direct: true, mode: 'p2p' });
    const refused = new ToneParticipant('Gus', 700, { direct: false });
    everyone.push(refused);
    const error = await refused.join(t.wsUrl, await t.token('gus'), 'node-p2p', 'p2p').catch((e: unknown) => e);
    expect(error).toMatchObject({ serverCode: 'DIRECT_REQUIRED' });
    expect((error as { detail: string }).detail).toMatch(/cannot connect directly.*use mode auto/);
    expect(p2p.client.room('node-p2p')?.participants.size).toBe(1);
  }, 60_000);
});
