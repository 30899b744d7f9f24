/**
 * Signalling benchmark (VoxLink issue 3): the same message mix — hello + join, presence
 * fan-out in rooms of 10 (mute/unmute → `participant_updated` to every member), heartbeats —
 * against three servers, each in its own process:
 *   uws      VoxLink's signalling server (uWebSockets.js), started with its exported start function
 *   ws       the same transport-agnostic core behind a small `ws` adapter (bench/signalling/ws-adapter.ts)
 *   socketio an equivalent Socket.IO server (rooms, same semantics, msgpack payloads in binary frames)
 * Load generators run in separate processes (child_process.fork). Reports delivered messages per
 * second, p50/p99 fan-out latency, and server RSS per idle connection.
 *
 *   npm run bench -- signalling [--quick] [--rounds=N] [--idle=N] [--only=uws,ws,socketio,uws-batched]
 * --idle=N overrides the idle-connection count (e.g. `--quick --idle=5000` for the memory target).
 * --only writes bench/results/signalling-<names>.json/.md instead of the main result files.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { LatencyHistogram } from './histogram.ts';
import type { ServerKind, LoadToParent, ParentToLoad, ParentToServer, ServerToParent, LoadConfig } from './ipc.ts';

type ServerChild = Child<ParentToServer, ServerToParent>;

const here = dirname(fileURLToPath(import.meta.url));
// --quick results go to bench/results/quick/ (not committed) so they never replace a full run's.
const resultsDir = join(here, '..', 'results', ...(process.argv.includes('--quick') ? ['quick'] : []));
const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',') as ServerKind[] | undefined;

const config = {
  roomSize: 10,
  /** Throughput runs per server, interleaved; the median is reported. */
  rounds: Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length) ?? (quick ? 1 : 3)),
  rooms: quick ? 30 : 100,
  /** One load process in --quick (fewer process start-ups on a busy host); two in the full run. */
  loadProcs: quick ? 1 : 2,
  warmupMs: quick ? 500 : 3_000,
  measureMs: quick ? 2_500 : 10_000,
  /** Every client heartbeats at this interval during the throughput phase (the server's default is slower). */
  heartbeatMs: 1_000,
  /** Updates each client may have in flight: the sender waits for its update to reach all peers. */
  window: 1,
  /** 5000 in the full run; the quick run uses fewer so it stays under a minute on a busy 2-core host. */
  idleConnections: Number(process.argv.find((a) => a.startsWith('--idle='))?.slice('--idle='.length) ?? (quick ? 1_000 : 5_000)),
};
const kinds: ServerKind[] = only ?? ['uws', 'ws', 'socketio'];

interface Child<I, O> {
  proc: ChildProcess;
  next(predicate: (m: O) => boolean, timeoutMs: number, what: string): Promise<O>;
  send(m: I): void;
}

