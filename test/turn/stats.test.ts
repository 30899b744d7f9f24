import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsText } from '../../src/metrics/registry.ts';
import { restCredentials } from '../../src/turn/credentials.ts';
import { turnMetrics } from '../../src/turn/metrics.ts';
import { stopTurn } from '../../src/turn/service.ts';
import { CoturnStatsReader, parseChannel, parseStatus, parseTraffic, userOf } from '../../src/turn/stats.ts';
import { startTestServer, type TestServer } from '../signalling/harness.ts';
import { startCoturn, type Coturn } from './coturn.ts';
import { sleep } from './harness.ts';
import { sample } from './metrics-text.ts';
import { startRedis, type RedisService } from './services.ts';
import { TurnSession } from './stun.ts';

const REALM = 'voxlink.test';
const STATS_DB = 3;

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

describe('coturn redis-statsdb parsing (formats of coturn 4.6)', () => {
  it('channels, statuses, traffic and user ids', () => {
    expect(parseChannel('turn/realm/voxlink.test/user/1700000000:alice/allocation/000000000000000003/status')).toEqual({
      realm: 'voxlink.test',
      username: '1700000000:alice',
      id: '000000000000000003',
      kind: 'status',
    });
    expect(parseChannel('turn/user/bob/allocation/000000000000000004/total_traffic/peer')?.kind).toBe('total_traffic/peer');
    expect(parseChannel('turn/realm/x/user/u/allocation/1/other')).toBeNull();
    expect(parseStatus('new lifetime=600, type=TLS, local=127.0.0.1:5349, remote=127.0.0.1:5000, ssl=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384')).toEqual({ state: 'new', lifetimeSec: 600, type: 'TLS' });
    expect(parseStatus('refreshed lifetime=0')).toEqual({ state: 'refreshed', lifetimeSec: 0, type: 'UDP' });
    expect(parseStatus('deleted')).toBeNull();
    expect(parseTraffic('rcvp=12, rcvb=3400, sentp=5, sentb=600')).toEqual({ rcvp: 12, rcvb: 3400, sentp: 5, sentb: 600 });
    expect(parseTraffic('rcvp=12, rcvb=x')).toBeNull();
    expect(userOf('1700000000:alice:with:colons')).toBe('alice:with:colons');
    expect(userOf('plain-user')).toBe('plain-user');
  });
});

