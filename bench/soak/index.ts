/**
 * Soak: `npm run bench -- soak [--quick]`. Loopback only, bounded, stops by itself.
 *
 * Full: 20 000 idle signalling clients and 2 000 churning ones (join, leave, mute, heartbeat,
 * drop + resume, close + reconnect, at random) for 10 minutes, plus 1 000 000 fuzzed frames
 * (test/fuzz/frames.ts). Quick: a tenth of the clients for a minute and 100 000 frames. The server
 * and every load generator run in their own processes. Writes bench/results[/quick]/soak.json,
 * soak.md and soak.svg (RSS and JS heap over time).
 *
 * Measured: connections held, messages/s (sent + received by the loads), RSS growth from minute 2
 * (quick: from half-time) to the end, bytes per idle connection (RSS delta after GC / N, and
 * its JS-heap part), p99 heartbeat round trip, errors and closes by code, server crashes, fuzz
 * frames and crashes during the fuzz. Not yet in this harness: the werift tone rooms, the worker
 * kill / SIGTERM / kill -9 chaos and the hostile media datagrams (their fields are null).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lineChartSvg } from './chart.ts';
import type { LoadReport, LoadToParent, ServerSample, SoakServerToParent } from './ipc.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const arg = (name: string): number | undefined => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : Number(a.slice(name.length + 3));
};
const config = {
  idle: arg('idle') ?? (quick ? 2_000 : 20_000),
  churn: arg('churn') ?? (quick ? 200 : 2_000),
  durationMs: (arg('seconds') ?? (quick ? 60 : 600)) * 1000,
  fuzzFrames: arg('fuzz') ?? (quick ? 100_000 : 1_000_000),
  /** Load processes per kind: one idle process holds at most 10 000 clients. */
  idleProcs: 0,
};
config.idleProcs = Math.max(1, Math.ceil(config.idle / 10_000));
const resultsDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));

interface Child<O> {
  proc: ChildProcess;
  next(pred: (m: O) => boolean, timeoutMs: number, what: string): Promise<O>;
}