function spawnChild<I, O>(file: string, args: string[], execArgv: string[]): Child<I, O> {
  const proc = fork(join(here, file), args, { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue: O[] = [];
  const waiters: Array<{ predicate: (m: O) => boolean; resolve: (m: O) => void }> = [];
  proc.on('message', (m) => {
    const msg = m as O;
    const i = waiters.findIndex((w) => w.predicate(msg));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
    else queue.push(msg);
  });
  return {
    proc,
    send: (m) => proc.send(m as never),
    next(predicate, timeoutMs, what) {
      const i = queue.findIndex(predicate);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} from ${file}`)), timeoutMs);
        const onExit = (code: number | null) => reject(new Error(`${file} exited (${code}) while waiting for ${what}`));
        proc.once('exit', onExit);
        waiters.push({
          predicate,
          resolve: (m) => {
            clearTimeout(timer);
            proc.off('exit', onExit);
            resolve(m);
          },
        });
      });
    },
  };
}

async function stop(child: Child<unknown, unknown>): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = new Promise((resolve) => child.proc.once('exit', resolve));
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

async function startServer(kind: ServerKind): Promise<{ server: ServerChild; port: number }> {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each server process (open in Chrome DevTools).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  // BENCH_SERVER_FLAGS="--max-semi-space-size=2": extra node/V8 flags for the server processes.
  const flags = process.env.BENCH_SERVER_FLAGS ? process.env.BENCH_SERVER_FLAGS.split(/\s+/).filter(Boolean) : [];
  const server = spawnChild<ParentToServer, ServerToParent>('server.ts', [kind], ['--expose-gc', ...prof, ...flags]);
  const listening = await server.next((m) => m.type === 'listening', 20_000, 'listening');
  if (listening.type !== 'listening') throw new Error('unreachable');
  return { server, port: listening.port };
}

async function measureMemory(server: ServerChild): Promise<{ rss: number; heapUsed: number }> {
  server.send({ type: 'measure' });
  const m = await server.next((x) => x.type === 'memory', 20_000, 'memory');
  if (m.type !== 'memory') throw new Error('unreachable');
  return { rss: m.rss, heapUsed: m.heapUsed };
}

async function serverCpuMicros(server: ServerChild): Promise<number> {
  server.send({ type: 'cpu' });
  const m = await server.next((x) => x.type === 'cpu', 20_000, 'cpu');
  return m.type === 'cpu' ? m.micros : Number.NaN;
}

type LoadChild = Child<ParentToLoad, LoadToParent>;

/** Load generators are forked before the server is up, so their start-up overlaps the server's. */
function spawnLoads(): LoadChild[] {
  return Array.from({ length: config.loadProcs }, () => spawnChild<ParentToLoad, LoadToParent>('load.ts', [], []));
}

async function runLoad(
  server: ServerChild,
  loads: LoadChild[],
  kind: ServerKind,
  port: number,
  mode: LoadConfig['mode'],
  roomsTotal: number,
  afterReady?: () => Promise<void>,
): Promise<{ delivered: number; sent: number; elapsedMs: number; histogram: LatencyHistogram; heartbeats: number; serverCpuSec: number; loadCpuSec: number }> {
  const perProc = Math.ceil(roomsTotal / loads.length);
  try {
    for (let p = 0; p < loads.length; p++) {
      const rooms = Math.max(0, Math.min(perProc, roomsTotal - p * perProc));
      const cfg: LoadConfig = {
        kind,
        port,
        mode,
        roomPrefix: `bench-${mode}-${p}`,
        rooms,
        roomSize: config.roomSize,
        heartbeatMs: mode === 'idle' ? 0 : config.heartbeatMs,
        window: config.window,
      };
      loads[p].send({ type: 'config', config: cfg });
    }
    const tReady = performance.now();
    await Promise.all(loads.map((l) => l.next((m) => m.type === 'ready', 120_000, 'ready')));
    console.log(`  ${kind} ${mode}: ${roomsTotal * config.roomSize} clients connected and joined in ${((performance.now() - tReady) / 1000).toFixed(1)} s`);
    if (afterReady) await afterReady();
    if (mode === 'idle') return { delivered: 0, sent: 0, elapsedMs: 0, histogram: new LatencyHistogram(), heartbeats: 0, serverCpuSec: 0, loadCpuSec: 0 };

    for (const l of loads) l.send({ type: 'start' });
    await new Promise((r) => setTimeout(r, config.warmupMs));
    for (const l of loads) l.send({ type: 'reset' });
    const cpu0 = await serverCpuMicros(server);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, config.measureMs));
    for (const l of loads) l.send({ type: 'report' });
    const elapsedMs = performance.now() - t0;
    const cpu1 = await serverCpuMicros(server);
    const reports = await Promise.all(loads.map((l) => l.next((m) => m.type === 'report', 20_000, 'report')));
    const histogram = new LatencyHistogram();
    let delivered = 0;
    let sent = 0;
    let heartbeats = 0;
    let loadCpuMicros = 0;
    for (const r of reports) {
      if (r.type !== 'report') continue;
      loadCpuMicros += r.cpuMicros;
      delivered += r.delivered;
      sent += r.sent;
      heartbeats += r.heartbeatAcks;
      histogram.merge(new LatencyHistogram(r.histogram));
    }
    return { delivered, sent, elapsedMs, histogram, heartbeats, serverCpuSec: (cpu1 - cpu0) / 1e6, loadCpuSec: loadCpuMicros / 1e6 };
  } finally {
    await Promise.all(loads.map((l) => stop(l as Child<unknown, unknown>)));
  }
}

interface KindResult {
  msgsPerSec: number;
  updatesPerSec: number;
  heartbeatAcksPerSec: number;
  p50: number;
  p99: number;
  bytesPerIdleConnection: number;
  heapBytesPerIdleConnection: number;
  marginalBytesPerIdleConnection: number;
  /** Deliveries per second of server CPU time: robust against the load generators' share of the cores. */
  perServerCpuSec: number;
  serverCpuShare: number;
  loadCpuShare: number;
}

type Throughput = Omit<KindResult, 'bytesPerIdleConnection' | 'heapBytesPerIdleConnection' | 'marginalBytesPerIdleConnection'>;

/** One throughput run on a fresh server process, so heaps and JIT state do not carry over. */
async function throughputRun(kind: ServerKind): Promise<Throughput> {
  const loads = spawnLoads();
  const { server, port } = await startServer(kind);
  let load;
  try {
    load = await runLoad(server, loads, kind, port, 'throughput', config.rooms);
  } finally {
    await stop(server as Child<unknown, unknown>);
  }
  const sec = load.elapsedMs / 1000;
  console.log(
    `${kind}: ${Math.round(load.delivered / sec)} deliveries/s, ${Math.round(load.sent / sec)} updates/s, ` +
      `p50 ${load.histogram.quantileMs(0.5)} ms, p99 ${load.histogram.quantileMs(0.99)} ms; ` +
      `CPU: server ${load.serverCpuSec.toFixed(2)} s, load generators ${load.loadCpuSec.toFixed(2)} s in ${sec.toFixed(1)} s wall`,
  );
  return {
    msgsPerSec: load.delivered / sec,
    updatesPerSec: load.sent / sec,
    heartbeatAcksPerSec: load.heartbeats / sec,
    p50: load.histogram.quantileMs(0.5),
    p99: load.histogram.quantileMs(0.99),
    perServerCpuSec: load.delivered / load.serverCpuSec,
    serverCpuShare: load.serverCpuSec / sec,
    loadCpuShare: load.loadCpuSec / sec,
  };
}

/**
 * Idle memory: server RSS after GC before any client, after N/2 and after N joined, idle
 * connections (two load processes, one after the other; --quick: one step to N). Reported: (RSS_N − RSS_0) / N as the task
 * defines it, and the marginal cost (RSS_N − RSS_N/2) / (N/2), which leaves out one-off growth
 * such as V8 enlarging its young generation during the connection burst.
 */
async function memoryRun(kind: ServerKind): Promise<{ rss: number; heap: number; marginal: number }> {
  // --quick with fewer than 2000: one step (the marginal figure is noise at small N); else N/2, then N.
  const steps = quick && config.idleConnections < 2_000 ? 1 : 2;
  const loads = Array.from({ length: steps }, () => spawnChild<ParentToLoad, LoadToParent>('load.ts', [], []));
  const { server, port } = await startServer(kind);
  const roomsPerStep = Math.ceil(config.idleConnections / config.roomSize / steps);
  const n = roomsPerStep * steps * config.roomSize;
  try {
    const before = await measureMemory(server);
    const t0 = performance.now();
    let mid = { rss: Number.NaN, heapUsed: Number.NaN };
    for (let p = 0; p < steps; p++) {
      loads[p].send({
        type: 'config',
        config: { kind, port, mode: 'idle', roomPrefix: `bench-idle-${p}`, rooms: roomsPerStep, roomSize: config.roomSize, heartbeatMs: 0, window: 1 },
      });
      await loads[p].next((m) => m.type === 'ready', 180_000, 'ready');
      if (p === 0 && steps === 2) mid = await measureMemory(server);
    }
    const after = await measureMemory(server);
    const rss = (after.rss - before.rss) / n;
    const heap = (after.heapUsed - before.heapUsed) / n;
    const marginal = (after.rss - mid.rss) / (n / 2);
    console.log(
      `${kind}: ${Math.round(rss)} bytes per idle connection (RSS delta after GC, ${n} connections in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
        `JS heap part ${Math.round(heap)}` +
        (steps === 2 ? `; marginal ${Math.round(marginal)} between ${n / 2} and ${n})` : ')'),
    );
    return { rss, heap, marginal };
  } finally {
    await Promise.all([...loads, server].map((c) => stop(c as Child<unknown, unknown>)));
  }
}

const results = {} as Record<ServerKind, KindResult>;
const started = performance.now();
// Rounds interleave the servers (uws, ws, socketio, uws, …) so a burst of load from other processes
// on the host hits all of them alike; each server's median run (by deliveries/s) is reported.
const runs = Object.fromEntries(kinds.map((k) => [k, [] as Throughput[]])) as Record<ServerKind, Throughput[]>;
for (let r = 0; r < config.rounds; r++) for (const kind of kinds) runs[kind].push(await throughputRun(kind));
for (const kind of kinds) {
  const sorted = [...runs[kind]].sort((a, b) => a.msgsPerSec - b.msgsPerSec);
  const median = { ...sorted[Math.floor(sorted.length / 2)] };
  // The CPU-normalised figure gets its own median: the fastest wall-clock run need not be the most efficient.
  const perCpu = runs[kind].map((r) => r.perServerCpuSec).sort((a, b) => a - b);
  median.perServerCpuSec = perCpu[Math.floor(perCpu.length / 2)];
  const memory = await memoryRun(kind);
  results[kind] = { ...median, bytesPerIdleConnection: memory.rss, heapBytesPerIdleConnection: memory.heap, marginalBytesPerIdleConnection: memory.marginal };
}
const round = (x: number, d = 0) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);
const pick = (f: (r: KindResult) => number, d = 0) =>
  Object.fromEntries(kinds.map((k) => [k, round(f(results[k]), d)]));
const ratio = (a: ServerKind, b: ServerKind) => (results[a] && results[b] ? round(results[a].msgsPerSec / results[b].msgsPerSec, 2) : null);

const cpuRatio = (a: ServerKind, b: ServerKind) =>
  results[a] && results[b] ? round(results[a].perServerCpuSec / results[b].perServerCpuSec, 2) : null;
const json = {
  msgsPerSec: pick((r) => r.msgsPerSec),
  uwsVsWs: ratio('uws', 'ws'),
  uwsVsSocketio: ratio('uws', 'socketio'),
  latencyP99Ms: pick((r) => r.p99, 2),
  latencyP50Ms: pick((r) => r.p50, 2),
  bytesPerIdleConnection: pick((r) => r.bytesPerIdleConnection),
  /** The JS-heap part of bytesPerIdleConnection (the rest is native: uWS/libuv buffers, malloc). */
  heapBytesPerIdleConnection: pick((r) => r.heapBytesPerIdleConnection),
  /** RSS growth per connection between N/2 and N connections: without one-off heap growth. */
  marginalBytesPerIdleConnection: pick((r) => r.marginalBytesPerIdleConnection),
  /** Deliveries per server-CPU-second and its ratios: the server's efficiency, independent of who else used the cores. */
  deliveriesPerServerCpuSec: pick((r) => r.perServerCpuSec),
  uwsVsWsPerCpu: cpuRatio('uws', 'ws'),
  uwsVsSocketioPerCpu: cpuRatio('uws', 'socketio'),
  /** Cores busy during the measured window (1.0 = one full core). */
  serverCores: pick((r) => r.serverCpuShare, 2),
  loadGeneratorCores: pick((r) => r.loadCpuShare, 2),
  updatesPerSec: pick((r) => r.updatesPerSec),
  heartbeatAcksPerSec: pick((r) => r.heartbeatAcksPerSec),
  config: { ...config, quick },
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg() },
  durationSec: round((performance.now() - started) / 1000, 1),
};
mkdirSync(resultsDir, { recursive: true });
// A partial run (--only=) must not overwrite the full comparison.
const outName = only ? `signalling-${only.join('-')}` : 'signalling';
writeFileSync(join(resultsDir, `${outName}.json`), JSON.stringify(json, null, 2) + '\n');
writeFileSync(join(resultsDir, `${outName}.md`), renderMarkdown(json));
console.log(JSON.stringify(json, null, 2));