describe("TURN statistics in /metrics from a real coturn's redis-statsdb", () => {
  let redis: RedisService;
  let coturn: Coturn;
  let t: TestServer;
  let peer: Socket;
  let peerPort: number;
  let peerPackets = 0;
  let peerBytes = 0;

  beforeAll(async () => {
    redis = await startRedis();
    coturn = await startCoturn({ realm: REALM, values: { 'redis-statsdb': `"${redis.coturnConn(STATS_DB)}"` } });
    t = await startTestServer({ turn: { urls: [coturn.url], secret: coturn.secret, ttlSec: 600, stats: { redisUrl: redis.url(STATS_DB) } } });
    peer = createSocket('udp4');
    peer.on('message', (m) => {
      peerPackets++;
      peerBytes += m.length;
    });
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
    peer.setRecvBufferSize(4 * 1024 * 1024); // a loaded host should not drop the burst at our socket
    peerPort = peer.address().port;
  }, 30_000);

  afterAll(async () => {
    peer?.close();
    await t?.close();
    await stopTurn();
    await coturn?.close();
    await redis?.close();
  });

  it('allocations go 0 → 2 → 0, traffic counters grow while the allocation lives and end at what the peer received, per user', async () => {
    // The server does not wait for the statistics at start (Redis may come later).
    await until(async () => sample(await metricsText(), 'voxlink_turn_stats_up') === 1, 5_000, 'the reader subscribed');
    expect(sample(await metricsText(), 'turn_total_allocations', { type: 'UDP' })).toBe(0);
    const sessions: TurnSession[] = [];
    for (const user of ['uma', 'vic']) {
      const c = restCredentials(coturn.secret, user, 600, []);
      const s = await TurnSession.open(coturn.host, coturn.port);
      expect((await s.allocate(c.username, c.credential)).kind).toBe('success');
      sessions.push(s);
    }
    await until(async () => sample(await metricsText(), 'turn_total_allocations', { type: 'UDP' }) === 2, 5_000, 'two allocations');

    // uma relays 3000 datagrams of 100 bytes to the peer. coturn reports a session's traffic every
    // 4096 packets (both legs counted), so an interim report comes while the allocation is up.
    const [uma, vic] = sessions;
    expect((await uma.createPermission('127.0.0.1')).kind).toBe('success');
    const payload = Buffer.alloc(100, 7);
    for (let i = 0; i < 30; i++) {
      uma.send('127.0.0.1', peerPort, payload, 100);
      await sleep(5);
    }
    await until(async () => sample(await metricsText(), 'turn_traffic_rcvp', { realm: REALM, user: 'uma' }) > 0, 10_000, 'an interim traffic report');
    const live = await metricsText();
    expect(sample(live, 'turn_total_allocations', { type: 'UDP' }), 'still allocated').toBe(2);
    expect(sample(live, 'turn_traffic_peer_sentp', { realm: REALM, user: 'uma' })).toBeGreaterThan(1000);
    expect(sample(live, 'turn_total_traffic_rcvb')).toBeGreaterThan(100_000);

    for (const s of sessions) {
      expect((await s.refresh(0)).kind).toBe('success');
      s.close();
    }
    void vic;
    await until(async () => sample(await metricsText(), 'turn_total_allocations', { type: 'UDP' }) === 0, 15_000, 'no allocations');
    // The end-of-allocation totals complete the counters: what coturn relayed to the peer. On a
    // loaded host the kernel may drop a few datagrams at the peer's socket after coturn sent them,
    // so the count is bounded by what arrived and what was sent, and must settle (no later report).
    let settled = -1;
    await until(
      async () => {
        const now = sample(await metricsText(), 'turn_traffic_peer_sentp', { realm: REALM, user: 'uma' });
        const same = now === settled && now >= peerPackets;
        settled = now;
        if (!same) await sleep(400);
        return same;
      },
      15_000,
      'final totals',
    );
    const done = await metricsText();
    expect(peerPackets).toBeGreaterThan(2900);
    expect(settled).toBeGreaterThanOrEqual(peerPackets);
    expect(settled).toBeLessThanOrEqual(3000);
    expect(sample(done, 'turn_traffic_peer_sentb', { realm: REALM, user: 'uma' })).toBe(settled * 100);
    expect(sample(done, 'turn_total_traffic_peer_sentp')).toBe(settled);
    expect(sample(done, 'turn_traffic_rcvp', { realm: REALM, user: 'uma' })).toBeGreaterThanOrEqual(peerPackets);
    expect(sample(done, 'voxlink_turn_allocation_duration_seconds_count')).toBeGreaterThanOrEqual(2);
  }, 40_000);

  it('a reader started after the allocation finds it by scanning; one gone with a coturn restart is dropped by the rescan', async () => {
    const c = restCredentials(coturn.secret, 'wes', 600, []);
    const s = await TurnSession.open(coturn.host, coturn.port);
    expect((await s.allocate(c.username, c.credential)).kind).toBe('success');
    await until(async () => sample(await metricsText(), 'turn_total_allocations', { type: 'UDP' }) === 1, 5_000, 'the allocation in /metrics');
    // A second reader, as a VoxLink that starts now would have.
    const late = new CoturnStatsReader({ url: redis.url(STATS_DB), userLabels: true, metrics: turnMetrics(), rescanMs: 300 });
    try {
      await late.ready();
      expect(late.allocations()).toEqual([{ id: expect.any(String), realm: REALM, username: c.username, type: 'UDP' }]);
      // coturn killed and restarted: it deletes its stale status keys at start, without publishing.
      s.close();
      const restarted = await restartCoturn();
      void restarted;
      await until(() => late.allocations().length === 0, 10_000, 'the stale allocation dropped');
    } finally {
      await late.close();
    }
  }, 40_000);

  async function restartCoturn(): Promise<Coturn> {
    await coturn.close();
    coturn = await startCoturn({ realm: REALM, secret: coturn.secret, values: { 'redis-statsdb': `"${redis.coturnConn(STATS_DB)}"` } });
    return coturn;
  }
});