function spawn<O>(file: string, args: string[], execArgv: string[] = []): Child<O> {
  const proc = fork(join(here, file), args, { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue: O[] = [];
  const waiters: { pred: (m: O) => boolean; resolve: (m: O) => void }[] = [];
  proc.on('message', (m) => {
    const i = waiters.findIndex((w) => w.pred(m as O));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m as O);
    else queue.push(m as O);
  });
  return {
    proc,
    next(pred, timeoutMs, what) {
      const i = queue.findIndex(pred);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} from ${file}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
}

const samples: ServerSample[] = [];
let crashes = 0;
let stopping = false;
/**
 * The server runs with the node flags `npm start` uses (package.json, deploy/voxlink.service):
 * --max-semi-space-size=2 (docs/security.md "Memory per connection"). SOAK_SERVER_FLAGS replaces them.
 */
const serverFlags = (process.env.SOAK_SERVER_FLAGS ?? '--max-semi-space-size=2').split(/\s+/).filter(Boolean);
const server = spawn<SoakServerToParent>('server.ts', [], ['--expose-gc', ...serverFlags]);
server.proc.on('message', (m: SoakServerToParent) => {
  if (m.type === 'sample') samples.push(m.sample);
});
server.proc.on('exit', (code, signal) => {
  if (!stopping) {
    crashes++;
    console.error(`soak: SERVER EXITED (${code ?? signal}) during the run`);
  }
});
const listening = await server.next((m) => m.type === 'listening', 60_000, 'listening');
const port = listening.type === 'listening' ? listening.port : 0;
const base = `http://127.0.0.1:${port}`;

async function measure(): Promise<{ rss: number; heapUsed: number; connections: number }> {
  server.proc.send({ type: 'measure' });
  const m = await server.next((x) => x.type === 'memory', 60_000, 'memory');
  if (m.type !== 'memory') throw new Error('unreachable');
  return m;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const t0 = performance.now();
const log = (s: string) => console.log(`soak ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s: ${s}`);

// 1. Idle memory: RSS after GC before and after the idle clients connected and heartbeated.
const before = await measure();
const idleLoads = Array.from({ length: config.idleProcs }, (_, i) =>
  spawn<LoadToParent>('load.ts', ['idle', String(port), String(Math.ceil(config.idle / config.idleProcs)), String(100 + i)]),
);
for (const l of idleLoads) await l.next((m) => m.type === 'ready', 600_000, 'idle ready');
await new Promise((r) => setTimeout(r, 2000));
const afterIdle = await measure();
const idleHeld = afterIdle.connections - before.connections;
const bytesPerIdleConnection = (afterIdle.rss - before.rss) / idleHeld;
const heapBytesPerIdleConnection = (afterIdle.heapUsed - before.heapUsed) / idleHeld;
log(`${idleHeld} idle connections: ${Math.round(bytesPerIdleConnection)} bytes RSS each (JS heap ${Math.round(heapBytesPerIdleConnection)})`);

// 2. Churn and fuzz for the duration, idle clients still there.
const churnProcs = Math.max(1, Math.ceil(config.churn / 1_000));
const churnLoads = Array.from({ length: churnProcs }, (_, i) =>
  spawn<LoadToParent>('load.ts', ['churn', String(port), String(Math.ceil(config.churn / churnProcs)), String(200 + i)]),
);
for (const l of churnLoads) await l.next((m) => m.type === 'ready', 600_000, 'churn ready');
const fuzzLoad = spawn<LoadToParent>('load.ts', ['fuzz', String(port), '0', '300', String(config.fuzzFrames)]);
await fuzzLoad.next((m) => m.type === 'ready', 60_000, 'fuzz ready');
const internalBefore = await metric('voxlink_internal_errors_total');
const runStart = performance.now();
const runStartSample = samples.length;
const loads = [...idleLoads, ...churnLoads, fuzzLoad];

/** Reports of every load process; the fuzzer's is marked (its errors are expected, the others' are findings). */
async function reports(stop = false): Promise<(LoadReport & { fuzz: boolean })[]> {
  return Promise.all(
    loads.map(async (l) => {
      if (l.proc.exitCode !== null) return null;
      l.proc.send({ type: stop ? 'stop' : 'report' });
      const m = await l.next((x) => x.type === 'report', 30_000, 'report');
      return m.type === 'report' ? { ...m.report, fuzz: l === fuzzLoad } : null;
    }),
  ).then((r) => r.filter((x): x is LoadReport & { fuzz: boolean } => x !== null));
}

while (performance.now() - runStart < config.durationMs && crashes === 0) {
  await new Promise((r) => setTimeout(r, 10_000));
  const s = samples.at(-1);
  const fuzzDone = (await reports()).reduce((n, r) => n + r.fuzzFrames, 0);
  if (s) log(`${s.connections} connections, ${s.sessions} sessions, RSS ${(s.rss / 2 ** 20).toFixed(0)} MiB, heap ${(s.heapUsed / 2 ** 20).toFixed(0)} MiB, fuzz ${fuzzDone}`);
}
// The fuzz may need longer than the run on a loaded host: give it up to the run's length again.
const fuzzDeadline = performance.now() + config.durationMs;
let final = await reports();
while (final.reduce((n, r) => n + r.fuzzFrames, 0) < config.fuzzFrames && performance.now() < fuzzDeadline && crashes === 0) {
  await new Promise((r) => setTimeout(r, 5_000));
  final = await reports();
}
const runSeconds = (performance.now() - runStart) / 1000;
const healthy = crashes === 0 && (await fetch(`${base}/healthz`).then((r) => r.ok, () => false));
const internalErrors = crashes === 0 ? (await metric('voxlink_internal_errors_total')) - internalBefore : null;
final = await reports(true);
stopping = true;
server.proc.kill('SIGTERM');

// 3. Figures.
const runSamples = samples.slice(runStartSample);
// Full: from minute 2 (the definition); quick (one minute): from half-time, the same idea of
// leaving the warm-up out.
const growthFromSec = quick ? config.durationMs / 2000 : 120;
const fromSample = runSamples.find((s) => s.t - runSamples[0].t >= growthFromSec * 1000) ?? runSamples[0];
const endSample = runSamples.at(-1) ?? fromSample;
const rssGrowthPct = ((endSample.rss - fromSample.rss) / fromSample.rss) * 100;
const sum = (f: (r: LoadReport) => number) => final.reduce((n, r) => n + f(r), 0);
const merge = (f: (r: LoadReport) => Record<string, number>, fuzz = false) => {
  const out: Record<string, number> = {};
  for (const r of final) if (r.fuzz === fuzz) for (const [k, v] of Object.entries(f(r))) out[k] = (out[k] ?? 0) + v;
  return out;
};
const latencies = final.flatMap((r) => r.latencies).sort((a, b) => a - b);
const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null);
const round = (x: number | null, d = 0) => (x === null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const fuzzFrames = sum((r) => r.fuzzFrames);

const json = {
  quick,
  serverFlags,
  durationSec: round(runSeconds, 1),
  idleClients: config.idle,
  churnClients: config.churn,
  connectionsHeld: { afterIdle: idleHeld, max: Math.max(...runSamples.map((s) => s.connections)), end: endSample.connections },
  messagesPerSec: round((sum((r) => r.sent) + sum((r) => r.received)) / runSeconds),
  rssGrowthPct: round(rssGrowthPct, 2),
  rssGrowthFromSec: growthFromSec,
  bytesPerIdleConnection: round(bytesPerIdleConnection),
  heapBytesPerIdleConnection: round(heapBytesPerIdleConnection),
  signallingLatencyMs: { p50: round(q(0.5), 2), p99: round(q(0.99), 2), samples: latencies.length },
  /** Errors and unexpected closes seen by the idle and churning clients (the fuzzer's are below). */
  errorsByCode: merge((r) => r.errors),
  closesByCode: merge((r) => r.closes),
  fuzzErrorsByCode: merge((r) => r.errors, true),
  fuzzClosesByCode: merge((r) => r.closes, true),
  churnActions: merge((r) => r.actions),
  invalidFromServer: sum((r) => r.invalidFromServer),
  internalErrors,
  crashes,
  healthyAtEnd: healthy,
  fuzzFrames,
  fuzzCrashes: crashes,
  mediaLossPct: null,
  workerKillAudioBackMs: null,
  hostileDatagrams: null,
  host: { cpus: cpus().length, loadavg: loadavg().map((x) => round(x, 1)), node: process.version },
};
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'soak.json'), JSON.stringify(json, null, 2) + '\n');
const mib = (b: number) => b / 2 ** 20;
writeFileSync(
  join(resultsDir, 'soak.svg'),
  lineChartSvg(`soak${quick ? ' --quick' : ''}: server memory (${config.idle} idle + ${config.churn} churning clients, ${fuzzFrames} fuzz frames)`, 'MiB', [
    { name: 'RSS', color: '#d62728', points: samples.map((s) => [s.t / 1000, mib(s.rss)]) },
    { name: 'JS heap used', color: '#1f77b4', points: samples.map((s) => [s.t / 1000, mib(s.heapUsed)]) },
    { name: 'JS heap total', color: '#9ecae1', points: samples.map((s) => [s.t / 1000, mib(s.heapTotal)]) },
  ]),
);
console.log(JSON.stringify(json, null, 2));
process.exit(crashes === 0 && healthy ? 0 : 1);