function renderMarkdown(j: typeof json): string {
  const v = (x: number | null | undefined) => x ?? '–';
  const row = (k: ServerKind) =>
    `| ${k} | ${v(j.msgsPerSec[k])} | ${v(j.deliveriesPerServerCpuSec[k])} | ${v(j.serverCores[k])} / ${v(j.loadGeneratorCores[k])} | ` +
    `${v(j.latencyP50Ms[k])} | ${v(j.latencyP99Ms[k])} | ${v(j.bytesPerIdleConnection[k])} (${v(j.heapBytesPerIdleConnection[k])}) | ${v(j.marginalBytesPerIdleConnection[k])} |`;
  return [
    `# Signalling benchmark${quick ? ' (quick)' : ''}`,
    '',
    '`npm run bench -- signalling [--quick]` (bench/signalling/index.ts). Servers and load generators run in separate processes.',
    '',
    '| server | deliveries/s | deliveries per server CPU-second | cores used: server / load gens | p50 ms | p99 ms | bytes per idle connection (JS heap part) | marginal bytes per idle connection |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...kinds.map(row),
    '',
    `- uWS vs ws: **${j.uwsVsWs}×** by wall-clock throughput, **${j.uwsVsWsPerCpu}×** per server CPU-second (target ≥ 1.5)`,
    `- uWS vs Socket.IO: **${j.uwsVsSocketio}×** by wall-clock throughput, **${j.uwsVsSocketioPerCpu}×** per server CPU-second (target ≥ 5)`,
    `- uWS idle connection: **${j.bytesPerIdleConnection.uws ?? '–'} bytes** as RSS delta / N, **${j.marginalBytesPerIdleConnection.uws ?? '–'} bytes** marginal (target ≤ 4096)`,
    '',
    '## What was measured',
    '',
    `- Message mix: every client says hello (JWT) and joins a room of ${config.roomSize}; then it toggles mute in a closed loop`,
    '  (`mute`/`unmute` → `mute_ack` to it and `participant_updated` to all room members, itself included; its next',
    `  update goes out once all ${config.roomSize} members received the previous one) and sends a heartbeat every ${config.heartbeatMs} ms.`,
    '  A delivery is one `participant_updated` arriving at one client; latency is from the sender\'s send to that arrival.',
    `- ${config.rooms} rooms × ${config.roomSize} clients in ${config.loadProcs} load-generator processes; ${config.warmupMs} ms warm-up,`,
    `  ${config.measureMs} ms measured, ${config.rounds} round(s) interleaved across servers (median reported).`,
    `- Idle memory: server RSS after \`gc()\` with ${config.idleConnections} connections that completed hello + join and one heartbeat`,
    '  acking what they received (what every client does within `heartbeatIntervalMs`, so replay buffers are empty), minus RSS',
    '  after `gc()` before they connected, divided by the count (the full run uses 5000; `--quick` fewer unless `--idle=N`).',
    '  "Marginal" (full run only) is the RSS growth from N/2 to N connections per connection: it leaves out one-off growth',
    '  (V8 enlarging its heap spaces during the connection burst), which at small N inflates the plain average.',
    '- uws = VoxLink\'s server (src/signalling startServer). ws = the same `createSignallingCore` behind `ws`',
    '  (bench/signalling/ws-adapter.ts). socketio = bench/signalling/socketio-server.ts: same messages and room semantics,',
    '  websocket transport only, default JSON parser, `connectionStateRecovery` as the counterpart of resume.',
    '- The per-session rate limit (50 msg/s in production) is lifted for the VoxLink servers; Socket.IO has none.',
    '',
    '## What limits the numbers here',
    '',
    `- Host: ${j.machine.cpus} cores (${j.machine.cpuModel}, Node ${j.machine.node}) shared with other jobs: load average`,
    `  ${j.machine.loadavg.map((x) => x.toFixed(1)).join(' / ')} at the end of this run. The "cores used" column shows how little CPU`,
    '  each server and its load generators actually got, so wall-clock deliveries/s mostly measure the scheduler. Deliveries',
    '  per server CPU-second is the steadier efficiency figure; both are reported.',
    '- The load generators decode every delivery (msgpack, or JSON for Socket.IO) and cost about as much CPU as the server.',
    '- VoxLink does per-recipient work that the Socket.IO baseline does not: each room event gets the recipient\'s own `seq`',
    '  and a place in that session\'s replay buffer. The uWS server keeps it cheap: one encode per event, the body shared by',
    '  every replay buffer, the seq stamped into one scratch buffer at write time (no allocation per recipient), counters',
    '  incremented once per broadcast, and frames coalesced per connection and written once per event-loop turn inside',
    '  `ws.cork()` (one write syscall per connection per turn instead of one per frame). What remains is mostly those write',
    '  syscalls, plus the load generators\' share of the 2 cores. bench/signalling/uws-batched.ts was the experiment that led',
    '  to the coalescing (compare with `--only=uws,uws-batched`). The `ws` server runs the same core without corked writes',
    '  (one `ws.send` per frame, one stamped copy per recipient).',
    '- Idle memory: a bare uWS app holding 2000 idle WebSockets grew by about 280 bytes per connection, measured the same',
    '  way; the JS heap column is the signalling core\'s per-session state (session, connection state, presence, the',
    '  verified token\'s claims). Most of the rest of the RSS delta at these N is one-off: V8 grows its young generation',
    '  (semi-spaces, up to 16 MiB each) during the connection burst and keeps it after `gc()`. The marginal column leaves',
    '  that out; so does running the server with `--max-semi-space-size=2` (`BENCH_SERVER_FLAGS` here, `NODE_OPTIONS` in',
    '  production), at the cost of more frequent young-generation GCs.',
    '',
    '## Before and after the issue-3 changes (this host, 2026-11-24)',
    '',
    'Same bench, same loaded 2-core host, so only the CPU-normalised and memory figures compare well.',
    '',
    '| uws | before | after |',
    '| --- | ---: | ---: |',
    '| deliveries per server CPU-second (quick runs and the full run above; ws in the same runs) | 107k–162k (ws 79k–96k) | 185k–272k (ws 73k–92k) |',
    '| uWS vs ws per server CPU-second | 1.35–1.68× | 2.5–2.95× |',
    '| bytes per idle connection, 5000 connections (RSS delta / N; marginal) | 10784; 5892 | 8583; 2464 |',
    '| JS heap bytes per idle connection, 5000 connections | 3002 | 1809 |',
    '| same, server with `--max-semi-space-size=2` (RSS delta / N) | – | 3414 |',
    '',
    'Changes: frames coalesced per connection and written once per event-loop turn inside `ws.cork()`; seq stamped at',
    'write time into one scratch buffer (no allocation per recipient); one shared body per room event in every replay',
    'buffer; message counters as pre-resolved children, counted once per broadcast; per-connection state flattened (token',
    'bucket inlined, queues and replay rings allocated on demand and dropped when acked, no uWS topic subscriptions, the',
    'connection in uWS user data instead of a WeakMap). Part of the idle-memory change is the bench itself: idle clients',
    'now send one heartbeat acking what they received, as every client does within `heartbeatIntervalMs`; without it',
    'their replay buffers hold their `joined` snapshot and presence events (≈ 1.2 KB per connection).',
    '',
  ].join('\n');
}
