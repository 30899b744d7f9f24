import { JitterBuffer, type JitterBufferStats, type PlayoutKind } from '../../src/codec/jitter-buffer.ts';
import { OpusFrameDecoder } from '../../src/codec/frame-codecs.ts';

/** One received Opus packet (RED already split into its blocks), in arrival order. */
export interface ArrivedPacket {
  seq: number;
  ts: number;
  /** Any monotonic ms clock. */
  arrivalMs: number;
  payload: Uint8Array;
}

export interface PlayoutResult {
  /** 48 kHz mono, one 960-sample frame per 20 ms tick, from the first played frame on. */
  pcm: Float32Array;
  kinds: Record<PlayoutKind, number>;
  stats: JitterBufferStats;
}

const FRAME = 960;
const FRAME_MS = 20;

/**
 * Plays received packets the way the server's mixer (and a receiver's jitter buffer) would: the
 * project's JitterBuffer with its Opus FEC → DRED → PLC recovery, pulled every 20 ms of the
 * packets' own arrival clock. Deterministic for the same packets.
 */
export function playout(packets: readonly ArrivedPacket[], options: { fec?: boolean; dred?: boolean } = {}): PlayoutResult {
  const decoder = new OpusFrameDecoder(48_000);
  const jb = new JitterBuffer(decoder, { fec: options.fec ?? true, dred: options.dred ?? true, skipDecodeLevel: 128, minDelayMs: 60, initialDelayMs: 60 });
  const kinds: Record<PlayoutKind, number> = { packet: 0, quiet: 0, fec: 0, dred: 0, plc: 0, dtx: 0, silence: 0 };
  const frames: Float32Array[] = [];
  const played: PlayoutKind[] = [];
  const frame = new Float32Array(FRAME);
  if (packets.length === 0) return { pcm: new Float32Array(0), kinds, stats: jb.toJSON() };
  const t0 = packets[0]!.arrivalMs;
  const end = packets[packets.length - 1]!.arrivalMs + 200;
  let next = 0;
  let started = false;
  for (let t = t0; t <= end; t += FRAME_MS) {
    while (next < packets.length && packets[next]!.arrivalMs <= t) {
      const p = packets[next++]!;
      jb.push(p.payload, p.seq, p.ts, p.arrivalMs);
    }
    const kind = jb.pull(frame);
    if (!started && kind === 'silence') continue;
    started = true;
    played.push(kind);
    frames.push(Float32Array.from(frame));
  }
  decoder.close();
  // The pulls after the last packet are the end of the stream, not loss.
  while (played.length > 0 && played[played.length - 1] !== 'packet') {
    played.pop();
    frames.pop();
  }
  for (const kind of played) kinds[kind]++;
  const pcm = new Float32Array(frames.length * FRAME);
  frames.forEach((f, i) => pcm.set(f, i * FRAME));
  return { pcm, kinds, stats: jb.toJSON() };
}

/**
 * A tone under a slow amplitude envelope, `amplitude`·(0.5 + 0.5·sin 2π·envHz·t)·sin 2π·freq·t: the
 * envelope is what packet-loss concealment cannot guess (it extends the last frame and fades) and
 * what keeps Opus's voice activity detector (and so its in-band FEC) on, where a steady tone would
 * be classified as not-speech after a while (test/audio/jitter.test.ts uses the same signal).
 */
export class EnvelopedTone {
  readonly freq: number;
  readonly envHz: number;
  readonly amplitude: number;
  #n = 0;

  constructor(freq: number, options: { envHz?: number; amplitude?: number } = {}) {
    this.freq = freq;
    this.envHz = options.envHz ?? 4;
    this.amplitude = options.amplitude ?? 0.3;
  }

  read(out: Float32Array): void {
    for (let i = 0; i < out.length; i++, this.#n++) {
      const t = this.#n / 48_000;
      out[i] = this.amplitude * (0.5 + 0.5 * Math.sin(2 * Math.PI * this.envHz * t)) * Math.sin(2 * Math.PI * this.freq * t);
    }
  }
}

