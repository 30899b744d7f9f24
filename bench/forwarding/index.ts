/**
 * `npm run bench -- forwarding [--quick]`: audio forwarding cost of the media room.
 *
 * The server (media rooms) runs in a child process; this process runs the werift clients
 * (NodeMediaClient, no Opus: publishers send 60-byte frames stamped with their send time, so the
 * receivers measure sender-to-receiver latency on loopback without decoding). Scenarios:
 *   slots  – R rooms × P participants, S speakers, K = 3 slots (VoxLink's router, fast path: its own SRTP)
 *   slots-werift-srtp – the same, with `media.fastSrtp` off (werift's SRTP and sendRtp, the path before)
 *   naive  – the same load through a naive werift fan-out (every packet to every peer, one track per publisher)
 *   large  – one 100-participant room with 5 speakers (K = 3): every listener gets audio, loss < 1 %
 *            (50 participants with --quick, to stay under a minute)
 *   large-werift-srtp – the same on werift's SRTP (full run only, or --quick --only=large-werift-srtp)
 * Writes bench/results/forwarding.json and .md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import type { MediaRoomStats } from '../../src/media/room.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';
import type { ServerCommand } from './server.ts';
import { measureHotPath } from './hotpath.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

interface Scenario {
  name: string;
  mode: 'slots' | 'naive';
  /** Room option `fastSrtp` (slots mode): VoxLink's SRTP straight onto the socket, or werift's sendRtp. */
  fastSrtp: boolean;
  rooms: number;
  participants: number;
  speakers: number;
  slots: number;
  warmupS: number;
  windowS: number;
}

interface Result {
  scenario: Scenario;
  serverCpuPct: number;
  forwardedPps: number;
  ppsPerCore: number;
  cpuPctPer1000pps: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  lossPct: number;
  listenersWithAudio: number;
  listeners: number;
  gcPerS: number;
  gcMsPerS: number;
  joinS: number;
  failedJoins: number;
  /** Forwarded pps the scenario should reach if every publisher kept its 50 pps. */
  targetPps: number;
}

const FRAME_MS = 20;
const PAYLOAD_BYTES = 60; // ≈ 24 kbit/s Opus voice frames
const nowMs = (): number => performance.timeOrigin + performance.now();

class Server {
  readonly child: ChildProcess;
  readonly #handlers = new Map<string, (m: ServerMediaMessage) => void>();
  readonly #pending = new Map<number, (s: ServerStats) => void>();
  #nextId = 1;

