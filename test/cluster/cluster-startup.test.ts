import { afterAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/cluster/store.ts';
import { RawClient } from '../signalling/harness.ts';
import { Member, RedisServer, sleep, token, until, untilEveryoneHears, VoxNode } from './harness.ts';

/**
 * A node started while its Redis is not there yet: it runs, says so once (not once per retry or
 * per refused join), refuses joins that need a placement with CLUSTER_UNAVAILABLE, and joins the
 * cluster by itself when Redis starts: registered, joins placed, a call with audio.
 * Ports (range 54600–55199): Redis 54603, RTC 54860–54909.
 */
const STARTUP_LINE = 'cluster registry (Redis) unreachable at start-up: this node runs and keeps retrying; joins that need a room placement are refused (CLUSTER_UNAVAILABLE) until it answers';

describe('Redis unreachable when the node starts', () => {
  const redis = new RedisServer(54603);
  const node = new VoxNode({ id: 'early-node', redisUrl: redis.url, rtcMinPort: 54860, rtcMaxPort: 54909 });
  const members: Member[] = [];

  afterAll(async () => {
    await Promise.all(members.map((m) => m.close()));
    await node.stop();
    await redis.stop();
    node.cleanup();
  });

  it('runs without Redis, logs it once, refuses placements clearly, and heals when Redis comes up', async () => {
    await node.start();
    await until(() => node.lines(STARTUP_LINE).length > 0, 10_000, 'the start-up outage logged');
    expect(node.lines(STARTUP_LINE)[0]).toMatchObject({ level: 50, component: 'cluster', redis: redis.url });
    expect((await node.health()).cluster.redis).toBe('down');

    // Joins that need a placement get the clear code, with no log line per join or per retry.
    for (let i = 0; i < 3; i++) {
      const raw = await RawClient.connect(node.wsUrl);
      await raw.hello(await token(`early-${i}`));
      expect(await raw.request({ op: 'join', room: `early-room-${i}` })).toMatchObject({ op: 'error', code: 'CLUSTER_UNAVAILABLE', about: 'join' });
      raw.close();
    }
    await sleep(2500); // several reconnect attempts (every ≤ 1 s)
    expect(node.lines(STARTUP_LINE)).toHaveLength(1);
    expect(node.lines('cluster registry (Redis) unavailable: calls in progress go on, joins that need a new room placement are refused until it is back')).toHaveLength(0);
    expect(node.output).not.toMatch(/Unhandled error event|uncaught/i);

    // Redis starts: the node registers by itself and places rooms.
    await redis.start();
    await until(async () => (await node.health()).cluster.redis === 'up', 15_000, 'the node sees Redis');
    expect(node.lines('cluster registry (Redis) reachable')).toHaveLength(1);
    const check = redis.client();
    try {
      await until(async () => (await check.exists(keys.node('early-node'))) === 1, 5000, 'the node in the registry');
      const ann = new Member('ann', 440, 'after-start');
      const bob = new Member('bob', 660, 'after-start');
      members.push(ann, bob);
      await ann.join([node.wsUrl]);
      await bob.join([node.wsUrl]);
      expect(await check.get(keys.room('after-start'))).toBe('early-node');
      await untilEveryoneHears([ann, bob], 45_000, 'ann and bob hear each other on the healed node');
    } finally {
      check.disconnect();
    }
    expect(node.lines(STARTUP_LINE)).toHaveLength(1);
  }, 120_000);

  it('a Redis that stalls for less than nodeTtlMs is not an outage; one silent for longer is, logged once', async () => {
    const OUTAGE = 'cluster registry (Redis) unavailable: calls in progress go on, joins that need a new room placement are refused until it is back';
    const SLOW = 'a cluster registry (Redis) command timed out; not an outage unless Redis stays silent for cluster.nodeTtlMs';
    expect((await node.health()).cluster.redis).toBe('up');
    const ask = async (room: string): Promise<unknown> => {
      const raw = await RawClient.connect(node.wsUrl);
      try {
        await raw.hello(await token(`stall-${room}`));
        return await raw.request({ op: 'join', room });
      } finally {
        raw.close();
      }
    };
    // 3 s stalled (the commands' timeout is 2 s, nodeTtlMs 4 s): the join that needed a placement
    // then gets the clear code, the node logs the slow command once and stays up.
    redis.pause();
    const during = ask('stall-short');
    await sleep(3000);
    redis.resume();
    expect(await during).toMatchObject({ op: 'error', code: 'CLUSTER_UNAVAILABLE', about: 'join' });
    await sleep(1500); // a heartbeat after Redis answers again
    expect(node.lines(SLOW).length).toBeGreaterThanOrEqual(1);
    expect(node.lines(OUTAGE)).toHaveLength(0);
    expect((await node.health()).cluster.redis).toBe('up');
    expect(await ask('after-short-stall')).toMatchObject({ op: 'joined' });

    // 7 s stalled (longer than nodeTtlMs): an outage, logged once, healed when Redis answers.
    const reachable = node.lines('cluster registry (Redis) reachable').length;
    redis.pause();
    try {
      await until(() => node.lines(OUTAGE).length > 0, 12_000, 'the outage logged');
      expect((await node.health()).cluster.redis).toBe('down');
    } finally {
      redis.resume();
    }
    await until(async () => (await node.health()).cluster.redis === 'up', 10_000, 'Redis reachable again');
    expect(node.lines(OUTAGE)).toHaveLength(1);
    expect(node.lines('cluster registry (Redis) reachable')).toHaveLength(reachable + 1);
    expect(await ask('after-long-stall')).toMatchObject({ op: 'joined' });
  }, 60_000);
});
