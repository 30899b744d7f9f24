/**
 * One bench worker thread: N rooms of `participants` each (the first `speakers` talking) mixed on
 * ONE drift-free 20 ms MixClock, with either the RoomMixer (shared encodes) or the NaiveMixer.
 * Every tick pushes each participant's next packet into its room, then ticks the room. Reports late
 * ticks, the time per clock tick (all rooms) and the decode/mix/encode split.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { warmUpOpus } from '../../src/codec/opus.ts';
import { RoomMixer } from '../../src/media/mix.ts';
import { MixClock } from '../../src/media/mix-clock.ts';
import { createMixCodecs } from '../../src/media/mix-codecs.ts';
import { NaiveMixer } from './naive.ts';

export interface TrialInput {
  mode: 'shared' | 'naive';
  rooms: number;
  participants: number;
  speakers: number;
  seconds: number;
  warmupSeconds: number;
  /** Speech packet loops, one per speaker slot, and their RFC 6464 levels. */
  speech: Uint8Array[][];
  speechLevels: number[][];
  /** Silence packets as a non-speaker sends them; `null` = not sent (DTX). */
  silence: (Uint8Array | null)[];
  silenceLevels: number[];
}

export interface TrialResult {
  mode: 'shared' | 'naive';
  rooms: number;
  ticks: number;
  lateTicks: number;
  lateRatio: number;
  tickP50Ms: number;
  tickP99Ms: number;
  tickMeanMs: number;
  perRoomTick: { decodeMs: number; mixMs: number; encodeMs: number };
  encodesPerRoomTick: number;
  /**
   * Process CPU time per room-tick (process.cpuUsage; the main thread idles while a trial runs, so
   * this is the worker's): unlike wall-clock tick times it excludes time the host gave to others.
   */
  cpuPerRoomTickMs: number;
}

const input = workerData as TrialInput;
warmUpOpus();

const codecs = createMixCodecs();
interface Sender {
  id: string;
  loop: (Uint8Array | null)[];
  levels: number[];
  offset: number;
  seq: number;
  ts: number;
}
const rooms: { mixer: RoomMixer | NaiveMixer; senders: Sender[] }[] = [];
for (let r = 0; r < input.rooms; r++) {
  const mixer = input.mode === 'shared' ? new RoomMixer({ codecs }) : new NaiveMixer({ codecs });
  const senders: Sender[] = [];
  for (let p = 0; p < input.participants; p++) {
    const id = `r${r}p${p}`;
    mixer.addInput(id);
    const speaker = p < input.speakers;
    const loop = speaker ? input.speech[p % input.speech.length]! : input.silence;
    const levels = speaker ? input.speechLevels[p % input.speech.length]! : input.silenceLevels;
    senders.push({ id, loop, levels, offset: (r * 7 + p * 13) % loop.length, seq: (r * 1000 + p) & 0xffff, ts: r * 100_000 });
  }
  rooms.push({ mixer, senders });
}

const warmupTicks = Math.round(input.warmupSeconds * 50);
const totalTicks = warmupTicks + Math.round(input.seconds * 50);
const durations: number[] = [];
let late = 0;
let counted = 0;
const splitStart = { decodeMs: 0, mixMs: 0, encodeMs: 0, encodes: 0 };
let cpuStart = process.cpuUsage();
let measuring = false;
let skippedStart = 0;

function split(): { decodeMs: number; mixMs: number; encodeMs: number; encodes: number } {
  const s = { decodeMs: 0, mixMs: 0, encodeMs: 0, encodes: 0 };
  for (const room of rooms) {
    const j = room.mixer.toJSON();
    s.decodeMs += j.decodeMs;
    s.mixMs += j.mixMs;
    s.encodeMs += j.encodeMs;
    s.encodes += j.encodes;
  }
  return s;
}

const clock = new MixClock(
  (n, latenessMs) => {
    // `>=` and a flag, not `===`: a starved clock may skip over the warm-up boundary.
    if (n >= warmupTicks && !measuring) {
      measuring = true;
      Object.assign(splitStart, split());
      cpuStart = process.cpuUsage();
      skippedStart = clock.toJSON().skippedTicks;
    }
    const t0 = performance.now();
    for (const room of rooms) {
      for (const s of room.senders) {
        const index = (n + s.offset) % s.loop.length;
        const payload = s.loop[index];
        if (payload) {
          room.mixer.push(s.id, payload, s.seq, s.ts, t0, s.levels[index]);
          s.seq = (s.seq + 1) & 0xffff;
        }
        s.ts = (s.ts + 960) >>> 0;
      }
      room.mixer.tick();
    }
    if (measuring) {
      durations.push(performance.now() - t0);
      counted++;
      if (latenessMs > 10) late++;
    }
    if (n + 1 >= totalTicks) finish();
  },
  { lateToleranceMs: 10 },
);

function finish(): void {
  clock.stop();
  const cpu = process.cpuUsage(cpuStart);
  const end = split();
  const sorted = [...durations].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  const roomTicks = Math.max(1, counted * input.rooms);
  const skipped = clock.toJSON().skippedTicks - skippedStart;
  const result: TrialResult = {
    mode: input.mode,
    rooms: input.rooms,
    ticks: counted + skipped,
    lateTicks: late + skipped,
    lateRatio: (late + skipped) / Math.max(1, counted + skipped),
    tickP50Ms: q(0.5),
    tickP99Ms: q(0.99),
    tickMeanMs: durations.reduce((a, b) => a + b, 0) / Math.max(1, durations.length),
    perRoomTick: {
      decodeMs: (end.decodeMs - splitStart.decodeMs) / roomTicks,
      mixMs: (end.mixMs - splitStart.mixMs) / roomTicks,
      encodeMs: (end.encodeMs - splitStart.encodeMs) / roomTicks,
    },
    encodesPerRoomTick: (end.encodes - splitStart.encodes) / roomTicks,
    cpuPerRoomTickMs: (cpu.user + cpu.system) / 1000 / roomTicks,
  };
  for (const room of rooms) room.mixer.close();
  parentPort!.postMessage(result);
}

clock.start();
