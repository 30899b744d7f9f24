/**
 * `npm run bench -- mixing [--quick]`: how many 10-person rooms (3 speaking) one thread mixes in real
 * time, with the RoomMixer (N−1 for speakers + one shared encode) and with a naive mixer that encodes
 * one stream per participant (Janus audiobridge's way). Each trial runs N rooms in one
 * `node:worker_threads` worker on one drift-free 20 ms clock; capacity is the largest N with < 1 %
 * late ticks (a tick starting > 10 ms after its slot), found by ramping then bisecting.
 * Writes bench/results/mixing.json and bench/results/mixing.md.
 */
import { Worker } from 'node:worker_threads';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { OpusEncoder, warmUpOpus } from '../../src/codec/opus.ts';
import { OpusApplication } from '../../src/codec/opus-ctl.ts';
import { framePower } from '../../src/codec/mixer.ts';
import { speechLikeFloat32 } from '../../test/codec/signal.ts';
import { measureKernels, type KernelResult } from './kernels.ts';
import type { TrialInput, TrialResult } from './worker.ts';
import { endToEndTrial, type EndToEndTrial } from './e2e.ts';

const here = dirname(fileURLToPath(import.meta.url));
// --quick results go to bench/results/quick/ (not committed) so they never replace a full run's.
const resultsDir = join(here, '..', 'results', ...(process.argv.includes('--quick') ? ['quick'] : []));
const quick = process.argv.includes('--quick');
const PARTICIPANTS = 10;
const SPEAKERS = 3;
const LATE_LIMIT = 0.01;
const trialSeconds = quick ? 1.5 : 8;
const warmupSeconds = quick ? 0.6 : 2;
const maxTrials = quick ? 2 : 8;
const started = performance.now();

/**
 * What a browser sends: Opus 32 kbps VOIP with in-band FEC, 20 ms frames, and the RFC 6464 audio
 * level of each frame in a header extension (Chrome and Firefox do when it is negotiated).
 */
function encodeLoop(pcm: Float32Array, dtx: boolean): { packets: (Uint8Array | null)[]; levels: number[] } {
  const enc = new OpusEncoder({
    application: OpusApplication.VOIP,
    bitrate: 32_000,
    inbandFec: true,
    packetLossPercent: 5,
    dtx,
  });
  const packets: (Uint8Array | null)[] = [];
  const levels: number[] = [];
  for (let f = 0; (f + 1) * 960 <= pcm.length; f++) {
    const frame = pcm.subarray(f * 960, (f + 1) * 960);
    enc.pcmIn.set(frame);
    const packet = enc.encodeFrame();
    // libwebrtc never sends Opus's ≤ 2-byte DTX frames; only the 400 ms comfort-noise refreshes.
    packets.push(dtx && packet.length <= 2 ? null : packet.slice());
    const rms = Math.sqrt(framePower(frame));
    levels.push(rms > 0 ? Math.min(127, Math.max(0, Math.round(-20 * Math.log10(rms)))) : 127);
  }
  enc.close();
  return { packets, levels };
}

warmUpOpus();
const loopSeconds = quick ? 3 : 6;
const speech = [1, 2, 3].map((seed) => encodeLoop(speechLikeFloat32(48_000, loopSeconds, seed), false));
const silenceFull = encodeLoop(new Float32Array(48_000 * 2), false);
/** The same silence from a client that sends no audio level: every packet must be decoded. */
const silenceNoLevel = { packets: silenceFull.packets, levels: silenceFull.levels.map(() => -1) };
type Loop = ReturnType<typeof encodeLoop>;

function trial(mode: 'shared' | 'naive', rooms: number, silence: Loop, seconds = trialSeconds): Promise<TrialResult> {
  const data: TrialInput = {
    mode,
    rooms,
    participants: PARTICIPANTS,
    speakers: SPEAKERS,
    seconds,
    warmupSeconds,
    speech: speech.map((l) => l.packets.map((p) => p!)),
    speechLevels: speech.map((l) => l.levels),
    silence: silence.packets,
    silenceLevels: silence.levels,
  };
  const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: data });
  return new Promise((resolve, reject) => {
    worker.once('message', (r: TrialResult) => {
      void worker.terminate();
      resolve(r);
    });
    worker.once('error', reject);
  });
}

function fmt(r: TrialResult): string {
  return `${r.mode} rooms=${r.rooms} late=${(r.lateRatio * 100).toFixed(2)}% p99=${r.tickP99Ms.toFixed(2)}ms mean=${r.tickMeanMs.toFixed(2)}ms cpu/room-tick=${r.cpuPerRoomTickMs.toFixed(3)}ms`;
}

