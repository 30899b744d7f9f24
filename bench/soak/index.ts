/**
 * Soak: `npm run bench -- soak [--quick]`. Loopback only, bounded, stops by itself.
 *
 * Two VoxLink servers in their own processes, each load generator in its own process too:
 * - the signalling server: 20 000 idle clients and 2 000 churning ones (join, leave, mute,
 *   heartbeat, drop + resume, close + reconnect, at random) for 10 minutes;
 *   1 000 000 generated hostile frames (test/fuzz/frames.ts; a fifth of them on connections that
 *   never say hello) arrive there, its rate limit lifted;
 * - the media server (2 worker threads, default limits): tone rooms of SDK clients (werift peers
 *   publishing Opus tones, media-load.ts) the whole time, while a fuzzer paced under the rate
 *   limit joins a tone room, 1 000 000 hostile datagrams arrive on its media ports
 *   (test/fuzz/datagrams.ts), and one of its media worker threads crashes every 30 s (an uncaught
 *   error it is asked to throw, as a bug would);
 * - then the process chaos on `src/main.ts` as deployed (chaos.ts): SIGTERM, restart, kill -9,
 *   restart, with a recording running.
 * Quick: a tenth of the clients, 100 000 frames and datagrams, one minute. Writes
 * bench/results[/quick]/soak.json and soak.svg (RSS and JS heap of both servers over time).
 *
 * Measured: connections held, messages/s, RSS growth from minute 2 (quick: from half-time) to the
 * end, bytes per idle connection, p99 heartbeat round trip, errors and closes by code, crashes,
 * media loss in the tone rooms (sequence gaps; and delivered vs sent, outages included), audio
 * back after each worker kill and restart, recordings after SIGTERM and kill -9 (opusinfo), fuzz
 * frames and datagrams sent and crashes meanwhile.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChaos } from './chaos.ts';
import { lineChartSvg } from './chart.ts';
import type { LoadReport, LoadToParent, MediaLoadReport, MediaLoadToParent, ServerSample, SoakServerToParent } from './ipc.ts';
import { cpuSeconds, LOAD_NICE, openFilesLimit, spawnChild, type Child } from './spawn.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const arg = (name: string): number | undefined => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : Number(a.slice(name.length + 3));
};
/**
 * Fixed ports (the bench's range 31200–31799): main.ts in the chaos phase, and the media ranges.
 * Below Linux's ephemeral range (32768–60999): the full run's ~19 000 client sockets take ports from
 * it, and one of them held the chaos server's port when it lived at 55210.
 */
const PORTS = { chaosServer: 31210, mediaMin: 31300, mediaMax: 31499, chaosMediaMin: 31600 };
const config = {
  idle: arg('idle') ?? (quick ? 2_000 : 20_000),
  churn: arg('churn') ?? (quick ? 200 : 2_000),
  durationMs: (arg('seconds') ?? (quick ? 60 : 600)) * 1000,
  fuzzFrames: arg('fuzz') ?? (quick ? 100_000 : 1_000_000),
  /** Frames per second per connection of the fuzzer on the media server (5 connections), under its default rate limit (50/s). */
  mediaFuzzPace: 40,
  datagrams: arg('datagrams') ?? (quick ? 100_000 : 1_000_000),
  toneRooms: arg('tone-rooms') ?? (quick ? 2 : 3),
  killEveryMs: 30_000,
  /** Load processes per kind: one idle process holds at most 10 000 clients. */
  idleProcs: 0,
};
config.idleProcs = Math.max(1, Math.ceil(config.idle / 10_000));
const resultsDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));

let crashes = 0;
let stopping = false;
/**
 * The servers run with the node flags `npm start` uses (package.json, deploy/voxlink.service):
 * --max-semi-space-size=2 (docs/security.md "Memory per connection"). SOAK_SERVER_FLAGS replaces them.
 */
const serverFlags = (process.env.SOAK_SERVER_FLAGS ?? '--max-semi-space-size=2').split(/\s+/).filter(Boolean);

