/**
 * `npm run bench -- bigroom [--quick]`: one big room over the media workers (docs/media.md "Rooms
 * over several workers").
 *
 * One room of N participants (1000; --quick 300), 10 active speakers, K = 3 slots, in the real
 * media plane (bench/bigroom/server.ts: piscina pool of 2 workers, one shared UDP port per
 * worker) in a child process. Two scenarios in the same run:
 *   spread      – `media.roomWorkerCapacity` = N/2: the room's home worker and one spill worker
 *   one-worker  – capacity 0: the same room held by one worker (the baseline)
 * Clients: lean clients (bench/forwarding/lean-clients.ts) in other processes: every participant
 * joins as a real werift client (SDP, ICE, DTLS-SRTP); then media bypasses werift: speakers send
 * 60-byte frames every 20 ms on the negotiated SRTP keys, receivers count per SSRC, check
 * sequence gaps (loss) and verify the SRTP tag of one packet in 8 with the keys of their own DTLS
 * session (a forged or misrouted packet fails), whose payload stamp gives the latency.
 * First the link transports are measured against each other (bench/bigroom/link.ts).
 * Writes bench/results[/quick]/bigroom.json and .md (with a chart).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MediaRoomStats } from '../../src/media/room.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';
import type { WorkerLoad } from '../../src/rooms/placement.ts';
import type { ShardSummary } from '../../src/rooms/room-shards.ts';
import type { LeanCommand, LeanReply, LeanSnapshot } from '../forwarding/lean-clients.ts';
import type { BigRoomServerCommand } from './server.ts';
import { measureLink, type LinkResult } from './link.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const arg = (name: string): number | undefined => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? undefined : Number(a.slice(name.length + 3));
};

const ROOM = 'stage';
const config = {
  participants: arg('participants') ?? (quick ? 300 : 1000),
  speakers: 10,
  slots: 3,
  workers: 2,
  intervalMs: 20,
  warmupS: quick ? 3 : 5,
  windowS: quick ? 6 : 15,
  clientProcs: quick ? 2 : 4,
  joinConcurrency: 10,
};
// This bench's fixed ports (the shared UDP port of each worker): 56900…56901 and 56910…56911.
const UDP_BASES = [56900, 56910];

interface ServerStats {
  cpuMs: number;
  room: { total: MediaRoomStats; shards: (ShardSummary & { stats: MediaRoomStats })[] } | null;
  loads: WorkerLoad[];
}

class Server {
  readonly child: ChildProcess;
  readonly #handlers = new Map<string, (m: ServerMediaMessage, to: 'room' | 'participant') => void>();
  readonly #pending = new Map<number, (s: ServerStats) => void>();
  #started: (() => void) | null = null;
  #nextId = 1;

  constructor() {
    // BIGROOM_SERVER_FLAGS: extra node flags for the server process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
    const flags = (process.env.BIGROOM_SERVER_FLAGS ?? '').split(/\s+/).filter(Boolean);
    this.child = fork(join(here, 'server.ts'), [], { execArgv: ['--import', 'tsx', ...flags], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const child = this.child;
    process.once('exit', () => child.kill());
    child.on('message', (raw) => {
      const m = raw as { t: string; to: 'room' | 'participant'; participantId?: string; message: ServerMediaMessage; id: number } & ServerStats;
      if (m.t === 'event') {
        if (m.to === 'room') for (const h of this.#handlers.values()) h(m.message, 'room');
        else this.#handlers.get(m.participantId!)?.(m.message, 'participant');
      } else if (m.t === 'stats') {
        this.#pending.get(m.id)?.(m);
        this.#pending.delete(m.id);
      } else if (m.t === 'started') this.#started?.();
      else if (m.t === 'error') console.error('server error:', (m as unknown as { message: string }).message);
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.child.once('message', () => resolve()));
  }

  start(cmd: Extract<BigRoomServerCommand, { t: 'start' }>): Promise<void> {
    return new Promise((resolve) => {
      this.#started = resolve;
      this.send(cmd);
    });
  }

  send(cmd: BigRoomServerCommand): void {
    if (this.child.connected) this.child.send(cmd);
  }

  on(participantId: string, handler: (m: ServerMediaMessage, to: 'room' | 'participant') => void): void {
    this.#handlers.set(participantId, handler);
  }

  stats(): Promise<ServerStats> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.send({ t: 'stats', id, roomId: ROOM });
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.send({ t: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.child.exitCode === null) this.child.kill();
  }
}

/** One lean-clients process (bench/forwarding/lean-clients.ts). */
class LeanClients {
  readonly child: ChildProcess;
  readonly #joined = new Map<string, (ok: boolean) => void>();
  readonly #snapshots = new Map<number, (s: LeanSnapshot) => void>();
  #started: ((r: { publishers: number; receivers: number; fallbacks: number }) => void) | null = null;
  #seq = 1;

