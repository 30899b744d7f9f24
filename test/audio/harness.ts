/**
 * Drives RoomMixer and friends the way a room does, without sockets: senders encode real audio with
 * our Opus wasm, a simulated network delays/reorders/drops their packets (seeded), the mixer ticks
 * every 20 ms of simulated time, and each listener's packets are decoded like a client would.
 */
import { OpusDecoder, OpusEncoder } from '../../src/codec/opus.ts';
import { OpusApplication } from '../../src/codec/opus-ctl.ts';
import type { MixPacket, RoomMixer } from '../../src/media/mix.ts';

/** mulberry32: small seeded PRNG so loss/jitter patterns are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SentPacket {
  payload: Uint8Array;
  seq: number;
  ts: number;
  sendMs: number;
  /** RFC 6464 audio level the sender puts in the header extension (0–127 −dBov), if any. */
  level?: number;
}

/** Encodes `pcm` (48 kHz mono) as one RTP stream of 20 ms Opus packets. */
export function opusStream(
  pcm: Float32Array,
  options: { bitrate?: number; fec?: boolean; lossPerc?: number; dtx?: boolean; seq0?: number; ts0?: number } = {},
): SentPacket[] {
  const enc = new OpusEncoder({
    sampleRate: 48_000,
    channels: 1,
    application: OpusApplication.VOIP,
    bitrate: options.bitrate ?? 32_000,
    inbandFec: options.fec ?? false,
    packetLossPercent: options.lossPerc ?? 0,
    dtx: options.dtx ?? false,
  });
  const out: SentPacket[] = [];
  const seq0 = options.seq0 ?? 65_500; // wraps within the test
  const ts0 = options.ts0 ?? 0xffff_0000;
  for (let f = 0; (f + 1) * 960 <= pcm.length; f++) {
    enc.pcmIn.set(pcm.subarray(f * 960, (f + 1) * 960));
    out.push({ payload: enc.encodeFrame().slice(), seq: (seq0 + f) & 0xffff, ts: (ts0 + f * 960) >>> 0, sendMs: f * 20 });
  }
  enc.close();
  return out;
}

export interface NetworkModel {
  lossRate?: number;
  /** Uniform extra delay 0..jitterMs per packet (reorders when > 20 ms). */
  jitterMs?: number;
  seed?: number;
}

interface Arrival extends SentPacket {
  id: string;
  arrivalMs: number;
}

/** Applies loss and jitter; returns the arrivals sorted by arrival time. */
export function network(id: string, packets: SentPacket[], model: NetworkModel = {}): Arrival[] {
  const rand = prng(model.seed ?? 1);
  const out: Arrival[] = [];
  for (const p of packets) {
    const lost = rand() < (model.lossRate ?? 0);
    const delay = 5 + rand() * (model.jitterMs ?? 0);
    if (!lost) out.push({ ...p, id, arrivalMs: p.sendMs + delay });
  }
  return out.sort((a, b) => a.arrivalMs - b.arrivalMs);
}

export interface ListenerCapture {
  packets: { seq: number; ts: number; payload: Uint8Array; source: string | null }[];
}

/**
 * Runs `ticks` mixer ticks at 20 ms of simulated time each, delivering arrivals as they become
 * due, and records every packet each listener gets (payload copied: views live one tick).
 */
export function runRoom(
  mixer: RoomMixer,
  arrivals: Arrival[],
  ticks: number,
  excluded?: (tick: number) => ReadonlySet<string> | undefined,
): { captures: Map<string, ListenerCapture>; perTick: (readonly MixPacket[])[]; encodesPerTick: number[] } {
  const captures = new Map<string, ListenerCapture>();
  const encodesPerTick: number[] = [];
  let next = 0;
  for (let t = 0; t < ticks; t++) {
    const now = t * 20;
    while (next < arrivals.length && arrivals[next]!.arrivalMs <= now) {
      const a = arrivals[next++]!;
      mixer.push(a.id, a.payload, a.seq, a.ts, a.arrivalMs, a.level);
    }
    const out = mixer.tick(excluded?.(t));
    encodesPerTick.push(mixer.toJSON().encodesLastTick);
    for (const p of out) {
      let c = captures.get(p.listenerId);
      if (!c) captures.set(p.listenerId, (c = { packets: [] }));
      c.packets.push({ seq: p.sequenceNumber, ts: p.timestamp, payload: p.payload.slice(), source: p.source });
    }
  }
  return { captures, perTick: [], encodesPerTick };
}

/** Decodes a listener's Opus packets (in order, as a client with no loss would). */
export function decodeCapture(capture: ListenerCapture, sampleRate: 48000 | 8000 = 48_000): Float32Array {
  const dec = new OpusDecoder({ sampleRate, channels: 1 });
  const frame = sampleRate / 50;
  const out = new Float32Array(capture.packets.length * frame);
  capture.packets.forEach((p, i) => out.set(dec.decode(p.payload).subarray(0, frame), i * frame));
  dec.close();
  return out;
}

/** Power at `freq` over the tail of `pcm` (skipping start-up), via Goertzel on whole periods. */
export function tailPower(pcm: Float32Array, sampleRate: number, freq: number, skipSeconds = 0.3): number {
  return goertzel(pcm.subarray(Math.round(skipSeconds * sampleRate)), sampleRate, freq);
}

export function goertzel(pcm: Float32Array, sampleRate: number, freq: number): number {
  const n = pcm.length;
  const w = (2 * Math.PI * freq) / sampleRate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = pcm[i]! + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)) / (n * n);
}

export function peak(pcm: Float32Array): number {
  let p = 0;
  for (const x of pcm) p = Math.max(p, Math.abs(x));
  return p;
}

export function meanSquare(pcm: Float32Array): number {
  let s = 0;
  for (const x of pcm) s += x * x;
  return pcm.length ? s / pcm.length : 0;
}