/**
 * CPU cost per room-tick of both mixers, measured in alternating pairs of 2-room trials; the minimum
 * of each is the least-disturbed sample on a shared host (contention only ever adds time).
 */
async function pairedCpu(silence: Loop, rounds: number) {
  const best = { shared: undefined as TrialResult | undefined, naive: undefined as TrialResult | undefined };
  for (let r = 0; r < rounds; r++) {
    for (const mode of ['shared', 'naive'] as const) {
      const t = await trial(mode, 2, silence, quick ? 1.2 : 3);
      console.log(`  cpu ${fmt(t)}`);
      const prev = best[mode];
      if (!prev || t.cpuPerRoomTickMs < prev.cpuPerRoomTickMs) best[mode] = t;
    }
  }
  return { shared: best.shared!, naive: best.naive! };
}

/** Largest room count with < 1 % late ticks: ramp from the CPU-time estimate, then bisect. */
async function capacity(mode: 'shared' | 'naive', silence: Loop, calib: TrialResult) {
  const perRoomMs = calib.cpuPerRoomTickMs;
  let good: TrialResult | undefined;
  let lo = 0;
  let hi = Infinity;
  let n = Math.max(1, Math.floor((0.6 * 20) / perRoomMs));
  const trials: TrialResult[] = [calib];
  for (let i = 0; i < maxTrials; i++) {
    const r = await trial(mode, n, silence);
    trials.push(r);
    console.log(`  ${fmt(r)}`);
    if (r.lateRatio < LATE_LIMIT) {
      lo = n;
      good = r;
    } else {
      hi = n;
    }
    const next = hi === Infinity ? Math.ceil(n * 1.3) : Math.floor((lo + hi) / 2);
    if (next <= lo || next >= hi || (hi !== Infinity && hi - lo <= Math.max(1, lo * 0.04))) break;
    n = next;
  }
  if (!good) {
    // Even the estimate was late: walk down until a count holds.
    let attempts = quick ? 1 : 4;
    for (let m = Math.floor(n / 2); m >= 1 && !good && attempts-- > 0; m = Math.floor(m / 2)) {
      const r = await trial(mode, m, silence);
      trials.push(r);
      console.log(`  ${fmt(r)}`);
      if (r.lateRatio < LATE_LIMIT) good = r;
    }
  }
  return { rooms: good?.rooms ?? 0, at: good ?? calib, perRoomMs, calib, trials };
}

const kernels: KernelResult = measureKernels(quick ? 20_000 : 100_000);
console.log('kernels (ns per 960-sample call):', JSON.stringify(kernels));

console.log('CPU per room-tick, both mixers alternating (silent participants without DTX):');
const cpu = await pairedCpu(silenceFull, quick ? 1 : 3);
console.log('RoomMixer (shared encodes), real-time capacity:');
const shared = await capacity('shared', silenceFull, cpu.shared);
console.log('Naive (one encode per participant), real-time capacity:');
const naive = await capacity('naive', silenceFull, cpu.naive);
console.log('CPU per room-tick when silent clients send no audio level (every packet decoded):');
const noLevel = await pairedCpu(silenceNoLevel, 1);

// End to end: mix rooms on the media server process with real werift clients over SRTP (e2e.ts).
console.log('End to end (server process, werift clients over SRTP on loopback):');
const e2eTrials: EndToEndTrial[] = [];
for (const rooms of quick ? [2] : [2, 4, 6]) {
  const t = await endToEndTrial(rooms, quick ? 2 : 3, quick ? 4 : 10);
  e2eTrials.push(t);
  console.log(
    `  e2e rooms=${t.rooms} server CPU ${t.serverCpuPct.toFixed(0)} % → ${t.roomsPerCore.toFixed(1)} rooms/core, ${t.cpuMsPerRoomTick.toFixed(2)} ms CPU per room-tick, ` +
      `late ${t.lateTickPct.toFixed(2)} %, tick rate ${t.tickRatePct.toFixed(1)} %, delivered ${t.deliveredPct.toFixed(1)} %, loss ${t.lossPct.toFixed(2)} %, ` +
      `connected ${t.clientsConnected}/${t.clients}, join ${t.joinS.toFixed(1)} s`,
  );
}
const realTimeE2e = (t: EndToEndTrial): boolean => t.lateTickPct < LATE_LIMIT * 100 && t.tickRatePct >= 98 && t.deliveredPct >= 99 && t.clientsConnected === t.clients;
const e2eHeld = e2eTrials.filter(realTimeE2e);
// The largest trial that kept real time; if none did (a contended host), the least-late one, flagged.
const e2eAt = e2eHeld.at(-1) ?? [...e2eTrials].sort((a, b) => a.lateTickPct - b.lateTickPct)[0]!;

