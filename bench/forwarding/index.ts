/**
 * `npm run bench -- forwarding [--quick]`: audio forwarding cost of the media room.
 *
 * The server (media rooms) runs in a child process; lean clients (lean-clients.ts: they join
 * through werift, then send and receive on VoxLink's SRTP, checking a sample of tags) run in
 * another. Publishers send 60-byte frames stamped with their send time, so receivers measure
 * sender-to-receiver latency on loopback without decoding. Scenarios:
 *   slots  – R rooms × P participants, S speakers, K = 3 slots (VoxLink's router, fast path: its own SRTP), a UDP port per peer
 *   slots-direct-send – the same, sends through the opt-in direct send (src/media/udp-direct.ts)
 *   slots-shared-port – the same, every peer on the server's one UDP port (`media.udpPort`)
 *   slots-batched – the shared port with batched sends (`media.udpBatch`: the server runs with --test-udp-no-try-send)
 *   slots-werift-srtp – the slots load with `media.fastSrtp` off (werift's SRTP and sendRtp, the path before)
 *   naive  – the same load through a naive werift fan-out (every packet to every peer, one track per publisher)
 *   large  – one room of 150 participants (80 with --quick) with 5 speakers (K = 3): every listener gets audio, loss < 1 %
 *   large-werift-srtp – the same on werift's SRTP (full run only, or --quick --only=large-werift-srtp)
 * Writes bench/results/forwarding.json and .md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MediaRoomStats } from '../../src/media/room.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';
import { UDP_BATCH_FLAG } from '../../src/media/udp-direct.ts';
import { Server } from './server-process.ts';
import type { LeanCommand, LeanReply, LeanSnapshot } from './lean-clients.ts';
import { measureHotPath } from './hotpath.ts';
import { costSplit, topFunctions, type CostSplit } from './cost-split.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

interface Scenario {
  name: string;
  mode: 'slots' | 'naive';
  /** Room option `fastSrtp` (slots mode): VoxLink's SRTP straight onto the socket, or werift's sendRtp. */
  fastSrtp: boolean;
  /** The fast path sends with the opt-in direct send (src/media/udp-direct.ts) instead of Node's `Socket#send`. */
  directSend?: boolean;
  /** Every peer on the worker's one UDP port (`media.udpPort`) instead of a port per peer. */
  sharedPort?: boolean;
  /** The server runs with `--test-udp-no-try-send`: queued sends go out with sendmmsg (docs/media.md "Batched sends"). */
  batchSend?: boolean;
  rooms: number;
  participants: number;
  speakers: number;
  slots: number;
  warmupS: number;
  windowS: number;
  /** Each publisher sends a packet every intervalMs (20 = one voice stream; less = more load per peer). */
  intervalMs: number;
  /** Seconds of the profiled window (cost split) after the measured one. */
  profileS: number;
  /** Lean-client processes the participants are spread over. */
  clientProcs: number;
}

interface Result {
  scenario: Scenario;
  serverCpuPct: number;
  forwardedPps: number;
  inboundPps: number;
  ppsPerCore: number;
  cpuPctPer1000pps: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  lossPct: number;
  receivedPps: number;
  /** Packets the lean receivers unprotected (tag verified) in the window, and how many failed. */
  tagsChecked: number;
  badTags: number;
  clientCpuPct: number;
  listenersWithAudio: number;
  listeners: number;
  gcPerS: number;
  gcMsPerS: number;
  joinS: number;
  failedJoins: number;
  /** Forwarded pps the scenario should reach if every publisher kept its rate. */
  targetPps: number;
  /** Server CPU µs per forwarded packet by category, from the profiled window (cost-split.ts). */
  costSplitUs: CostSplit;
}


/** The lean clients' process (lean-clients.ts): joins through werift, then media on VoxLink's SRTP. */
class LeanClients {
  readonly child: ChildProcess;
  readonly #joined = new Map<string, (ok: boolean) => void>();
  readonly #snapshots = new Map<number, (s: LeanSnapshot) => void>();
  #started: ((r: { publishers: number; receivers: number; fallbacks: number }) => void) | null = null;
  #seq = 1;

