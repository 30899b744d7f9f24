/**
 * Cluster benchmark (VoxLink issue 12): three VoxLink processes on one redis-server, as
 * test/cluster runs them.
 *   joinMsDirect   connect + hello + join, the client's entry node owns the room (p50, p95)
 *   joinMsRouted   the same through another node: join → redirect → connect + hello + join with the ticket
 *   joinMsNewRoom  a room nobody holds yet: the entry node claims it (placement) and serves it
 *   failoverS      per client, from `kill -9` of the room's owner until it hears every other tone again (p50, max)
 *   redisCommandsPerJoin  from the nodes' voxlink_cluster_redis_commands_total (route + writeback), per phase
 *   redisServerCommandsPerJoin  Redis's own count (INFO commandstats) over a phase, minus the
 *                  background (heartbeats, lease renewals) measured over an idle window of the same length
 *
 *   npm run bench -- cluster [--quick]   → bench/results[/quick]/cluster.json and .md
 * Ports (the cluster range 54600–55199): Redis 54605, RTC 55000–55197 (66 ports, 33 peers per node: a
 * burst of joins can outrun werift's asynchronous socket close on a smaller range).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNodeClient } from '../../src/client/node.ts';
import { Member, powerMatrix, RedisServer, sleep, token, until, VoxNode } from '../../test/cluster/harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const resultsDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));
const config = {
  joins: quick ? 10 : 40,
  newRooms: quick ? 5 : 20,
  failoverClients: quick ? 3 : 4,
  failoverRuns: quick ? 1 : 3,
};

const redis = new RedisServer(54605);
const nodes = [
  new VoxNode({ id: 'bench-a', redisUrl: redis.url, rtcMinPort: 55000, rtcMaxPort: 55065 }),
  new VoxNode({ id: 'bench-b', redisUrl: redis.url, rtcMinPort: 55066, rtcMaxPort: 55131 }),
  new VoxNode({ id: 'bench-c', redisUrl: redis.url, rtcMinPort: 55132, rtcMaxPort: 55197 }),
];

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}
const round = (v: number, d = 1): number => Math.round(v * 10 ** d) / 10 ** d;

/** Sum over live nodes of voxlink_cluster_redis_commands_total by purpose. */
async function redisCommands(live: readonly VoxNode[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of live) {
    const text = await (await fetch(`${n.httpUrl}/metrics`)).text();
    for (const m of text.matchAll(/^voxlink_cluster_redis_commands_total\{purpose="(\w+)"\} (\d+)/gm)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  }
  return out;
}

/** One fresh SDK client: connect to `entry`, join `room`; returns the time until `joined`. */
async function timedJoin(entry: string, room: string, user: string): Promise<number> {
  const client = createNodeClient();
  const jwt = await token(user);
  // Leave only once the owner's media room has the participant (its offer arrived): a leave that
  // overtakes the media join leaves a peer and its UDP ports behind in the room (see docs/cluster.md).
  const offered = new Promise<void>((resolve) => client.on('media', () => resolve()));
  const t0 = performance.now();
  await client.connect(entry, jwt);
  await client.join(room);
  const ms = performance.now() - t0;
  await Promise.race([offered, sleep(5000)]);
  await client.disconnect();
  return ms;
}

/** Calls of every command Redis has served (INFO commandstats; INFO itself, the bench's own probe, left out). */
let probe: ReturnType<typeof redis.client> | undefined;
async function redisServerCalls(): Promise<number> {
  probe ??= redis.client();
  const info = await probe.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') calls += Number(m[2]);
  return calls;
}

/** Redis commands per second with no joins: every node's heartbeat, node list and lease renewals. */
async function backgroundRate(ms: number): Promise<number> {
  const before = await redisServerCalls();
  const t0 = performance.now();
  await sleep(ms);
  return ((await redisServerCalls()) - before) / ((performance.now() - t0) / 1000);
}

interface PhaseResult {
  ms: number[];
  /** Redis commands on the join's own path (placement: GET, claim), per join. */
  routePerJoin: number;
  /** Room-list write-behind per join (its join and its leave), coalesced across joins. */
  writebackPerJoin: number;
  /** Every command Redis served during the phase, less the background rate, per join. */
  serverPerJoin: number;
}

async function joinPhase(label: string, joins: () => Promise<number>, count: number, background: number): Promise<PhaseResult> {
  const before = await redisCommands(nodes);
  const serverBefore = await redisServerCalls();
  const t0 = performance.now();
  const ms: number[] = [];
  for (let i = 0; i < count; i++) ms.push(await joins());
  await sleep(600); // let the write-behind of the last joins land in the count
  const serverCalls = (await redisServerCalls()) - serverBefore;
  const seconds = (performance.now() - t0) / 1000;
  const after = await redisCommands(nodes);
  const routePerJoin = ((after.route ?? 0) - (before.route ?? 0)) / count;
  const writebackPerJoin = ((after.writeback ?? 0) - (before.writeback ?? 0)) / count;
  const serverPerJoin = Math.max(0, serverCalls - background * seconds) / count;
  console.log(
    `${label}: p50 ${quantile(ms, 0.5).toFixed(1)} ms, p95 ${quantile(ms, 0.95).toFixed(1)} ms, Redis commands per join: ${routePerJoin.toFixed(2)} on the join path + ${writebackPerJoin.toFixed(2)} write-behind (nodes' count); ${serverPerJoin.toFixed(2)} (Redis's INFO commandstats less background)`,
  );
  return { ms, routePerJoin, writebackPerJoin, serverPerJoin };
}

interface FailoverRun {
  /** Per client: kill → hears every other tone again (s). */
  hear: number[];
  /** Per client: kill → re-joined on the new owner (signalling only, s). */
  rejoin: number[];
  /** Per client: first join → hears everyone, before the kill (the media set-up cost without any failure, s). */
  initialHear: number[];
  /** Set-ups the call needed before the kill (1 unless a peer failed to connect). */
  attempts: number;
}

/**
 * A call of `failoverClients` members, each entering through a different node, until everyone
 * hears everyone. This is the set-up, not the measure: on a starved host a peer can fail to
 * connect, so a call that does not come up in 60 s is closed and set up again (at most 3 times;
 * the attempts are in the result).
 */
async function setUpCall(run: number, live: readonly VoxNode[]): Promise<{ members: Member[]; initialHear: number[]; attempts: number }> {
  const tones = [440, 660, 880, 1100, 1320, 1540];
  for (let attempt = 1; ; attempt++) {
    const room = `failover-${run}-${attempt}`;
    const members = Array.from({ length: config.failoverClients }, (_, i) => new Member(`f${run}-${attempt}-${i}`, tones[i], room));
    const joinedAt = Date.now();
    const initial = new Map<Member, number>();
    try {
      for (const [i, m] of members.entries()) await m.join(live.map((_, k) => live[(i + k) % live.length].wsUrl));
      await until(
        () => {
          for (const m of members) if (!initial.has(m) && members.every((o) => o === m || m.powerOf(o) > 0.01)) initial.set(m, (Date.now() - joinedAt) / 1000);
          return initial.size === members.length;
        },
        60_000,
        'everyone hears everyone before the kill',
      );
      return { members, initialHear: [...initial.values()], attempts: attempt };
    } catch (err) {
      const why = `${(err as Error).message}: ${powerMatrix(members)}`;
      await Promise.all(members.map((m) => m.close()));
      for (const n of live) for (const line of n.problems().slice(-5)) console.log(`  ${line.slice(0, 400)}`);
      if (attempt === 3) throw new Error(why);
      console.log(`failover run ${run}: the call did not come up (attempt ${attempt}), setting it up again: ${why}`);
    }
  }
}

async function failoverRun(run: number): Promise<FailoverRun> {
  const live = nodes.filter((n) => n.port !== 0);
  const { members, initialHear, attempts } = await setUpCall(run, live);
  const health = await Promise.all(live.map((n) => n.health()));
  const owner = live[health.findIndex((h) => h.participants > 0)];
  const killedAt = Date.now();
  owner.kill('SIGKILL');
  await owner.exited;
  owner.port = 0;
  const healed = new Map<Member, number>();
  await until(
    () => {
      for (const m of members) {
        if (healed.has(m) || m.mediaSince <= killedAt) continue;
        if (members.every((o) => o === m || m.powerOf(o) > 0.01)) healed.set(m, (Date.now() - killedAt) / 1000);
      }
      return healed.size === members.length;
    },
    60_000,
    'everyone hears everyone after the kill',
  );
  await Promise.all(members.map((m) => m.close()));
  const rejoined = members.map((m) => ((m.rooms.find((r) => r.reason === 'rejoined' && r.at > killedAt)?.at ?? NaN) - killedAt) / 1000);
  console.log(
    `failover run ${run}: killed ${owner.id}; re-joined after ${rejoined.map((s) => s.toFixed(1)).join(', ')} s; hearing everyone after ${[...healed.values()].map((s) => s.toFixed(1)).join(', ')} s`,
  );
  for (const n of live) if (n !== owner) for (const line of n.problems().slice(-5)) console.log(`  ${line.slice(0, 300)}`);
  // Bring the node back for the next run.
  await owner.start();
  return { hear: [...healed.values()], rejoin: rejoined, initialHear, attempts };
}

async function main(): Promise<void> {
  await redis.start();
  await Promise.all(nodes.map((n) => n.start()));
  await until(async () => (await Promise.all(nodes.map((n) => n.health()))).every((h) => h.cluster.nodes.length === 3), 15_000, 'three nodes registered');
  try {
    // A holder keeps the room open on bench-a.
    const holder = createNodeClient();
    await holder.connect(nodes[0].wsUrl, await token('holder'));
    await holder.join('bench-room');
    // Warm up both paths.
    for (let i = 0; i < 3; i++) {
      await timedJoin(nodes[0].wsUrl, 'bench-room', `warm-d${i}`);
      await timedJoin(nodes[1].wsUrl, 'bench-room', `warm-r${i}`);
    }
    // The baseline: what three idle nodes (one holding a room) send Redis per second.
    const background = await backgroundRate(quick ? 3000 : 10_000);
    console.log(`background: ${background.toFixed(1)} Redis commands/s from three idle nodes`);
    let n = 0;
    const direct = await joinPhase('direct (entry node owns the room)', () => timedJoin(nodes[0].wsUrl, 'bench-room', `d${n++}`), config.joins, background);
    const routed = await joinPhase('routed (join → redirect → owner)', () => timedJoin(nodes[1].wsUrl, 'bench-room', `r${n++}`), config.joins, background);
    const fresh = await joinPhase('new room (placement claim)', () => timedJoin(nodes[2].wsUrl, `new-room-${n}`, `n${n++}`), config.newRooms, background);
    await holder.disconnect();
    // Let werift close the join phases' peers (asynchronously) before the calls with media start.
    await sleep(3000);

    const failover: number[] = [];
    const rejoin: number[] = [];
    const initialHear: number[] = [];
    const setUpAttempts: number[] = [];
    for (let run = 0; run < config.failoverRuns; run++) {
      const r = await failoverRun(run);
      setUpAttempts.push(r.attempts);
      failover.push(...r.hear);
      rejoin.push(...r.rejoin);
      initialHear.push(...r.initialHear);
    }

    const result = {
      bench: 'cluster',
      quick,
      date: new Date().toISOString(),
      host: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', loadavg: os.loadavg().map((l) => round(l, 2)), node: process.version },
      setup: {
        nodes: 3,
        redis: 'redis-server 7 on loopback, no persistence',
        joins: config.joins,
        newRooms: config.newRooms,
        failoverClients: config.failoverClients,
        failoverRuns: config.failoverRuns,
        defaults: { heartbeatMs: 1000, nodeTtlMs: 4000, leaseMs: 8000 },
      },
      joinMsDirect: round(quantile(direct.ms, 0.5)),
      joinMsDirectP95: round(quantile(direct.ms, 0.95)),
      joinMsRouted: round(quantile(routed.ms, 0.5)),
      joinMsRoutedP95: round(quantile(routed.ms, 0.95)),
      joinMsNewRoom: round(quantile(fresh.ms, 0.5)),
      failoverS: round(quantile(failover, 0.5)),
      failoverMaxS: round(Math.max(...failover)),
      failoverSamples: failover.map((s) => round(s)),
      failoverRejoinS: round(quantile(rejoin, 0.5)),
      failoverRejoinMaxS: round(Math.max(...rejoin)),
      firstJoinHearS: round(quantile(initialHear, 0.5)),
      failoverSetUpAttempts: setUpAttempts,
      redisCommandsPerJoin: {
        direct: round(direct.routePerJoin, 2),
        routed: round(routed.routePerJoin, 2),
        newRoom: round(fresh.routePerJoin, 2),
      },
      redisServerCommandsPerJoin: {
        direct: round(direct.serverPerJoin, 2),
        routed: round(routed.serverPerJoin, 2),
        newRoom: round(fresh.serverPerJoin, 2),
      },
      redisBackgroundCommandsPerS: round(background),
      redisWritebackCommandsPerJoin: {
        direct: round(direct.writebackPerJoin, 2),
        routed: round(routed.writebackPerJoin, 2),
        newRoom: round(fresh.writebackPerJoin, 2),
      },
    };
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, 'cluster.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(
      join(resultsDir, 'cluster.md'),
      [
        `# Cluster bench${quick ? ' (quick)' : ''}`,
        '',
        `${result.date}, ${result.host.cpus} × ${result.host.model}, load average ${result.host.loadavg.join(' / ')}, Node ${result.host.node}.`,
        'Three VoxLink processes and one redis-server on this host (loopback); `npm run bench -- cluster`.',
        '',
        '| measure | value |',
        '| --- | --- |',
        `| join, entry node owns the room (p50 / p95) | ${result.joinMsDirect} / ${result.joinMsDirectP95} ms |`,
        `| join through another node: redirect + second connect (p50 / p95) | ${result.joinMsRouted} / ${result.joinMsRoutedP95} ms |`,
        `| join creating a room (placement claim, p50) | ${result.joinMsNewRoom} ms |`,
        `| kill -9 of the owner → client hears everyone again (p50 / max over ${failover.length} clients) | ${result.failoverS} / ${result.failoverMaxS} s |`,
        `| kill -9 of the owner → client re-joined on the new owner (p50 / max) | ${result.failoverRejoinS} / ${result.failoverRejoinMaxS} s |`,
        `| for comparison, no failure: first join → hears everyone (p50) | ${result.firstJoinHearS} s |`,
        `| Redis commands per join on its own path: direct / routed / new room | ${result.redisCommandsPerJoin.direct} / ${result.redisCommandsPerJoin.routed} / ${result.redisCommandsPerJoin.newRoom} |`,
        `| every command Redis served per join (INFO commandstats, less ${result.redisBackgroundCommandsPerS}/s background): direct / routed / new room | ${result.redisServerCommandsPerJoin.direct} / ${result.redisServerCommandsPerJoin.routed} / ${result.redisServerCommandsPerJoin.newRoom} |`,
        `| room-list write-behind per join (join + leave, coalesced): direct / routed / new room | ${result.redisWritebackCommandsPerJoin.direct} / ${result.redisWritebackCommandsPerJoin.routed} / ${result.redisWritebackCommandsPerJoin.newRoom} |`,
        '',
        'Join time is connect + hello + join until `joined` with a fresh SDK client. The routed join pays',
        'one extra WebSocket connect and hello (the redirect), never a relay hop for media. Redis commands',
        "per join are the nodes' own count (voxlink_cluster_redis_commands_total, purposes route and",
        'writeback) over the phase divided by its joins (each client joins, then leaves).',
        'Failover is from `kill -9` until the client hears every other tone again; it includes the re-join',
        '(bounded by cluster.nodeTtlMs), a cold media worker on the new owner, ICE/DTLS and a second of audio.',
        '',
      ].join('\n'),
    );
    console.log(JSON.stringify(result, null, 2));
  } finally {
    probe?.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    for (const n of nodes) n.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
