import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNode } from '../../src/cluster/node.ts';
import { keys } from '../../src/cluster/store.ts';
import { loadConfig } from '../../src/config.ts';
import type { SignallingCore } from '../../src/signalling/core.ts';
import { powerAt } from '../codec/signal.ts';
import { decodeRecording } from '../recording/decode.ts';
import { RawClient } from '../signalling/harness.ts';
import { Member, PRESENT, readRecording, recordedTones, RedisServer, SECRET, sleep, token, until, untilEveryoneHears, VoxNode } from './harness.ts';

/**
 * Failures other than a crash, with a real redis-server: the claim race (in this process, many
 * nodes on one Redis), Redis going away mid-call and coming back empty, and SIGTERM of a room's
 * owner while it records. Ports (range 54600–55199): Redis 54601–54602, RTC 54760–54859.
 */

describe('two nodes racing for one room', () => {
  const redis = new RedisServer(54601);
  const racers: ClusterNode[] = [];

  beforeAll(async () => {
    await redis.start();
  }, 20_000);

  afterAll(async () => {
    await Promise.all(racers.map((n) => n.close()));
    await redis.stop();
  });

  it('every join of every node agrees on exactly one owner per room', async () => {
    const core = { redirectRoom: () => 0 } as unknown as SignallingCore;
    for (const id of ['race-1', 'race-2', 'race-3']) {
      const config = loadConfig({ env: {}, overrides: { auth: { hs256Secret: SECRET }, cluster: { redisUrl: redis.url, nodeId: id } } });
      const node = ClusterNode.create(config, { version: 'test', hs256Secret: SECRET });
      racers.push(node);
      node.start(`ws://${id}.invalid/ws`, core);
    }
    await until(() => racers.every((n) => n.available && n.health().cluster.nodes.length === 3), 10_000, 'three racers registered');
    const rooms = Array.from({ length: 20 }, (_, i) => `race-room-${i}`);
    const answers = await Promise.all(rooms.flatMap((room) => racers.flatMap((n) => [n.route(room), n.route(room)].map(async (r) => ({ room, node: n.id, route: await r })))));
    const redisClient = redis.client();
    try {
      for (const room of rooms) {
        const owner = await redisClient.get(keys.room(room));
        expect(owner, room).toMatch(/^race-\d$/);
        for (const a of answers.filter((x) => x.room === room)) {
          // The owner serves it; everyone else redirects there with a ticket for the owner.
          if (a.node === owner) expect(a.route).toEqual({ kind: 'local' });
          else expect(a.route).toMatchObject({ kind: 'redirect', url: `ws://${owner}.invalid/ws` });
        }
      }
    } finally {
      redisClient.disconnect();
    }
  });
});