// When the host is so contended that not even one room keeps < 1 % late ticks (the worker is not
// scheduled in time), fall back to CPU time: rooms that fit in 80 % of a 20 ms tick, for both.
const realTime = shared.rooms > 0 && naive.rooms > 0;
const cpuRooms = (perRoomMs: number) => Math.floor((0.8 * 20) / perRoomMs);
const sharedRooms = realTime ? shared.rooms : cpuRooms(shared.perRoomMs);
const naiveRooms = realTime ? naive.rooms : cpuRooms(naive.perRoomMs);
const result = {
  roomsPerCore: sharedRooms,
  participantsPerCore: sharedRooms * PARTICIPANTS,
  tickP99Ms: Math.round(shared.at.tickP99Ms * 100) / 100,
  naive: {
    roomsPerCore: naiveRooms,
    participantsPerCore: naiveRooms * PARTICIPANTS,
    tickP99Ms: Math.round(naive.at.tickP99Ms * 100) / 100,
  },
  vsNaive: naiveRooms > 0 ? Math.round((sharedRooms / naiveRooms) * 100) / 100 : null,
  method: realTime ? 'real-time (< 1 % late ticks)' : 'cpu-time (host too contended for the real-time search)',
  realTimeRooms: { shared: shared.rooms, naive: naive.rooms },
  cpuTimeVsNaive: Math.round((naive.perRoomMs / shared.perRoomMs) * 100) / 100,
  cpuPerRoomTickMs: {
    shared: round3(shared.perRoomMs),
    naive: round3(naive.perRoomMs),
    sharedWithoutLevels: round3(noLevel.shared.cpuPerRoomTickMs),
    naiveWithoutLevels: round3(noLevel.naive.cpuPerRoomTickMs),
  },
  // Per-phase CPU: each phase's share of the (wall-clock) tick times the measured CPU time, so host
  // preemption, which lands in whatever phase was running, does not inflate the numbers.
  split: { shared: cpuSplit(shared.calib), naive: cpuSplit(naive.calib) },
  encodesPerRoomTick: { shared: shared.at.encodesPerRoomTick, naive: naive.at.encodesPerRoomTick },
  /** Mix rooms end to end: network, SRTP, werift peers and the mixer, on the server process (bench/mixing/e2e.ts). */
  endToEnd: {
    roomsPerCore: Math.round(e2eAt.roomsPerCore * 10) / 10,
    cpuMsPerRoomTick: round3(e2eAt.cpuMsPerRoomTick),
    realTime: realTimeE2e(e2eAt),
    atRooms: e2eAt.rooms,
    janusAudioBridgeRoomsPerCore: 5,
    trials: e2eTrials.map((t) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round3(v)]))),
  },
  kernels,
  setup: {
    participantsPerRoom: PARTICIPANTS,
    speakersPerRoom: SPEAKERS,
    lateTickLimit: LATE_LIMIT,
    lateToleranceMs: 10,
    trialSeconds,
    quick,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
  },
};

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
function cpuSplit(t: TrialResult) {
  const s = t.perRoomTick;
  const total = s.decodeMs + s.mixMs + s.encodeMs || 1;
  const cpu = (x: number) => round3((x / total) * t.cpuPerRoomTickMs);
  return { decodeMs: cpu(s.decodeMs), mixMs: cpu(s.mixMs), encodeMs: cpu(s.encodeMs) };
}

mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'mixing.json'), JSON.stringify(result, null, 2) + '\n');

const rows = (label: string, r: Awaited<ReturnType<typeof capacity>>) =>
  r.trials.map((t) => `| ${label} | ${t.rooms} | ${(t.lateRatio * 100).toFixed(2)} % | ${t.tickP50Ms.toFixed(2)} | ${t.tickP99Ms.toFixed(2)} |`).join('\n');
