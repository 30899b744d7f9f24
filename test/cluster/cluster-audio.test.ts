import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../src/client/admin.ts';
import { keys } from '../../src/cluster/store.ts';
import { Member, PRESENT, readRecording, recordedTones, RedisServer, sleep, token, until, untilEveryoneHears, VoxNode } from './harness.ts';

/**
 * Three VoxLink processes on one real redis-server. Three werift tone clients, each connected to
 * a different node, land in one room on one node and each hears the other two tones; after
 * `kill -9` of that node the SDK takes everyone to a live node, the room is claimed again there
 * and everyone hears everyone again within 15 s; the recording running on the killed node goes on
 * as a new recording on the new owner, and both carry every tone.
 * Ports (range 54600–55199): Redis 54600, RTC 54610–54759.
 */
const ROOM = 'cluster-call';
const root = new URL('../../', import.meta.url).pathname;

describe('three nodes, one room, kill -9 of its owner', () => {
  const redis = new RedisServer(54600);
  const nodes = [
    new VoxNode({ id: 'node-a', redisUrl: redis.url, rtcMinPort: 54610, rtcMaxPort: 54659 }),
    new VoxNode({ id: 'node-b', redisUrl: redis.url, rtcMinPort: 54660, rtcMaxPort: 54709 }),
    new VoxNode({ id: 'node-c', redisUrl: redis.url, rtcMinPort: 54710, rtcMaxPort: 54759 }),
  ];
  const members = [new Member('ann', 440, ROOM), new Member('bob', 660, ROOM), new Member('cy', 880, ROOM)];
  /** Each member's entry URLs: its own node first, then the others (DNS round robin would give the same). */
  const entries = (i: number): string[] => [0, 1, 2].map((k) => nodes[(i + k) % 3].wsUrl);

  beforeAll(async () => {
    await redis.start();
    await Promise.all(nodes.map((n) => n.start()));
    // Every node sees the other two.
    await until(async () => (await Promise.all(nodes.map((n) => n.health()))).every((h) => h.cluster.nodes.length === 3), 10_000, 'three nodes registered');
  }, 90_000);

  afterAll(async () => {
    for (const n of nodes) for (const line of n.problems()) console.log(line);
    await Promise.all(members.map((m) => m.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    for (const n of nodes) n.cleanup();
  });

  it('clients connected to different nodes land in one room on one node and hear each other', async () => {
    // ann's node places the room (all loads are 0: the node asked keeps it, no redirect).
    const t0 = performance.now();
    await members[0].join(entries(0), ['join', 'publish', 'subscribe', 'record']);
    const direct = performance.now() - t0;
    const t1 = performance.now();
    await members[1].join(entries(1));
    const routed = performance.now() - t1;
    await members[2].join(entries(2));
    console.log(`join: direct ${direct.toFixed(0)} ms, routed via another node ${routed.toFixed(0)} ms`);

    await until(() => members.every((m) => m.client.room(ROOM)!.participants.size === 3), 5000, 'everyone sees three participants');
    const health = await Promise.all(nodes.map((n) => n.health()));
    expect(health.map((h) => h.participants)).toEqual([3, 0, 0]);

    await untilEveryoneHears(members, 45_000, 'everyone hears everyone');
    for (const m of members) {
      for (const o of members) if (o !== m) expect(m.powerOf(o), `${m.userId} hears ${o.userId}`).toBeGreaterThan(0.01);
    }
    // Speaking events reach everyone, whichever node they connected to (all of them are on the room's node).
    await until(() => members.every((m) => members.every((o) => o === m || m.heardSpeaking(o))), 10_000, 'everyone told that everyone else speaks');

    // The cluster-wide room list, asked on a node that does not hold the room.
    const admin = new AdminClient({ url: nodes[2].httpUrl, token: await token('ops', ['admin']) });
    await until(async () => (await admin.listClusterRooms()).some((r) => r.participants === 3), 5000, 'room list written behind');
    expect(await admin.listClusterRooms()).toEqual([{ room: ROOM, node: 'node-a', participants: 3, mode: 'sfu', recording: false }]);

    // The operator's view: `voxlink cluster --json` reads the same registry.
    const cli = JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'cluster', '--json'], { cwd: root, env: { ...process.env, VOXLINK_REDIS_URL: redis.url }, encoding: 'utf8' }),
    ) as { nodes: { id: string; load: number }[]; rooms: { room: string; node: string }[] };
    expect(cli.nodes.map((n) => [n.id, n.load])).toEqual([['node-a', 3], ['node-b', 0], ['node-c', 0]]);
    expect(cli.rooms).toMatchObject([{ room: ROOM, node: 'node-a', participants: 3 }]);
  }, 90_000);

  it('after kill -9 of the owner everyone hears everyone again within 15 s, on one live node, and the recording goes on there', async () => {
    // ann records the call on node-a; its entry reaches Redis with the write-behind (≤ 250 ms).
    const recordingId = (await members[0].client.record(ROOM, 'start'))!;
    expect(recordingId).toEqual(expect.any(String));
    const check = redis.client();
    try {
      await until(async () => (await check.get(keys.recording(ROOM))) !== null, 5000, 'the recording known to the cluster');
    } finally {
      check.disconnect();
    }
    await sleep(2500); // tones recorded and flushed (every second)

    const killedAt = Date.now();
    nodes[0].kill('SIGKILL');
    await untilEveryoneHears(members, 30_000, 'everyone hears everyone after the owner died', () => members.every((m) => m.mediaSince > killedAt));
    const failoverS = (Date.now() - killedAt) / 1000;
    const rejoined = members.map((m) => `${m.userId} ${((m.rooms.at(-1)!.at - killedAt) / 1000).toFixed(1)} s`).join(', ');
    console.log(`failover after kill -9: re-joined ${rejoined}; everyone hears everyone after ${failoverS.toFixed(1)} s`);
    expect(failoverS).toBeLessThan(15);
    const health = await Promise.all(nodes.slice(1).map((n) => n.health()));
    expect(health.map((h) => h.participants).sort()).toEqual([0, 3]);
    expect(health[0].cluster.nodes.map((n) => n.id)).toEqual(['node-b', 'node-c']);
    for (const m of members) {
      expect(m.client.room(ROOM)!.participants.size).toBe(3);
      expect(m.rooms.at(-1)?.reason).toBe('rejoined');
    }

    // What node-a recorded up to its last flushed page decodes and carries every tone.
    const before = recordedTones(nodes[0], recordingId, members);
    for (const m of members) expect(before[m.userId], `${m.userId} in the recording before the kill`).toBeGreaterThan(PRESENT);

    // The new owner continued the recording: a new id, told to everyone, with every tone after the kill.
    const owner = nodes[1 + health.findIndex((h) => h.participants === 3)];
    await until(() => members.every((m) => (m.client.room(ROOM)?.recording?.id ?? recordingId) !== recordingId), 10_000, 'the continued recording announced');
    const continued = members[0].client.room(ROOM)!.recording!.id;
    expect(owner.lines('recording continued after the room moved here')).toMatchObject([{ roomId: ROOM, from: 'node-a', previous: recordingId, id: continued, first: recordingId, part: 1 }]);
    // The chain is in the new recording's manifest too, for whoever reads the recordings later.
    expect(readRecording(owner, continued)?.continues).toEqual({ previous: recordingId, first: recordingId, part: 1, reason: 'room_moved', node: 'node-a' });
    let after: Record<string, number> = {};
    try {
      await until(
        () => {
          after = recordedTones(owner, continued, members);
          return members.every((m) => after[m.userId] > PRESENT);
        },
        15_000,
        'every tone in the continued recording',
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(after)}`);
    }
  }, 90_000);
});