  constructor(server: Server) {
    this.child = fork(join(here, '..', 'forwarding', 'lean-clients.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const child = this.child;
    process.once('exit', () => child.kill());
    child.on('message', (raw) => {
      const m = raw as LeanReply;
      if (m.t === 'signal') server.send({ t: 'signal', roomId: m.roomId, participantId: m.id, message: m.message });
      else if (m.t === 'joined') this.#joined.get(m.id)?.(m.ok);
      else if (m.t === 'snapshot') this.#snapshots.get(m.seq)?.(m.snapshot);
      else if (m.t === 'started') this.#started?.(m);
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.child.once('message', () => resolve()));
  }

  send(cmd: LeanCommand): void {
    if (this.child.connected) this.child.send(cmd);
  }

  join(id: string, speaker: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.#joined.set(id, resolve);
      this.send({ t: 'join', roomId: ROOM, id, speaker });
    });
  }

  start(intervalMs: number): Promise<{ publishers: number; receivers: number; fallbacks: number }> {
    return new Promise((resolve) => {
      this.#started = resolve;
      this.send({ t: 'start', intervalMs });
    });
  }

  snapshot(): Promise<LeanSnapshot> {
    const seq = this.#seq++;
    return new Promise((resolve) => {
      this.#snapshots.set(seq, resolve);
      this.send({ t: 'snapshot', seq });
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.send({ t: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill();
  }
}

interface Result {
  scenario: string;
  capacity: number;
  participants: number;
  joined: number;
  failedJoins: number;
  joinP50Ms: number;
  joinP99Ms: number;
  joinTotalS: number;
  /** Listeners (every participant but the speakers' own slot aside) that received RTP in the window. */
  listenersWithAudio: number;
  /** Those that received all K slot streams (3 distinct SSRCs) in the window. */
  listenersWithAllSlots: number;
  lossPct: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  tagsChecked: number;
  badTags: number;
  /** Server process CPU (main thread + media workers), in cores. */
  serverCores: number;
  /** Each media worker's event-loop utilisation at the end of the window, with the room's participants it hosts. */
  workers: { threadId: number; elu: number; participants: number; home: boolean | null }[];
  packetsOutPerS: number;
  targetPacketsOutPerS: number;
  packetsInPerS: number;
  /** Speakers' packets sent per second, and the share of them the server never accepted (kernel drops on a starved worker). */
  sentPerS: number;
  inboundLossPct: number;
  receivedPerS: number;
  clientCores: number;
  spill: { recordsOut: number; recordsIn: number; dropped: number } | null;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(name: string, capacity: number, udpBase: number, transport: 'ring' | 'batch'): Promise<Result> {
  const n = config.participants;
  const server = new Server();
  await server.ready();
  await server.start({ t: 'start', workers: config.workers, capacity, slots: config.slots, udpBase, rtcMinPort: 56920, rtcMaxPort: 56999, transport });
  const procs = Array.from({ length: config.clientProcs }, () => new LeanClients(server));
  await Promise.all(procs.map((p) => p.ready()));
  const joinMs: number[] = [];
  let failedJoins = 0;
  const t0 = performance.now();
  const batch: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const id = `p${i}`;
    // Speakers spread over the join order, so both workers of the spread room host some.
    const every = Math.floor(n / config.speakers);
    const speaker = i % every === 0 && i / every < config.speakers ? i / every : -1;
    const proc = procs[i % procs.length]!;
    server.on(id, (message, to) => proc.send({ t: 'media', roomId: ROOM, id: to === 'room' ? null : id, message }));
    const started = performance.now();
    server.send({ t: 'join', roomId: ROOM, participantId: id, publish: speaker >= 0 });
    batch.push(
      proc.join(id, speaker).then((ok) => {
        if (ok) joinMs.push(performance.now() - started);
        else failedJoins++;
      }),
    );
    if (batch.length >= config.joinConcurrency) await Promise.all(batch.splice(0));
    if ((i + 1) % 100 === 0) console.log(`${name}: ${i + 1}/${n} joined (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  await Promise.all(batch);
  const joinTotalS = (performance.now() - t0) / 1000;
  const started = await Promise.all(procs.map((p) => p.start(config.intervalMs)));
  const fallbacks = started.reduce((a, x) => a + x.fallbacks, 0);
  if (fallbacks > 0) console.warn(`${name}: ${fallbacks} clients could not be taken over`);
  await new Promise((r) => setTimeout(r, config.warmupS * 1000));
  for (const p of procs) p.send({ t: 'window', on: true });
  const before = await server.stats();
  const cBefore = await Promise.all(procs.map((p) => p.snapshot()));
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, config.windowS * 1000));
  for (const p of procs) p.send({ t: 'window', on: false });
  const after = await server.stats();
  const elapsedS = (performance.now() - w0) / 1000;
  const cAfter = await Promise.all(procs.map((p) => p.snapshot()));
  const delta = (k: 'received' | 'lost' | 'sampled' | 'badTags' | 'cpuMs' | 'sent'): number => cAfter.reduce((a, c, i) => a + c[k] - cBefore[i]![k], 0);
  const received = delta('received');
  const lost = delta('lost');
  const hist = cAfter.reduce((acc, c) => acc.map((x, i) => x + (c.ssrcsPerListener[i] ?? 0)), new Array<number>(9).fill(0));
  const allSlots = hist.slice(config.slots).reduce((a, b) => a + b, 0);
  const total = (s: ServerStats, k: 'packetsOut' | 'packetsIn'): number => s.room?.total[k] ?? 0;
  const shards = after.room?.shards ?? [];
  const spillOf = (s: ServerStats): { recordsOut: number; recordsIn: number; dropped: number } =>
    (s.room?.shards ?? []).reduce(
      (a, x) => ({ recordsOut: a.recordsOut + (x.stats.spill?.recordsOut ?? 0), recordsIn: a.recordsIn + (x.stats.spill?.recordsIn ?? 0), dropped: a.dropped + (x.stats.spill?.dropped ?? 0) }),
      { recordsOut: 0, recordsIn: 0, dropped: 0 },
    );
  const spillAfter = spillOf(after);
  const spillBefore = spillOf(before);
  const listeners = n;
  // Every listener wants K streams; a speaker wants K of the other 9.
  const targetOut = listeners * config.slots * (1000 / config.intervalMs);
  joinMs.sort((a, b) => a - b);
  const result: Result = {
    scenario: name,
    capacity,
    participants: n,
    joined: joinMs.length,
    failedJoins,
    joinP50Ms: Math.round(percentile(joinMs, 50)),
    joinP99Ms: Math.round(percentile(joinMs, 99)),
    joinTotalS: Math.round(joinTotalS * 10) / 10,
    listenersWithAudio: cAfter.reduce((a, c) => a + c.listenersWithAudio, 0),
    listenersWithAllSlots: allSlots,
    lossPct: received + lost > 0 ? Math.round((lost / (received + lost)) * 10_000) / 100 : 100,
    latencyP50Ms: Math.round(Math.max(...cAfter.map((c) => c.latencyP50Ms)) * 100) / 100,
    latencyP99Ms: Math.round(Math.max(...cAfter.map((c) => c.latencyP99Ms)) * 100) / 100,
    tagsChecked: delta('sampled'),
    badTags: delta('badTags'),
    serverCores: Math.round(((after.cpuMs - before.cpuMs) / 1000 / elapsedS) * 100) / 100,
    workers: after.loads.map((l) => {
      const shard = shards.find((s) => s.threadId === l.threadId);
      return { threadId: l.threadId, elu: Math.round(l.elu * 100) / 100, participants: shard?.participants ?? 0, home: shard === undefined ? null : shard.home };
    }),
    packetsOutPerS: Math.round((total(after, 'packetsOut') - total(before, 'packetsOut')) / elapsedS),
    targetPacketsOutPerS: targetOut,
    packetsInPerS: Math.round((total(after, 'packetsIn') - total(before, 'packetsIn')) / elapsedS),
    sentPerS: Math.round(delta('sent') / elapsedS),
    inboundLossPct:
      delta('sent') > 0 ? Math.round(Math.max(0, 1 - (total(after, 'packetsIn') - total(before, 'packetsIn')) / delta('sent')) * 10_000) / 100 : 0,
    receivedPerS: Math.round(received / elapsedS),
    clientCores: Math.round((delta('cpuMs') / 1000 / elapsedS) * 100) / 100,
    spill:
      capacity > 0
        ? {
            recordsOut: Math.round((spillAfter.recordsOut - spillBefore.recordsOut) / elapsedS),
            recordsIn: Math.round((spillAfter.recordsIn - spillBefore.recordsIn) / elapsedS),
            dropped: spillAfter.dropped - spillBefore.dropped,
          }
        : null,
  };
  await Promise.allSettled(procs.map((p) => p.close()));
  await server.close();
  return result;
}

// 1. The link transports, head to head (the spill shards' packets: 10 speakers × 50 pps per link, and 20× that).
const links: LinkResult[] = [];
for (const pps of [500, 10_000]) {
  for (const t of ['ring', 'batch'] as const) {
    const r = await measureLink(t, pps, quick ? 3 : 8);
    links.push(r);
    console.log(
      `link ${t.padEnd(5)} ${String(pps).padStart(6)} rec/s: producer ${r.producerNsPerRecord.toFixed(0)} ns, consumer ${r.consumerNsPerRecord.toFixed(0)} ns per record, ` +
        `latency p50 ${r.latencyP50Ms.toFixed(3)} / p99 ${r.latencyP99Ms.toFixed(3)} ms, loss ${r.lossPct.toFixed(2)} %`,
    );
  }
}
const cost = (t: 'ring' | 'batch'): number =>
  links.filter((l) => l.transport === t).reduce((a, l) => a + l.producerNsPerRecord + l.consumerNsPerRecord, 0);
const p99 = (t: 'ring' | 'batch'): number => Math.max(...links.filter((l) => l.transport === t).map((l) => l.latencyP99Ms));
const transport: 'ring' | 'batch' = cost('ring') <= cost('batch') ? 'ring' : 'batch';
console.log(`link transport for the room: ${transport} (CPU per record ring ${cost('ring').toFixed(0)} ns vs batch ${cost('batch').toFixed(0)} ns, summed over the rates)`);

// 2. The room, spread over both workers, then held by one (baseline), same run.
const spread = await run('spread', Math.ceil(config.participants / config.workers), UDP_BASES[0]!, transport);
console.log(JSON.stringify(spread));
const one = await run('one-worker', 0, UDP_BASES[1]!, transport);
console.log(JSON.stringify(one));

const json = {
  quick,
  participants: spread.participants,
  listenersWithAudio: spread.listenersWithAudio,
  listenersWithAllSlots: spread.listenersWithAllSlots,
  lossPct: spread.lossPct,
  serverCores: spread.serverCores,
  joinP50Ms: spread.joinP50Ms,
  joinP99Ms: spread.joinP99Ms,
  packetsOutPerS: spread.packetsOutPerS,
  baseline: {
    listenersWithAudio: one.listenersWithAudio,
    listenersWithAllSlots: one.listenersWithAllSlots,
    lossPct: one.lossPct,
    serverCores: one.serverCores,
    packetsOutPerS: one.packetsOutPerS,
  },
  vsOneWorker: Math.round((spread.packetsOutPerS / Math.max(one.packetsOutPerS, 1)) * 100) / 100,
  linkTransport: transport,
  links,
  scenarios: [spread, one],
  config,
  host: { cores: cpus().length, loadAverage: loadavg().map((x) => Math.round(x * 10) / 10) },
};
const outDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'bigroom.json'), JSON.stringify(json, null, 2) + '\n');

const row = (r: Result): string =>
  `| ${r.scenario} | ${r.capacity === 0 ? 'one worker' : `${r.capacity} per worker`} | ${r.joined}/${r.participants} (${r.failedJoins} failed) | ${r.joinP50Ms} / ${r.joinP99Ms} | ${r.listenersWithAudio} | ${r.listenersWithAllSlots} | ${r.lossPct} % | ${r.inboundLossPct} % | ${r.latencyP50Ms} / ${r.latencyP99Ms} | ${r.serverCores} | ${r.workers.map((w) => `${w.home === null ? '–' : w.home ? 'home' : 'spill'} ${w.participants}p ${Math.round(w.elu * 100)} %`).join(', ')} | ${r.packetsOutPerS} of ${r.targetPacketsOutPerS} | ${r.tagsChecked}/${r.badTags} | ${r.clientCores} |`;
const linkRow = (l: LinkResult): string =>
  `| ${l.transport} | ${l.pps} | ${l.producerNsPerRecord.toFixed(0)} | ${l.consumerNsPerRecord.toFixed(0)} | ${l.latencyP50Ms.toFixed(3)} / ${l.latencyP99Ms.toFixed(3)} | ${l.lossPct.toFixed(2)} % |`;
writeFileSync(
  join(outDir, 'bigroom.md'),
  `# One big room over the media workers${quick ? ' (quick)' : ''}

One room of ${config.participants} participants, ${config.speakers} speakers (20 ms frames), K = ${config.slots} slots, the real media plane
with ${config.workers} worker threads and one shared UDP port per worker, in a child process; lean clients
(werift joins, then VoxLink's SRTP for media; 1 packet in 8 tag-verified with the receiver's own keys) in
${config.clientProcs} other processes, all on this host: ${cpus().length} cores, load average ${json.host.loadAverage.join(' / ')} at the end
(shared with other jobs: compare the rows of one run, not runs). \`spread\`: \`media.roomWorkerCapacity\` =
${Math.ceil(config.participants / config.workers)}, the room on its home worker and one spill worker; \`one-worker\`: the same room held by one worker (baseline).

| scenario | capacity | joined | join p50 / p99 ms | listeners with audio | with all ${config.slots} slots | loss (listeners) | inbound loss | latency p50 / p99 ms | server cores | workers (participants, ELU) | packets/s out (of target) | tags checked / bad | client cores |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${row(spread)}
${row(one)}

\`\`\`mermaid
xychart-beta
  title "Packets/s the server sent to listeners (target ${spread.targetPacketsOutPerS})"
  x-axis ["spread over ${config.workers} workers", "one worker"]
  y-axis "packets/s"
  bar [${spread.packetsOutPerS}, ${one.packetsOutPerS}]
\`\`\`

Loss (listeners) = sequence gaps on the slot streams the listeners received; inbound loss = speakers'
packets the server never accepted (dropped by the kernel while a worker was saturated; a slot that
re-anchors after a switch hides such gaps from the listeners). Latency is publisher socket → receiver
socket, so on a saturated host it is mostly queueing in the server's and the clients' sockets.

Spread vs one worker: **${json.vsOneWorker}×** the packets out. Between the workers
(\`spread\`): ${spread.spill?.recordsOut ?? 0} records/s written to the other worker, ${spread.spill?.recordsIn ?? 0} read, ${spread.spill?.dropped ?? 0} dropped.

## Link transports (bench/bigroom/link.ts)

Two worker threads, 80-byte records in 5 ms bursts; producer = its CPU per record written; consumer = its
event-loop busy time per record; latency one way between the threads.

| transport | records/s | producer ns/record | consumer ns/record | latency p50 / p99 ms | loss |
| --- | --- | --- | --- | --- | --- |
${links.map(linkRow).join('\n')}

The room ran on **${transport}** (lower CPU per record over both rates).
`,
);
console.log(`wrote ${join(outDir, 'bigroom')}.{json,md}`);
process.exit(0);