const md = `# Mixing benchmark

${quick ? '**Quick run** (short trials; numbers are rougher).' : ''}
Rooms of ${PARTICIPANTS} participants, ${SPEAKERS} speaking (speech-like signal, Opus 32 kbps VOIP + FEC as a
browser sends it, with RFC 6464 audio levels), the other ${PARTICIPANTS - SPEAKERS} sending silence (no DTX; their
level says silence, so neither mixer decodes them). All rooms of a trial run in ONE
\`node:worker_threads\` worker on one drift-free 20 ms clock. Capacity = most rooms with < 1 % late ticks
(a tick starting > 10 ms after its slot). Host: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version},
shared with other jobs, so absolute numbers are noisy; the ratio is measured in the same run.

| | RoomMixer (shared encodes) | naive (encode per participant) |
| --- | --- | --- |
| rooms per core | **${sharedRooms}** | ${naiveRooms} |
| participants per core | **${sharedRooms * PARTICIPANTS}** | ${naiveRooms * PARTICIPANTS} |
| rooms with < 1 % late ticks in real time | ${shared.rooms} | ${naive.rooms} |
| tick p99 at that load (ms, wall clock, all rooms of the trial) | ${result.tickP99Ms} | ${result.naive.tickP99Ms} |
| encodes per room-tick | ${shared.at.encodesPerRoomTick.toFixed(2)} | ${naive.at.encodesPerRoomTick.toFixed(2)} |
| CPU per room-tick (ms, process CPU time) | ${round3(shared.perRoomMs)} | ${round3(naive.perRoomMs)} |
| decode / mix / encode per room-tick (ms CPU) | ${fmtSplit(result.split.shared)} | ${fmtSplit(result.split.naive)} |
| CPU per room-tick when silent clients send no audio level (ms) | ${result.cpuPerRoomTickMs.sharedWithoutLevels} | ${result.cpuPerRoomTickMs.naiveWithoutLevels} |

**vsNaive = ${result.vsNaive}** (participants per core, RoomMixer ÷ naive; method: ${result.method}).
CPU time per room-tick, naive ÷ RoomMixer: ${result.cpuTimeVsNaive}.

## End to end: mix rooms with real clients over SRTP

Each trial: N \`mix\` rooms of ${PARTICIPANTS} (${SPEAKERS} speakers publishing speech-like Opus 32 kbps) on the
bench's media server process (the real MediaRoom: werift ICE/DTLS, SRTP in and out, jitter buffers,
decode, mix, shared encodes, packetisation, UDP), werift clients (NodeMediaClient) in the bench
process on loopback. Rooms per core = N ÷ the server process's CPU share over the window; a trial
counts as real time with < 1 % late mix ticks, ≥ 98 % of the 50 ticks/s per room run and ≥ 99 % of the
sent mix packets arriving.

| rooms | server CPU | rooms per core | ms CPU per room-tick | late ticks | tick rate | delivered | loss | clients connected |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${e2eTrials.map((t) => `| ${t.rooms} | ${t.serverCpuPct.toFixed(0)} % | ${t.roomsPerCore.toFixed(1)} | ${t.cpuMsPerRoomTick.toFixed(2)} | ${t.lateTickPct.toFixed(2)} % | ${t.tickRatePct.toFixed(1)} % | ${t.deliveredPct.toFixed(1)} % | ${t.lossPct.toFixed(2)} % | ${t.clientsConnected}/${t.clients} |`).join('\n')}

**End to end: ${result.endToEnd.roomsPerCore} rooms of 10 per core** (${result.endToEnd.cpuMsPerRoomTick} ms server CPU per
20 ms room-tick, at ${e2eAt.rooms} rooms${result.endToEnd.realTime ? ', in real time' : '; NOT in real time on this run: the host was too contended, see the table'}).
Janus's AudioBridge, measured on this host the same way (its process CPU with real clients), held
about 5 rooms of 10 per core (3.7–4.1 ms CPU per 20 ms cycle per room).

## Mix kernels (one 960-sample frame)

| kernel | TypeScript loop (\`tsMixKernels\`) | wasm SIMD incl. copies in/out (\`WasmMixKernels\`, used) | raw \`vx_mix_*\` call, data already in wasm memory |
| --- | --- | --- | --- |
| add | ${kernels.tsAddNs} ns | ${kernels.wasmAddNs} ns | ${kernels.wasmRawAddNs} ns |
| sub | ${kernels.tsSubNs} ns | ${kernels.wasmSubNs} ns | ${kernels.wasmRawSubNs} ns |

Faster in this run: **${kernels.chosen}**.

## Trials

| mixer | rooms | late ticks | tick p50 (ms) | tick p99 (ms) |
| --- | --- | --- | --- | --- |
${rows('RoomMixer', shared)}
${rows('naive', naive)}

Run: \`npm run bench -- mixing\` (\`--quick\` for a < 60 s run). Took ${((performance.now() - started) / 1000).toFixed(0)} s.
`;
function fmtSplit(s: { decodeMs: number; mixMs: number; encodeMs: number }): string {
  return `${s.decodeMs.toFixed(3)} / ${s.mixMs.toFixed(3)} / ${s.encodeMs.toFixed(3)}`;
}
writeFileSync(join(resultsDir, 'mixing.md'), md);
console.log(JSON.stringify(result, null, 2));