/**
 * Tone SNR of a decoded EnvelopedTone, dB. Per one-second segment the envelope's phase (10 ms grid)
 * and the level are fitted once, the carrier's phase per 20 ms frame; signal = that model, noise =
 * everything else (a concealed frame with the wrong envelope, a faded or silent one, a phase jump,
 * codec noise). Segments absorb a jitter buffer's inserted or dropped frames. `skipFrames` leaves out
 * the decoder's start.
 */
export function toneSnrDb(pcm: Float32Array, freq: number, envHz = 4, skipFrames = 10): number {
  const w = (2 * Math.PI * freq) / 48_000;
  const period = Math.round(48_000 / envHz);
  const segmentFrames = 50;
  let signal = 0;
  let noise = 0;
  const frames = Math.floor(pcm.length / FRAME);
  const env = new Float32Array(FRAME);
  for (let s0 = skipFrames; s0 < frames; s0 += segmentFrames) {
    const s1 = Math.min(frames, s0 + segmentFrames);
    let best = { noise: Infinity, signal: 0 };
    for (let n0 = 0; n0 < period; n0 += 480) {
      // Per frame: the best carrier phase under this envelope, and its projection for the level fit.
      let num = 0;
      let den = 0;
      const phases: number[] = [];
      for (let f = s0; f < s1; f++) {
        let a = 0;
        let b = 0;
        for (let i = 0; i < FRAME; i++) {
          const e = 0.5 + 0.5 * Math.sin((2 * Math.PI * envHz * (f * FRAME + i + n0)) / 48_000);
          env[i] = e;
          const x = pcm[f * FRAME + i]!;
          a += x * e * Math.sin(w * i);
          b += x * e * Math.cos(w * i);
        }
        const phase = Math.atan2(b, a);
        phases.push(phase);
        for (let i = 0; i < FRAME; i++) {
          const m = env[i]! * Math.sin(w * i + phase);
          num += pcm[f * FRAME + i]! * m;
          den += m * m;
        }
      }
      const level = den > 0 ? num / den : 0;
      let sig = 0;
      let err = 0;
      for (let f = s0; f < s1; f++) {
        const phase = phases[f - s0]!;
        for (let i = 0; i < FRAME; i++) {
          const e = 0.5 + 0.5 * Math.sin((2 * Math.PI * envHz * (f * FRAME + i + n0)) / 48_000);
          const m = level * e * Math.sin(w * i + phase);
          const d = pcm[f * FRAME + i]! - m;
          sig += m * m;
          err += d * d;
        }
      }
      if (err < best.noise) best = { noise: err, signal: sig };
    }
    signal += best.signal;
    noise += best.noise;
  }
  return noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
}

export interface Recovery {
  /** Packets lost on the wire inside the received span. */
  wireLost: number;
  /** Of those: arrived anyway inside a later RED packet, rebuilt from in-band FEC, from DRED. */
  red: number;
  fec: number;
  dred: number;
  /** (red + fec + dred) / wireLost, percent (100 with no loss). */
  recoveredPct: number;
}

/**
 * How much of the wire loss was recovered. `dropped`: the sequence numbers the lossy path took out;
 * `packets`: what the receiver ended up with (RED blocks included); `stats`: its jitter buffer.
 */
export function recovery(dropped: ReadonlySet<number>, packets: readonly ArrivedPacket[], stats: JitterBufferStats): Recovery {
  if (packets.length === 0) return { wireLost: 0, red: 0, fec: 0, dred: 0, recoveredPct: 0 };
  const seen = new Set(packets.map((p) => p.seq));
  // The span from the first to the last sequence number received, unwrapped from the first.
  const first = packets[0]!.seq;
  let span = 0;
  for (const p of packets) span = Math.max(span, (p.seq - first) & 0xffff);
  let wireLost = 0;
  let red = 0;
  for (let k = 0; k <= span; k++) {
    const seq = (first + k) & 0xffff;
    if (!dropped.has(seq)) continue;
    wireLost++;
    if (seen.has(seq)) red++;
  }
  const fec = stats.fecRecovered;
  const dred = stats.dredRecovered;
  return { wireLost, red, fec, dred, recoveredPct: wireLost === 0 ? 100 : (100 * (red + fec + dred)) / wireLost };
}