async function startSoakServer(name: string, args: string[], env: Record<string, string> = {}): Promise<{ child: Child<SoakServerToParent>; samples: ServerSample[]; base: string; port: number }> {
  const child = spawnChild<SoakServerToParent>('server.ts', args, ['--expose-gc', ...serverFlags], env);
  const samples: ServerSample[] = [];
  child.proc.on('message', (m: SoakServerToParent) => {
    if (m.type === 'sample') samples.push(m.sample);
  });
  child.proc.on('exit', (code, signal) => {
    if (!stopping) {
      crashes++;
      console.error(`soak: ${name} SERVER EXITED (${code ?? signal}) during the run`);
    }
  });
  const listening = await child.next((m) => m.type === 'listening', 120_000, `${name} listening`);
  const port = listening.type === 'listening' ? listening.port : 0;
  return { child, samples, base: `http://127.0.0.1:${port}`, port };
}

const t0 = performance.now();
const log = (s: string) => console.log(`soak ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s: ${s}`);
const sig = await startSoakServer('signalling', []);
{
  // One descriptor per client on the signalling server: a limit below that ends the run in EMFILE
  // (the first full run here did: the host's hard limit was 20 000), so say it before loading.
  const need = config.idle + config.churn + 1_000;
  const limit = openFilesLimit(sig.child.proc.pid!);
  if (limit !== null && limit < need) {
    stopping = true;
    sig.child.proc.kill('SIGKILL');
    throw new Error(`soak: the signalling server may open ${limit} files but the run needs ${need}: raise the hard limit (ulimit -Hn, LimitNOFILE) or pass --idle=/--churn=`);
  }
  console.log(`soak: the servers may open ${limit ?? 'an unknown number of'} files (${need} needed)`);
}
// VOXLINK_CHAOS=1: its worker kills are crashes the thread is asked to have (RoomRequests `crash`).
const med = await startSoakServer('media', ['media', String(PORTS.mediaMin), String(PORTS.mediaMax)], { VOXLINK_CHAOS: '1' });