describe('Redis outage and SIGTERM with two node processes', () => {
  const redis = new RedisServer(54602);
  const nodes = [
    new VoxNode({ id: 'node-x', redisUrl: redis.url, rtcMinPort: 54760, rtcMaxPort: 54809 }),
    new VoxNode({ id: 'node-y', redisUrl: redis.url, rtcMinPort: 54810, rtcMaxPort: 54859 }),
  ];
  const members: Member[] = [];
  const entries = (i: number): string[] => [nodes[i].wsUrl, nodes[1 - i].wsUrl];

  beforeAll(async () => {
    await redis.start();
    await Promise.all(nodes.map((n) => n.start()));
    await until(async () => (await Promise.all(nodes.map((n) => n.health()))).every((h) => h.cluster.nodes.length === 2), 10_000, 'two nodes registered');
  }, 90_000);

  afterAll(async () => {
    await Promise.all(members.map((m) => m.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    for (const n of nodes) n.cleanup();
  });

  it('a resume that reaches the node not holding the session gets invalid_session; the original node still resumes it', async () => {
    const raw = await RawClient.connect(nodes[0].wsUrl);
    const ready = await raw.hello(await token('roamer'));
    expect(await raw.request({ op: 'join', room: 'roaming' })).toMatchObject({ op: 'joined' });
    raw.drop();
    const elsewhere = await RawClient.connect(nodes[1].wsUrl);
    expect(await elsewhere.request({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: raw.lastSeq() })).toMatchObject({
      op: 'invalid_session',
      reason: 'unknown_session',
    });
    elsewhere.close();
    // The node holding it resumes it as on one node (the SDK would have re-joined, routed like any join).
    const back = await RawClient.connect(nodes[0].wsUrl);
    expect(await back.request({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: raw.lastSeq() })).toMatchObject({ op: 'resumed' });
    back.close();
  });

  it('Redis down: the call goes on, a new placement gets CLUSTER_UNAVAILABLE, logged once; Redis back: joins work', async () => {
    const ann = new Member('ann', 440, 'outage');
    const bob = new Member('bob', 660, 'outage');
    members.push(ann, bob);
    await ann.join(entries(0));
    await bob.join(entries(1)); // sent to node-x
    await untilEveryoneHears([ann, bob], 45_000, 'ann and bob hear each other');

    await redis.stop();
    await until(() => nodes.every((n) => n.lines('cluster registry (Redis) unavailable: calls in progress go on, joins that need a new room placement are refused until it is back').length === 1), 10_000, 'the outage logged');
    // Fresh audio after the outage began: the call goes on.
    const since = Date.now();
    for (const m of [ann, bob]) m.media!.clearRecordings();
    await untilEveryoneHears([ann, bob], 15_000, 'the call goes on without Redis');
    expect(Date.now() - since).toBeLessThan(15_000);

    // Joins that need Redis fail with the clear code, again and again, without more log lines.
    for (const node of nodes) {
      for (let i = 0; i < 3; i++) {
        const raw = await RawClient.connect(node.wsUrl);
        await raw.hello(await token(`late-${node.id}-${i}`));
        expect(await raw.request({ op: 'join', room: `fresh-${i}` })).toMatchObject({ op: 'error', code: 'CLUSTER_UNAVAILABLE', about: 'join' });
        raw.close();
      }
    }
    // The owner still admits a join for a room it holds (no placement needed).
    const carl = await RawClient.connect(nodes[0].wsUrl);
    await carl.hello(await token('carl'));
    expect(await carl.request({ op: 'join', room: 'outage' })).toMatchObject({ op: 'joined' });
    carl.close();
    for (const n of nodes) expect(n.lines('cluster registry (Redis) unavailable: calls in progress go on, joins that need a new room placement are refused until it is back')).toHaveLength(1);
    for (const n of nodes) expect((await n.health()).cluster.redis).toBe('down');

    // Redis comes back empty: the nodes re-register and re-claim their rooms by themselves.
    await redis.start();
    await until(async () => (await Promise.all(nodes.map((n) => n.health()))).every((h) => h.cluster.redis === 'up' && h.cluster.nodes.length === 2), 15_000, 'nodes back in the registry');
    const check = redis.client();
    try {
      await until(async () => (await check.get(keys.room('outage'))) === 'node-x', 10_000, 'the room lease re-claimed by its owner');
    } finally {
      check.disconnect();
    }
    const dana = await RawClient.connect(nodes[1].wsUrl);
    await dana.hello(await token('dana'));
    const reply = await dana.request({ op: 'join', room: 'after-outage' });
    expect(['joined', 'redirect']).toContain(reply.op);
    dana.close();
    for (const n of nodes) expect(n.lines('cluster registry (Redis) reachable').length).toBeGreaterThanOrEqual(1);
    await untilEveryoneHears([ann, bob], 10_000, 'the call still goes on');
  }, 120_000);

  it('SIGTERM of the owner: clients move to the other node, hear each other there, the recording is valid and goes on there, the node exits', async () => {
    const [ann, bob] = members;
    const ownerIndex = (await nodes[0].health()).participants > 0 ? 0 : 1;
    const owner = nodes[ownerIndex];
    const other = nodes[1 - ownerIndex];
    // Start a recording on the owner through a raw client with the record grant (it leaves before the move).
    const rec = await RawClient.connect(owner.wsUrl);
    await rec.hello(await token('recorder', ['join', 'record']));
    expect(await rec.request({ op: 'join', room: 'outage' })).toMatchObject({ op: 'joined' });
    const started = await rec.request({ op: 'record', room: 'outage', action: 'start' });
    expect(started).toMatchObject({ op: 'recording', recording: true });
    const recordingId = (started as { id: string }).id;
    await sleep(2500);
    rec.close(); // the recording is the room's: it goes on without the one who started it
    await sleep(200);

    const termAt = Date.now();
    owner.kill('SIGTERM');
    await untilEveryoneHears([ann, bob], 30_000, 'ann and bob hear each other on the other node', () => [ann, bob].every((m) => m.mediaSince > termAt));
    console.log(`SIGTERM move: hearing each other again after ${((Date.now() - termAt) / 1000).toFixed(1)} s`);
    expect(await owner.exited).toBe(0);
    expect(Date.now() - termAt).toBeLessThan(8000 + 5000);
    expect(owner.lines('room handed to another node')).toHaveLength(1);
    // It left the registry on its way out (no TTL to wait for).
    await until(async () => (await other.health()).cluster.nodes.length === 1, 3000, 'the stopped node gone from the registry');
    for (const m of [ann, bob]) expect(m.rooms.at(-1)?.reason).toBe('rejoined');

    // The recording closed cleanly on the old node: manifest stopped, every file parses without
    // truncation, and ann's and bob's tones from before the move are in their tracks.
    const dir = join(owner.dataDir, 'recordings', recordingId);
    expect(existsSync(dir)).toBe(true);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { stoppedAt?: number; files: { userId: string; file: string }[] };
    expect(manifest.stoppedAt).toBeGreaterThan(0);
    const files = readdirSync(dir).filter((f) => f.endsWith('.opus'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    const annFile = manifest.files.find((f) => f.userId === 'ann')!;
    const decoded = decodeRecording(readFileSync(join(dir, annFile.file)));
    expect(decoded.file.truncated).toBe(false);
    expect(decoded.pcm.length).toBeGreaterThan(48_000);
    expect(powerAt(decoded.pcm.subarray(0, 48_000), 48_000, 440)).toBeGreaterThan(0.01);
    const before = readRecording(owner, recordingId)!;
    expect(before.tracks.every((t) => !t.truncated)).toBe(true);
    const tonesBefore = recordedTones(owner, recordingId, [ann, bob]);
    expect(tonesBefore.ann, 'ann in the first recording').toBeGreaterThan(PRESENT);
    expect(tonesBefore.bob, 'bob in the first recording').toBeGreaterThan(PRESENT);

    // The recording went on on the new owner: a new recording there, announced to the room and
    // chained to the first in the node's log; ann's and bob's tones after the move are in it.
    await until(() => [ann, bob].every((m) => (m.client.room('outage')?.recording?.id ?? recordingId) !== recordingId), 15_000, 'the continued recording announced to the room');
    const continued = ann.client.room('outage')!.recording!.id;
    expect(bob.client.room('outage')!.recording!.id).toBe(continued);
    expect(other.lines('recording continued after the room moved here')).toMatchObject([{ roomId: 'outage', from: owner.id, previous: recordingId, id: continued, first: recordingId, part: 1 }]);
    expect(readRecording(other, continued)?.continues).toEqual({ previous: recordingId, first: recordingId, part: 1, reason: 'room_moved', node: owner.id });
    let after: Record<string, number> = {};
    try {
      await until(
        () => {
          after = recordedTones(other, continued, [ann, bob]);
          return after.ann > PRESENT && after.bob > PRESENT;
        },
        15_000,
        'both tones in the continued recording',
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(after)}`);
    }
    // The cluster knows which node records the room now.
    const check = redis.client();
    try {
      expect(JSON.parse((await check.get(keys.recording('outage')))!)).toMatchObject({ node: other.id, id: continued, first: recordingId, part: 1 });
    } finally {
      check.disconnect();
    }
  }, 90_000);
});