  constructor() {
    // VOXLINK_BENCH_SERVER_ARGS: extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const extra = (process.env.VOXLINK_BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
    this.child = fork(join(here, 'server.ts'), [], {
      execArgv: ['--import', 'tsx', ...extra],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child = this.child;
    process.once('exit', () => child.kill());
    this.child.on('message', (raw) => {
      const m = raw as { t: string; roomId: string; event: { to: string; participantId?: string; message: ServerMediaMessage } } & ServerStats & { id: number; message: string };
      if (m.t === 'event') {
        if (m.event.to === 'room') for (const [key, h] of this.#handlers) key.startsWith(`${m.roomId}/`) && h(m.event.message);
        else this.#handlers.get(`${m.roomId}/${m.event.participantId}`)?.(m.event.message);
      } else if (m.t === 'stats') {
        this.#pending.get(m.id)?.(m);
        this.#pending.delete(m.id);
      } else if (m.t === 'error') {
        console.error('server error:', m.message);
      }
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.child.once('message', () => resolve()));
  }

  send(cmd: ServerCommand): void {
    this.child.send(cmd);
  }

  on(roomId: string, participantId: string, handler: (m: ServerMediaMessage) => void): void {
    this.#handlers.set(`${roomId}/${participantId}`, handler);
  }

  stats(): Promise<ServerStats> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.send({ t: 'stats', id });
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.send({ t: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill();
  }
}

interface ServerStats {
  cpuMs: number;
  gcCount: number;
  gcMs: number;
  rooms: MediaRoomStats[];
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(s: Scenario, portBase: number): Promise<Result> {
  const server = new Server();
  await server.ready();
  const clients: { client: NodeMediaClient; roomId: string; id: string; speaker: number }[] = [];
  const latencies = new Float64Array(4_000_000);
  let latencyCount = 0;
  let measuring = false;
  const heardInWindow = new Set<NodeMediaClient>();
  let failedJoins = 0;
  const joinStart = performance.now();
  for (let r = 0; r < s.rooms; r++) {
    const roomId = `room${r}`;
    // Two ports per participant (werift binds one per interface) plus headroom.
    const span = s.participants * 3 + 20;
    const min = portBase + r * span;
    server.send({ t: 'create', roomId, mode: s.mode, slots: s.slots, publishers: s.speakers, rtcMinPort: min, rtcMaxPort: min + span - 1, fastSrtp: s.fastSrtp });
    const batch: Promise<void>[] = [];
    for (let p = 0; p < s.participants; p++) {
      const id = `p${p}`;
      const speaker = p < s.speakers ? p : -1;
      const client = new NodeMediaClient({
        room: roomId,
        decode: false,
        signal: { send: (message) => server.send({ t: 'signal', roomId, participantId: id, message }) },
      });
      server.on(roomId, id, (m) => void client.handle(m).catch(() => undefined));
      client.on('rtp', (pkt) => {
        if (!measuring) return;
        heardInWindow.add(client);
        if (latencyCount < latencies.length) latencies[latencyCount++] = nowMs() - pkt.payload.readDoubleLE(0);
      });
      clients.push({ client, roomId, id, speaker });
      server.send({ t: 'join', roomId, participantId: id, publish: speaker >= 0 });
      // A peer can fail its DTLS handshake on a starved box (werift); the slot room then replaces
      // it (media reconnect), the naive baseline cannot. Count failures instead of aborting.
      batch.push(
        client.connected(30_000).catch(() => {
          failedJoins++;
        }),
      );
      if (batch.length === 10) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
  }
  const joinS = (performance.now() - joinStart) / 1000;

  // One clock for every publisher: a 60-byte frame per 20 ms, stamped with the send time.
  const speakers = clients.filter((c) => c.speaker >= 0);
  const frame = Buffer.alloc(PAYLOAD_BYTES, 0x55);
  const start = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor((performance.now() - start) / FRAME_MS);
    if (due - sent > 10) {
      for (const c of speakers) c.client.skipFrames(due - sent - 1);
      sent = due - 1;
    }
    while (sent < due) {
      for (const c of speakers) {
        frame.writeDoubleLE(nowMs(), 0);
        frame.writeUInt16LE(c.speaker, 8);
        // Distinct levels: speaker 0 loudest, so the ranking is stable.
        c.client.sendAudioFrame(frame, 20 + c.speaker * 4);
      }
      sent++;
    }
  }, 5);

  await new Promise((r) => setTimeout(r, s.warmupS * 1000));
  const gapsBefore = clients.map((c) => sumSlots(c.client));
  const before = await server.stats();
  const t0 = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, s.windowS * 1000));
  measuring = false;
  const after = await server.stats();
  const elapsedS = (performance.now() - t0) / 1000;
  const gapsAfter = clients.map((c) => sumSlots(c.client));
  clearInterval(timer);

  let received = 0;
  let lost = 0;
  gapsAfter.forEach((g, i) => {
    received += g.packets - gapsBefore[i].packets;
    lost += g.gaps - gapsBefore[i].gaps;
  });
  const outBefore = before.rooms.reduce((a, r) => a + r.packetsOut, 0);
  const outAfter = after.rooms.reduce((a, r) => a + r.packetsOut, 0);
  const cpuS = (after.cpuMs - before.cpuMs) / 1000;
  const forwardedPps = (outAfter - outBefore) / elapsedS;
  const serverCpuPct = (cpuS / elapsedS) * 100;
  const sorted = latencies.subarray(0, latencyCount).sort();

  await Promise.allSettled(clients.map((c) => c.client.close()));
  await server.close();
  if (server.child.exitCode === null) await new Promise((r) => server.child.once('exit', r));
  return {
    scenario: s,
    serverCpuPct,
    forwardedPps,
    ppsPerCore: forwardedPps / Math.max(cpuS / elapsedS, 1e-6),
    cpuPctPer1000pps: serverCpuPct / Math.max(forwardedPps / 1000, 1e-6),
    latencyP50Ms: percentile(sorted, 50),
    latencyP99Ms: percentile(sorted, 99),
    lossPct: received + lost > 0 ? (lost / (received + lost)) * 100 : 100,
    listenersWithAudio: heardInWindow.size,
    listeners: clients.length,
    gcPerS: (after.gcCount - before.gcCount) / elapsedS,
    gcMsPerS: (after.gcMs - before.gcMs) / elapsedS,
    joinS,
    failedJoins,
    targetPps: targetPps(s),
  };
}

function targetPps(s: Scenario): number {
  const perSpeakerStreams = s.mode === 'naive' ? s.speakers : s.slots;
  const listeners = s.participants - s.speakers;
  const perRoom = listeners * Math.min(perSpeakerStreams, s.speakers) + s.speakers * Math.min(perSpeakerStreams, s.speakers - 1);
  return perRoom * s.rooms * (1000 / FRAME_MS);
}

function sumSlots(c: NodeMediaClient): { packets: number; gaps: number } {
  let packets = 0;
  let gaps = 0;
  for (let k = 0; k < c.slotCount; k++) {
    const st = c.slotStats(k);
    if (st === undefined) continue;
    packets += st.packets;
    gaps += st.seqGaps;
  }
  return { packets, gaps };
}

const base = quick
  ? { rooms: 2, participants: 6, speakers: 2, slots: 3, warmupS: 1.5, windowS: 3 }
  : { rooms: 4, participants: 12, speakers: 3, slots: 3, warmupS: 3, windowS: 12 };
const scenarios: Scenario[] = [
  { name: 'slots', mode: 'slots', fastSrtp: true, ...base },
  { name: 'naive', mode: 'naive', fastSrtp: false, ...base },
  { name: 'slots-werift-srtp', mode: 'slots', fastSrtp: false, ...base },
  // --quick keeps the large room under the 60 s budget with 50 participants; the full run has 100.
  { name: 'large', mode: 'slots', fastSrtp: true, rooms: 1, participants: quick ? 50 : 100, speakers: 5, slots: 3, warmupS: quick ? 1.5 : 3, windowS: quick ? 3 : 12 },
  // The large room on werift's SRTP and send: in the full run, or with --only=large-werift-srtp.
  { name: 'large-werift-srtp', mode: 'slots', fastSrtp: false, rooms: 1, participants: quick ? 50 : 100, speakers: 5, slots: 3, warmupS: quick ? 1.5 : 3, windowS: quick ? 3 : 12 },
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
let portBase = 46000;
for (const s of scenarios) {
  if (only !== undefined && s.name !== only) continue;
  if (only === undefined && quick && s.name === 'large-werift-srtp') continue;
  const t = performance.now();
  const r = await run(s, portBase);
  portBase += 1000;
  results.push(r);
  console.log(
    `${s.name.padEnd(17)} ${s.rooms}×${s.participants} S=${s.speakers}: ${r.forwardedPps.toFixed(0)} pps at ${r.serverCpuPct.toFixed(0)} % CPU → ` +
      `${r.ppsPerCore.toFixed(0)} pps/core, ${r.cpuPctPer1000pps.toFixed(1)} %CPU/1000pps, latency p50 ${r.latencyP50Ms.toFixed(1)} ms ` +
      `p99 ${r.latencyP99Ms.toFixed(1)} ms, loss ${r.lossPct.toFixed(2)} %, listeners with audio ${r.listenersWithAudio}/${r.listeners}, ` +
      `GC ${r.gcPerS.toFixed(1)}/s ${r.gcMsPerS.toFixed(1)} ms/s, failed joins ${r.failedJoins} ` +
      `(${((performance.now() - t) / 1000).toFixed(1)} s)`,
  );
}

if (only !== undefined) process.exit(0);
const byName = (name: string): Result => results.find((r) => r.scenario.name === name)!;
const largeWerift = results.find((r) => r.scenario.name === 'large-werift-srtp');
const [slots, naive, large, weriftSrtp] = [byName('slots'), byName('naive'), byName('large'), byName('slots-werift-srtp')];
const json = {
  ppsPerCore: Math.round(slots.ppsPerCore),
  latencyP50Ms: round2(slots.latencyP50Ms),
  latencyP99Ms: round2(slots.latencyP99Ms),
  lossPct: round2(slots.lossPct),
  cpuPctPer1000pps: round2(slots.cpuPctPer1000pps),
  naive: { ppsPerCore: Math.round(naive.ppsPerCore), latencyP50Ms: round2(naive.latencyP50Ms), latencyP99Ms: round2(naive.latencyP99Ms), lossPct: round2(naive.lossPct) },
  vsNaive: round2(slots.ppsPerCore / naive.ppsPerCore),
  /** The same slot router with werift's SRTP and sendRtp (`media.fastSrtp` off): what the fast path gains. */
  weriftSrtp: { ppsPerCore: Math.round(weriftSrtp.ppsPerCore), latencyP50Ms: round2(weriftSrtp.latencyP50Ms), latencyP99Ms: round2(weriftSrtp.latencyP99Ms), lossPct: round2(weriftSrtp.lossPct) },
  vsWeriftSrtp: round2(slots.ppsPerCore / weriftSrtp.ppsPerCore),
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
    ...(largeWerift === undefined ? {} : { weriftSrtpPpsPerCore: Math.round(largeWerift.ppsPerCore) }),
  },
  hotPath,
  quick,
  scenarios: results.map((r) => ({ ...r.scenario, ...roundAll(r) })),
};
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
function roundAll(r: Result): Record<string, number> {
  const { scenario: _s, ...rest } = r;
  return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, round2(v)]));
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
**${json.vsWeriftSrtp}×**.

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
console.log(`vsNaive ${json.vsNaive}, vsWeriftSrtp ${json.vsWeriftSrtp}; wrote ${join(outDir, 'forwarding')}.{json,md}`);
