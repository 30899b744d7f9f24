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
});