  constructor(server: Server) {
    this.child = fork(join(here, 'lean-clients.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const child = this.child;
    process.once('exit', () => child.kill());
    child.on('message', (raw) => {
      const m = raw as LeanReply;
      if (m.t === 'signal') server.send({ t: 'signal', roomId: m.roomId, participantId: m.id, message: m.message });
      else if (m.t === 'joined') this.#joined.get(`${m.roomId}/${m.id}`)?.(m.ok);
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

  join(roomId: string, id: string, speaker: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.#joined.set(`${roomId}/${id}`, resolve);
      this.send({ t: 'join', roomId, id, speaker });
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

async function run(s: Scenario, portBase: number): Promise<Result> {
  const server = new Server(s.directSend === true ? { VOXLINK_DIRECT_UDP: '1' } : {}, s.batchSend === true ? [UDP_BATCH_FLAG] : []);
  await server.ready();
  const procs = Array.from({ length: s.clientProcs }, () => new LeanClients(server));
  await Promise.all(procs.map((p) => p.ready()));
  let failedJoins = 0;
  let n = 0;
  const joinStart = performance.now();
  for (let r = 0; r < s.rooms; r++) {
    const roomId = `room${r}`;
    // One port per participant (announced address only) plus headroom.
    const span = s.participants * 2 + 20;
    const min = portBase + r * span;
    server.send({ t: 'create', roomId, mode: s.mode, slots: s.slots, publishers: s.speakers, rtcMinPort: min, rtcMaxPort: min + span - 1, fastSrtp: s.fastSrtp, ...(s.sharedPort === true ? { udpPort: portBase + 790 } : {}) });
    const batch: Promise<void>[] = [];
    for (let p = 0; p < s.participants; p++) {
      const id = `p${p}`;
      const speaker = p < s.speakers ? p : -1;
      const proc = procs[n++ % procs.length]!;
      server.on(roomId, id, (message, to) => proc.send({ t: 'media', roomId, id: to === 'room' ? null : id, message }));
      server.send({ t: 'join', roomId, participantId: id, publish: speaker >= 0 });
      // A peer can fail its DTLS handshake on a starved box (werift): count failures instead of aborting.
      batch.push(proc.join(roomId, id, speaker).then((ok) => void (ok || failedJoins++)));
      if (batch.length === 10) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
  }
  const joinS = (performance.now() - joinStart) / 1000;
  const started = await Promise.all(procs.map((p) => p.start(s.intervalMs)));
  const fallbacks = started.reduce((a, x) => a + x.fallbacks, 0);
  if (fallbacks > 0) console.warn(`${s.name}: ${fallbacks} clients could not be taken over (no AES-CM profile or no UDP pair)`);

  await new Promise((r) => setTimeout(r, s.warmupS * 1000));
  for (const p of procs) p.send({ t: 'window', on: true });
  const before = await server.stats();
  const clientsBefore = await Promise.all(procs.map((p) => p.snapshot()));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, s.windowS * 1000));
  for (const p of procs) p.send({ t: 'window', on: false });
  const after = await server.stats();
  const elapsedS = (performance.now() - t0) / 1000;
  const clientsAfter = await Promise.all(procs.map((p) => p.snapshot()));

  // The cost split: a separate, profiled window right after the measured one (the sampling
  // profiler costs a little CPU, so it does not colour the figures above).
  const profilePath = join(tmpdir(), `voxlink-forwarding-${s.name}-${process.pid}.cpuprofile`);
  await server.profile();
  const p0 = await server.stats();
  await new Promise((r) => setTimeout(r, s.profileS * 1000));
  const p1 = await server.stats();
  await server.profile(profilePath);
  const profiledPackets = p1.rooms.reduce((a, r) => a + r.packetsOut, 0) - p0.rooms.reduce((a, r) => a + r.packetsOut, 0);
  const split = costSplit(profilePath);
  const costSplitUs = Object.fromEntries(Object.entries(split).map(([k, us]) => [k, us / Math.max(profiledPackets, 1)])) as CostSplit;
  if (process.argv.includes('--top')) console.table(topFunctions(profilePath, 25));
  rmSync(profilePath, { force: true });

  const delta = (k: 'received' | 'lost' | 'sampled' | 'badTags' | 'sent' | 'cpuMs'): number =>
    clientsAfter.reduce((a, c, i) => a + c[k] - clientsBefore[i]![k], 0);
  const received = delta('received');
  const lost = delta('lost');
  // Latency percentiles: the clients' own (one process in the default scenarios; with more, the worst).
  const latencyP50Ms = Math.max(...clientsAfter.map((c) => c.latencyP50Ms));
  const latencyP99Ms = Math.max(...clientsAfter.map((c) => c.latencyP99Ms));
  const outBefore = before.rooms.reduce((a, r) => a + r.packetsOut, 0);
  const outAfter = after.rooms.reduce((a, r) => a + r.packetsOut, 0);
  const inBefore = before.rooms.reduce((a, r) => a + r.packetsIn, 0);
  const inAfter = after.rooms.reduce((a, r) => a + r.packetsIn, 0);
  const cpuS = (after.cpuMs - before.cpuMs) / 1000;
  const forwardedPps = (outAfter - outBefore) / elapsedS;
  const serverCpuPct = (cpuS / elapsedS) * 100;

  await Promise.allSettled(procs.map((p) => p.close()));
  await server.close();
  if (server.child.exitCode === null) await new Promise((r) => server.child.once('exit', r));
  return {
    scenario: s,
    serverCpuPct,
    forwardedPps,
    inboundPps: (inAfter - inBefore) / elapsedS,
    ppsPerCore: forwardedPps / Math.max(cpuS / elapsedS, 1e-6),
    cpuPctPer1000pps: serverCpuPct / Math.max(forwardedPps / 1000, 1e-6),
    latencyP50Ms,
    latencyP99Ms,
    lossPct: received + lost > 0 ? (lost / (received + lost)) * 100 : 100,
    receivedPps: received / elapsedS,
    tagsChecked: delta('sampled'),
    badTags: delta('badTags'),
    clientCpuPct: (delta('cpuMs') / 1000 / elapsedS) * 100,
    listenersWithAudio: clientsAfter.reduce((a, c) => a + c.listenersWithAudio, 0),
    listeners: s.rooms * s.participants,
    gcPerS: (after.gcCount - before.gcCount) / elapsedS,
    gcMsPerS: (after.gcMs - before.gcMs) / elapsedS,
    joinS,
    failedJoins,
    targetPps: targetPps(s),
    costSplitUs,
  };
}

function targetPps(s: Scenario): number {
  const perSpeakerStreams = s.mode === 'naive' ? s.speakers : s.slots;
  const listeners = s.participants - s.speakers;
  const perRoom = listeners * Math.min(perSpeakerStreams, s.speakers) + s.speakers * Math.min(perSpeakerStreams, s.speakers - 1);
  return perRoom * s.rooms * (1000 / s.intervalMs);
}

// Sized so the server works at least half a core in every scenario (quick included): lean clients
// absorb far more than werift's, and publishers send every 5–10 ms (2–4 voice streams' packet rate;
// the per-packet work is the same) so fewer peers carry the load.
const base = quick
  ? { rooms: 2, participants: 40, speakers: 3, slots: 3, warmupS: 2, windowS: 4, profileS: 2, intervalMs: 5, clientProcs: 1 }
  : { rooms: 4, participants: 40, speakers: 3, slots: 3, warmupS: 3, windowS: 12, profileS: 4, intervalMs: 10, clientProcs: 1 };
const largeRoom = quick
  ? { rooms: 1, participants: 80, speakers: 5, slots: 3, warmupS: 2, windowS: 4, profileS: 2, intervalMs: 5, clientProcs: 1 }
  : { rooms: 1, participants: 150, speakers: 5, slots: 3, warmupS: 3, windowS: 12, profileS: 4, intervalMs: 10, clientProcs: 1 };
const scenarios: Scenario[] = [
  { name: 'slots', mode: 'slots', fastSrtp: true, ...base },
  { name: 'slots-direct-send', mode: 'slots', fastSrtp: true, directSend: true, ...base },
  { name: 'slots-shared-port', mode: 'slots', fastSrtp: true, sharedPort: true, ...base },
  { name: 'slots-batched', mode: 'slots', fastSrtp: true, sharedPort: true, batchSend: true, ...base },
  { name: 'naive', mode: 'naive', fastSrtp: false, ...base },
  { name: 'slots-werift-srtp', mode: 'slots', fastSrtp: false, ...base },
  { name: 'large', mode: 'slots', fastSrtp: true, ...largeRoom },
  // The large room on werift's SRTP and send: in the full run, or with --only=large-werift-srtp.
  { name: 'large-werift-srtp', mode: 'slots', fastSrtp: false, ...largeRoom },
];

const hotPath = await measureHotPath(quick);
console.log(
  `hot path per inbound packet, K=${hotPath.slots}: VoxLink detector+routing+rewrite ${hotPath.voxlinkNsPerPacket} ns ` +
    `(${hotPath.voxlinkGcs} GCs); werift SRTP protect ×${hotPath.slots}: GCM ${hotPath.weriftGcmNsPerPacket} ns, ` +
    `CM-HMAC ${hotPath.weriftCmNsPerPacket} ns (${hotPath.weriftGcs} GCs)`,
);

// --only=<name>: run one scenario (profiling); results are then printed, not written.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const results: Result[] = [];
// This bench's fixed ports: 52400–53999, two halves used in turn so a closing server's sockets never collide.
let portBase = 52400;
for (const s of scenarios) {
  if (only !== undefined && s.name !== only) continue;
  if (only === undefined && quick && s.name === 'large-werift-srtp') continue;
  const t = performance.now();
  const r = await run(s, portBase);
  portBase = portBase === 52400 ? 53200 : 52400;
  results.push(r);
  console.log(
    `${s.name.padEnd(17)} ${s.rooms}×${s.participants} S=${s.speakers}: ${r.forwardedPps.toFixed(0)} pps at ${r.serverCpuPct.toFixed(0)} % CPU → ` +
      `${r.ppsPerCore.toFixed(0)} pps/core (in ${r.inboundPps.toFixed(0)} pps, received ${r.receivedPps.toFixed(0)} pps, client CPU ${r.clientCpuPct.toFixed(0)} %, tags ${r.tagsChecked}/${r.badTags} bad, join ${r.joinS.toFixed(1)} s), ${r.cpuPctPer1000pps.toFixed(1)} %CPU/1000pps, latency p50 ${r.latencyP50Ms.toFixed(1)} ms ` +
      `p99 ${r.latencyP99Ms.toFixed(1)} ms, loss ${r.lossPct.toFixed(2)} %, listeners with audio ${r.listenersWithAudio}/${r.listeners}, ` +
      `GC ${r.gcPerS.toFixed(1)}/s ${r.gcMsPerS.toFixed(1)} ms/s, failed joins ${r.failedJoins}, ` +
      `µs/packet ${Object.entries(r.costSplitUs).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(' ')} ` +
      `(${((performance.now() - t) / 1000).toFixed(1)} s)`,
  );
}

if (only !== undefined) process.exit(0);
const byName = (name: string): Result => results.find((r) => r.scenario.name === name)!;
const largeWerift = results.find((r) => r.scenario.name === 'large-werift-srtp');
const [slots, naive, large, weriftSrtp] = [byName('slots'), byName('naive'), byName('large'), byName('slots-werift-srtp')];
const directSend = byName('slots-direct-send');
const [sharedPort, batched] = [byName('slots-shared-port'), byName('slots-batched')];
const json = {
  ppsPerCore: Math.round(slots.ppsPerCore),
  serverCpuPct: round2(slots.serverCpuPct),
  forwardedPps: Math.round(slots.forwardedPps),
  /** Server CPU µs per forwarded packet (slots scenario), by category (bench/forwarding/cost-split.ts). */
  costSplitUs: splitRounded(slots.costSplitUs),
  tagsChecked: slots.tagsChecked,
  badTags: slots.badTags,
  latencyP50Ms: round2(slots.latencyP50Ms),
  latencyP99Ms: round2(slots.latencyP99Ms),
  lossPct: round2(slots.lossPct),
  cpuPctPer1000pps: round2(slots.cpuPctPer1000pps),
  naive: { ppsPerCore: Math.round(naive.ppsPerCore), latencyP50Ms: round2(naive.latencyP50Ms), latencyP99Ms: round2(naive.latencyP99Ms), lossPct: round2(naive.lossPct) },
  vsNaive: round2(slots.ppsPerCore / naive.ppsPerCore),
  /** The same slot router with werift's SRTP and sendRtp (`media.fastSrtp` off): what the fast path gains. */
  weriftSrtp: { ppsPerCore: Math.round(weriftSrtp.ppsPerCore), latencyP50Ms: round2(weriftSrtp.latencyP50Ms), latencyP99Ms: round2(weriftSrtp.latencyP99Ms), lossPct: round2(weriftSrtp.lossPct) },
  vsWeriftSrtp: round2(slots.ppsPerCore / weriftSrtp.ppsPerCore),
  /** The same load with the fast path's sends through the opt-in direct send (udp-direct.ts, VOXLINK_DIRECT_UDP=1). */
  directSend: { ppsPerCore: Math.round(directSend.ppsPerCore), latencyP50Ms: round2(directSend.latencyP50Ms), latencyP99Ms: round2(directSend.latencyP99Ms), lossPct: round2(directSend.lossPct), costSplitUs: directSend.costSplitUs },
  directVsDgram: round2(directSend.ppsPerCore / slots.ppsPerCore),
  /** Every peer on one UDP port (`media.udpPort`), sends one by one, then batched (sendmmsg; `media.udpBatch`). */
  sharedPort: { ppsPerCore: Math.round(sharedPort.ppsPerCore), latencyP50Ms: round2(sharedPort.latencyP50Ms), latencyP99Ms: round2(sharedPort.latencyP99Ms), lossPct: round2(sharedPort.lossPct), costSplitUs: splitRounded(sharedPort.costSplitUs) },
  batched: { ppsPerCore: Math.round(batched.ppsPerCore), latencyP50Ms: round2(batched.latencyP50Ms), latencyP99Ms: round2(batched.latencyP99Ms), lossPct: round2(batched.lossPct), costSplitUs: splitRounded(batched.costSplitUs) },
  batchedVsSharedPort: round2(batched.ppsPerCore / sharedPort.ppsPerCore),
  batchedVsSlots: round2(batched.ppsPerCore / slots.ppsPerCore),
  large: {
    participants: large.scenario.participants,
    speakers: large.scenario.speakers,
    listenersWithAudio: large.listenersWithAudio,
    failedJoins: large.failedJoins,
    listeners: large.listeners,
    lossPct: round2(large.lossPct),
    latencyP50Ms: round2(large.latencyP50Ms),
    latencyP99Ms: round2(large.latencyP99Ms),
    ppsPerCore: Math.round(large.ppsPerCore),
    serverCpuPct: round2(large.serverCpuPct),
    costSplitUs: splitRounded(large.costSplitUs),
    ...(largeWerift === undefined ? {} : { weriftSrtpPpsPerCore: Math.round(largeWerift.ppsPerCore) }),
  },
  hotPath,
  quick,
  scenarios: results.map((r) => ({ ...r.scenario, ...roundAll(r) })),
};
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
function roundAll(r: Result): Record<string, unknown> {
  const { scenario: _s, costSplitUs, ...rest } = r;
  return { ...Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, round2(v)])), costSplitUs: splitRounded(costSplitUs) };
}
function splitRounded(split: CostSplit): Record<string, number> {
  return Object.fromEntries(Object.entries(split).map(([k, v]) => [k, round2(v)]));
}

// --quick results go to bench/results/quick/ (not committed) so they never replace a full run's.
const outDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'forwarding.json'), JSON.stringify(json, null, 2) + '\n');
const row = (r: Result): string =>
  `| ${r.scenario.name} | ${r.scenario.rooms}×${r.scenario.participants}, S=${r.scenario.speakers}, K=${r.scenario.slots} | ${r.forwardedPps.toFixed(0)} of ${r.targetPps} | ${r.serverCpuPct.toFixed(0)} % | ${r.ppsPerCore.toFixed(0)} | ${r.cpuPctPer1000pps.toFixed(1)} | ${r.latencyP50Ms.toFixed(1)} / ${r.latencyP99Ms.toFixed(1)} | ${r.lossPct.toFixed(2)} % | ${r.listenersWithAudio}/${r.listeners} | ${r.gcPerS.toFixed(1)} / ${r.gcMsPerS.toFixed(1)} | ${r.failedJoins} |`;
writeFileSync(
  join(outDir, 'forwarding.md'),
  `# Audio forwarding${quick ? ' (quick)' : ''}

Server (media rooms) in a child process, werift clients in the bench process, loopback. Publishers
send a 60-byte frame every 20 ms; receivers measure sender→receiver latency (client SRTP + server
forward + client SRTP, same clock). Loss = sequence gaps on the received slot streams.
"pps/core" = forwarded packets per second divided by the server process's CPU share; the
machine is shared (2 cores, other jobs), so compare the rows of one run, not runs.
This run: ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end.
When "forwarded pps" is far below its target, the client process (all the werift clients, their
SRTP and the publishers' 20 ms clock) was starved: latency then measures its queueing, and the
server's fixed costs (timers, RTCP, ICE consent) weigh more per packet.

| scenario | load | forwarded pps (of target) | server CPU | pps/core | % CPU per 1000 pps | latency p50 / p99 ms | loss | listeners with audio | GC /s, ms/s | failed joins |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${results.map(row).join('\n')}

Slot router vs naive fan-out: **${json.vsNaive}×** the packets per core. Fast path (VoxLink's SRTP
straight onto the socket, \`media.fastSrtp\`) vs the same router on werift's SRTP and sendRtp:
**${json.vsWeriftSrtp}×**. The opt-in direct send (src/media/udp-direct.ts, \`slots-direct-send\`)
vs the fast path through Node's \`Socket#send\`: **${json.directVsDgram}×**. Every peer on one UDP
port (\`slots-shared-port\`, config \`media.udpPort\`) with batched sends (\`slots-batched\`: sendmmsg,
\`media.udpBatch\`; docs/media.md "Batched sends") vs the same port sending one by one:
**${json.batchedVsSharedPort}×**; vs \`slots\` (a port per peer): **${json.batchedVsSlots}×**.

Hot path per inbound packet with K = ${hotPath.slots} outputs, in-process, no sockets:
VoxLink's own work (speaker detector, route lookup, ${hotPath.slots} SlotStream rewrites) takes
**${hotPath.voxlinkNsPerPacket} ns** (${hotPath.voxlinkGcs} GCs over the loop${hotPath.voxlinkGcs === 0 ? ': it allocates nothing' : ''});
werift's SRTP protect of the same ${hotPath.slots} packets takes **${hotPath.weriftGcmNsPerPacket} ns**
(AES-128-GCM) / **${hotPath.weriftCmNsPerPacket} ns** (AES-CM + HMAC-SHA1), with ${hotPath.weriftGcs}
GCs: a Node cipher object, a serialised header and a concatenated buffer per packet. The
\`slots\` rows use the fast path instead (VoxLink's SrtpContext, one dgram send; docs/media.md
"Fast path"); \`npm run bench -- send-path\` isolates that per-packet send cost.
Note the naive fan-out sends every speaker to everyone (S streams per listener) while the router
sends at most K; with S ≤ K both forward the same packets, so the ratio is the per-packet cost.
`,
);
console.log(`vsNaive ${json.vsNaive}, vsWeriftSrtp ${json.vsWeriftSrtp}, directVsDgram ${json.directVsDgram}, batchedVsSharedPort ${json.batchedVsSharedPort}; wrote ${join(outDir, 'forwarding')}.{json,md}`);