async function measure(): Promise<{ rss: number; heapUsed: number; connections: number }> {
  sig.child.proc.send({ type: 'measure' });
  const m = await sig.child.next((x) => x.type === 'memory', 60_000, 'memory');
  if (m.type !== 'memory') throw new Error('unreachable');
  return m;
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

// 1. Idle memory: RSS after GC before and after the idle clients connected and heartbeated.
const before = await measure();
const idleLoads = Array.from({ length: config.idleProcs }, (_, i) =>
  spawnChild<LoadToParent>('load.ts', ['idle', String(sig.port), String(Math.ceil(config.idle / config.idleProcs)), String(100 + i)]),
);
for (const l of idleLoads) await l.next((m) => m.type === 'ready', 600_000, 'idle ready');
await new Promise((r) => setTimeout(r, 2000));
const afterIdle = await measure();
const idleHeld = afterIdle.connections - before.connections;
const bytesPerIdleConnection = (afterIdle.rss - before.rss) / idleHeld;
const heapBytesPerIdleConnection = (afterIdle.heapUsed - before.heapUsed) / idleHeld;
log(`${idleHeld} idle connections: ${Math.round(bytesPerIdleConnection)} bytes RSS each (JS heap ${Math.round(heapBytesPerIdleConnection)})`);

// 2. The tone rooms on the media server, then churn, fuzz and datagrams for the duration.
const tones = spawnChild<MediaLoadToParent>('media-load.ts', [`ws://127.0.0.1:${med.port}/ws`, String(config.toneRooms), '3', 'soak']);
const tonesReady = await tones.next((m) => m.type === 'ready', 300_000, 'tone rooms ready');
const toneRooms = tonesReady.type === 'ready' ? tonesReady.rooms : [];
log(`tone rooms ${toneRooms.join(', ')} up; everyone hears everyone: ${tonesReady.type === 'ready' && tonesReady.hearing}`);
const churnProcs = Math.max(1, Math.ceil(config.churn / 1_000));
const churnLoads = Array.from({ length: churnProcs }, (_, i) =>
  spawnChild<LoadToParent>('load.ts', ['churn', String(sig.port), String(Math.ceil(config.churn / churnProcs)), String(200 + i)], [], {}, LOAD_NICE),
);
for (const l of churnLoads) await l.next((m) => m.type === 'ready', 600_000, 'churn ready');
const fuzzLoad = spawnChild<LoadToParent>('load.ts', ['fuzz', String(sig.port), '0', '300', String(config.fuzzFrames)], [], {}, LOAD_NICE);
await fuzzLoad.next((m) => m.type === 'ready', 60_000, 'fuzz ready');
// The media server's fuzzer aims at a tone room too: a hostile participant in the call.
const mediaFuzzFrames = config.mediaFuzzPace * 5 * (config.durationMs / 1000);
const mediaFuzzLoad = spawnChild<LoadToParent>('load.ts', ['fuzz', String(med.port), String(config.mediaFuzzPace), '500', String(mediaFuzzFrames)], [], {
  FUZZ_ROOMS: `${toneRooms[0]},media-fuzz,other`,
}, LOAD_NICE);
await mediaFuzzLoad.next((m) => m.type === 'ready', 60_000, 'media fuzz ready');
const udpLoad = spawnChild<LoadToParent>('load.ts', ['udp', `${PORTS.mediaMin}-${PORTS.mediaMax}`, String(config.datagrams), '400', String(config.durationMs / 1000)], [], {}, LOAD_NICE);
await udpLoad.next((m) => m.type === 'ready', 60_000, 'udp ready');
const internalBefore = { sig: await metric(sig.base, 'voxlink_internal_errors_total'), med: await metric(med.base, 'voxlink_internal_errors_total') };
const runStart = performance.now();
const runStartSample = { sig: sig.samples.length, med: med.samples.length };
const loads = [...idleLoads, ...churnLoads, fuzzLoad, mediaFuzzLoad, udpLoad];
const hostileLoads = [fuzzLoad, mediaFuzzLoad, udpLoad];
/** CPU seconds by side of the host (servers under test, tone clients, niced load generators) over the run. */
const cpuGroups = { signallingServer: [sig.child], mediaServer: [med.child], toneClients: [tones], loadGenerators: loads };
const cpuNow = (): Record<string, number> =>
  Object.fromEntries(Object.entries(cpuGroups).map(([k, cs]) => [k, cs.reduce((n, c) => n + (cpuSeconds(c.proc.pid) ?? 0), 0)]));
const cpuAtStart = cpuNow();

/** Reports of every load process; the fuzzer's and the datagram sender's are marked (their errors are expected, the others' are findings). */
async function reports(stop = false): Promise<(LoadReport & { hostile: boolean; media: boolean })[]> {
  return Promise.all(
    loads.map(async (l) => {
      if (l.proc.exitCode !== null) return null;
      l.proc.send({ type: stop ? 'stop' : 'report' });
      const m = await l.next((x) => x.type === 'report', 30_000, 'report');
      return m.type === 'report' ? { ...m.report, hostile: hostileLoads.includes(l), media: l === mediaFuzzLoad } : null;
    }),
  ).then((r) => r.filter((x): x is LoadReport & { hostile: boolean; media: boolean } => x !== null));
}

async function toneReport(stop = false): Promise<MediaLoadReport> {
  tones.proc.send({ type: stop ? 'stop' : 'report' });
  const m = await tones.next((x) => x.type === 'report', 60_000, 'tone report');
  if (m.type !== 'report') throw new Error('unreachable');
  return m.report;
}

/** A media worker killed every 30 s, each time the one hosting the next tone room; the tone clients measure until they hear everyone again. */
const kills: { threadId: number | null; rooms: string[] }[] = [];
let killing: Promise<void> = Promise.resolve();
const killTimer = setInterval(() => {
  killing = killing.then(async () => {
    const target = toneRooms[kills.length % toneRooms.length];
    med.child.proc.send({ type: 'kill-worker', rooms: toneRooms, target });
    const m = await med.child.next((x) => x.type === 'worker-killed', 30_000, 'worker-killed');
    if (m.type !== 'worker-killed') return;
    kills.push({ threadId: m.threadId, rooms: m.rooms });
    log(`killed media worker ${m.threadId} (rooms ${m.rooms.join(', ')})`);
    tones.proc.send({ type: 'recover', event: `worker-kill-${kills.length}`, at: m.at, rooms: m.rooms });
    await tones.next((x) => x.type === 'recovered', 60_000, 'recovered');
  });
}, config.killEveryMs);

while (performance.now() - runStart < config.durationMs && crashes === 0) {
  await new Promise((r) => setTimeout(r, 10_000));
  const s = sig.samples.at(-1);
  const ms = med.samples.at(-1);
  const r = await reports();
  const fuzzDone = r.reduce((n, x) => n + x.fuzzFrames, 0);
  const dgDone = r.reduce((n, x) => n + x.datagrams, 0);
  if (s && ms) {
    log(
      `signalling ${s.connections} connections, RSS ${(s.rss / 2 ** 20).toFixed(0)} MiB, heap ${(s.heapUsed / 2 ** 20).toFixed(0)} MiB; ` +
        `media RSS ${(ms.rss / 2 ** 20).toFixed(0)} MiB; fuzz ${fuzzDone}, datagrams ${dgDone}`,
    );
  }
}
clearInterval(killTimer);
// The fuzz and datagrams may need longer than the run on a loaded host: give them up to the run's length again.
const hostileDeadline = performance.now() + config.durationMs;
let final = await reports();
const hostileDone = (rs: (LoadReport & { media: boolean })[]) =>
  rs.reduce((n, r) => n + (r.media ? 0 : r.fuzzFrames), 0) >= config.fuzzFrames && rs.reduce((n, r) => n + r.datagrams, 0) >= config.datagrams;
while (!hostileDone(final) && performance.now() < hostileDeadline && crashes === 0) {
  await new Promise((r) => setTimeout(r, 5_000));
  final = await reports();
}
await killing;
const cpuAtEnd = cpuNow();
const runSeconds = (performance.now() - runStart) / 1000;
const healthy = crashes === 0 && (await Promise.all([sig.base, med.base].map((b) => fetch(`${b}/healthz`).then((r) => r.ok, () => false)))).every(Boolean);
const internalErrors = crashes === 0 ? (await metric(sig.base, 'voxlink_internal_errors_total')) - internalBefore.sig + (await metric(med.base, 'voxlink_internal_errors_total')) - internalBefore.med : null;
final = await reports(true);
const media = structuredClone(await toneReport(true));
stopping = true;
sig.child.proc.kill('SIGTERM');
med.child.proc.kill('SIGTERM');

// 3. Process chaos on main.ts.
log('chaos: SIGTERM / restart / kill -9 / restart on src/main.ts');
const chaos = await runChaos((file, args) => spawnChild(file, args), PORTS.chaosServer, PORTS.chaosMediaMin, log);

// 4. Figures.
const round = (x: number | null, d = 0) => (x === null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
function growth(samples: ServerSample[], from: number): { pct: number | null; end: ServerSample | undefined } {
  const run = samples.slice(from);
  // Full: from minute 2 (the definition); quick (one minute): from half-time, the same idea of leaving the warm-up out.
  const fromSec = quick ? config.durationMs / 2000 : 120;
  const start = run.find((s) => s.t - run[0].t >= fromSec * 1000) ?? run[0];
  const end = run.at(-1);
  return { pct: start && end ? round(((end.rss - start.rss) / start.rss) * 100, 2) : null, end };
}
const sigGrowth = growth(sig.samples, runStartSample.sig);
const medGrowth = growth(med.samples, runStartSample.med);
const sum = (f: (r: LoadReport) => number) => final.reduce((n, r) => n + f(r), 0);
const merge = (f: (r: LoadReport) => Record<string, number>, hostile = false) => {
  const out: Record<string, number> = {};
  for (const r of final) if (r.hostile === hostile) for (const [k, v] of Object.entries(f(r))) out[k] = (out[k] ?? 0) + v;
  return out;
};
const latencies = final.flatMap((r) => r.latencies).sort((a, b) => a - b);
const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null);
const fuzzFrames = sum((r) => r.fuzzFrames);
const killRecoveries = media.recoveries.filter((r) => r.event.startsWith('worker-kill'));

const json = {
  quick,
  serverFlags,
  durationSec: round(runSeconds, 1),
  idleClients: config.idle,
  churnClients: config.churn,
  connectionsHeld: { afterIdle: idleHeld, max: Math.max(...sig.samples.slice(runStartSample.sig).map((s) => s.connections)), end: sigGrowth.end?.connections ?? null },
  messagesPerSec: round((sum((r) => r.sent) + sum((r) => r.received)) / runSeconds),
  rssGrowthPct: sigGrowth.pct,
  mediaServerRssGrowthPct: medGrowth.pct,
  rssGrowthFromSec: quick ? config.durationMs / 2000 : 120,
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
  /** On the signalling server (rate limit lifted) and on the media server (paced under its default rate limit, aiming at a tone room). */
  fuzzFramesByServer: { signalling: final.filter((r) => !r.media).reduce((n, r) => n + r.fuzzFrames, 0), media: final.filter((r) => r.media).reduce((n, r) => n + r.fuzzFrames, 0) },
  fuzzPreauthFrames: sum((r) => r.preauthFrames),
  fuzzPreauthConnections: sum((r) => r.preauthConnections),
  fuzzCrashes: crashes,
  hostileDatagrams: sum((r) => r.datagrams),
  toneRooms: {
    rooms: toneRooms.length,
    clients: media.clients,
    packetsReceived: media.received,
    /** Sequence numbers missing inside continuous slot streams. */
    packetsLost: media.lost,
    /** Received against what the other publishers of the room sent, worker-kill outages included. */
    deliveredPct: round((media.received / Math.max(1, media.expected)) * 100, 2),
    publisherFramesPct: media.publisherFramesPct,
    packetsPerSecond: media.perSecond,
    clientErrors: media.errors,
    clientCloses: media.closes,
    mediaReconnects: media.mediaReconnects,
  },
  mediaLossPct: round((media.lost / Math.max(1, media.received + media.lost)) * 100, 3),
  workerKills: kills.map((k, i) => ({ ...k, audioBackMs: killRecoveries[i]?.audioBackMs ?? null, perClientMs: killRecoveries[i]?.perClientMs ?? [] })),
  workerKillAudioBackMs: { max: killRecoveries.some((r) => r.audioBackMs === null) ? null : Math.max(...killRecoveries.map((r) => r.audioBackMs as number)), target: 3000 },
  chaos,
  /** CPU seconds each side used during the run (the load generators run at nice LOAD_NICE: spawn.ts says why). */
  cpuSeconds: { ...Object.fromEntries(Object.keys(cpuAtStart).map((k) => [k, round(cpuAtEnd[k]! - cpuAtStart[k]!, 1)])), loadNice: LOAD_NICE },
  host: { cpus: cpus().length, loadavg: loadavg().map((x) => round(x, 1)), node: process.version },
};
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'soak.json'), JSON.stringify(json, null, 2) + '\n');
const mib = (b: number) => b / 2 ** 20;
writeFileSync(
  join(resultsDir, 'soak.svg'),
  lineChartSvg(`soak${quick ? ' --quick' : ''}: server memory (${config.idle} idle + ${config.churn} churning; media: ${media.clients} tone clients, ${fuzzFrames} fuzz frames, worker kills)`, 'MiB', [
    { name: 'signalling RSS', color: '#d62728', points: sig.samples.map((s) => [s.t / 1000, mib(s.rss)]) },
    { name: 'signalling heap used', color: '#1f77b4', points: sig.samples.map((s) => [s.t / 1000, mib(s.heapUsed)]) },
    { name: 'media RSS', color: '#ff7f0e', points: med.samples.map((s) => [s.t / 1000, mib(s.rss)]) },
    { name: 'media heap used', color: '#2ca02c', points: med.samples.map((s) => [s.t / 1000, mib(s.heapUsed)]) },
  ]),
);
console.log(JSON.stringify(json, null, 2));
process.exit(crashes === 0 && healthy && chaos.ok ? 0 : 1);
