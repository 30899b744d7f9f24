/**
 * `npm run bench -- resilience [--quick]`: how much of a bursty loss each mechanism recovers, what it
 * sounds like, and what it costs in bandwidth. Writes bench/results[/quick]/resilience.json, .md and
 * .svg (docs/audio.md "Resilience").
 *
 * One sender, one lossy path, one receiver, per mechanism, all in this process and on a simulated
 * 20 ms clock (so the run is deterministic and the mechanisms see the very same loss pattern):
 * - the sender encodes with VoxLink's Opus (wasm) at 24 kb/s VOIP, in-band FEC and DRED as each
 *   mechanism needs (`packetLossPercent` = the path's loss, as a browser sets it from its RRs);
 *   RED is built by the server's own RedPacketizer at the distance its RedPolicy picks for the loss;
 * - the path is a seeded Gilbert–Elliott model (test/resilience/lossy-relay.ts), mean burst 2.5;
 * - the receiver splits RED with RedReader and plays through the project's JitterBuffer
 *   (FEC → DRED → PLC), as the server's mixer and test/resilience do.
 * Baseline in the same run: `none` (plain Opus, nothing to recover from). The end-to-end version of
 * this, through a real media room and a UDP relay, is test/resilience/red-loss.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpusEncoder } from '../../src/codec/opus.ts';
import { RedPacketizer, RedReader } from '../../src/media/red.ts';
import { RedPolicy } from '../../src/media/red-policy.ts';
import { snrDb, speechLikeFloat32 } from '../../test/codec/signal.ts';
import { GilbertElliott } from '../../test/resilience/lossy-relay.ts';
import { EnvelopedTone, playout, recovery, toneSnrDb, type ArrivedPacket } from '../../test/resilience/measure.ts';
import { barChartSvg } from './chart.ts';
import { createMixCodecs } from '../../src/media/mix-codecs.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const resultsDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));
const seconds = quick ? 12 : 60;
const frames = seconds * 50;
const LOSSES = [10, 20] as const;
const BURST = 2.5;
const BITRATE = 24_000;
/** RTP 12 + SRTP tag 10 + UDP 8 + IPv4 20 bytes per packet on the wire. */
const PACKET_OVERHEAD = 50;
const OPUS_PT = 111;
const MECHANISMS = ['none', 'fec', 'red', 'redFec', 'dred'] as const;
type Mechanism = (typeof MECHANISMS)[number];

interface SentPacket {
  seq: number;
  ts: number;
  /** What goes on the wire (RED or plain Opus). */
  wire: Uint8Array;
}

function encode(signal: Float32Array, mechanism: Mechanism, lossPct: number): { packets: SentPacket[]; encodeMs: number } {
  const fec = mechanism === 'fec' || mechanism === 'redFec';
  const red = mechanism === 'red' || mechanism === 'redFec';
  const encoder = new OpusEncoder({
    sampleRate: 48_000,
    channels: 1,
    bitrate: BITRATE,
    inbandFec: fec,
    packetLossPercent: mechanism === 'none' ? 0 : lossPct,
    dredDuration: mechanism === 'dred' ? 20 : 0,
  });
  // The distance the server's policy picks for a subscriber reporting this loss.
  const policy = new RedPolicy();
  for (let i = 0; i < 3; i++) policy.report(Math.round((lossPct / 100) * 256), 100, i * 1000);
  const packetizer = new RedPacketizer();
  const packets: SentPacket[] = [];
  const start = performance.now();
  for (let i = 0; i < frames; i++) {
    const opus = encoder.encode(signal.subarray(i * 960, (i + 1) * 960));
    const seq = i & 0xffff;
    const ts = (i * 960) >>> 0;
    const wire = red ? packetizer.build(opus, seq, ts, OPUS_PT, policy.distance) : null;
    packets.push({ seq, ts, wire: Uint8Array.from(wire ?? opus) });
  }
  const encodeMs = performance.now() - start;
  encoder.close();
  return { packets, encodeMs };
}

/** The path and the receiver: drops, RED splitting (a block fills a gap only if its frame is missing), arrival at 20 ms per packet. */
function receive(sent: readonly SentPacket[], red: boolean, lossPct: number, seed: number): { arrived: ArrivedPacket[]; dropped: Set<number> } {
  const loss = new GilbertElliott({ lossPct, burstLength: BURST, seed });
  const reader = new RedReader();
  const arrived: ArrivedPacket[] = [];
  const have = new Set<number>();
  const dropped = new Set<number>();
  for (const p of sent) {
    if (loss.drop()) {
      dropped.add(p.seq);
      continue;
    }
    const arrivalMs = (p.ts / 48_000) * 1000;
    if (red) {
      if (!reader.parse(p.wire)) throw new Error('RED payload did not parse');
      for (let b = 0; b < reader.count; b++) {
        const seq = (p.seq - (reader.count - 1 - b)) & 0xffff;
        if (have.has(seq)) continue;
        have.add(seq);
        const start = reader.start[b]!;
        arrived.push({ seq, ts: (p.ts - reader.tsOffset[b]!) >>> 0, arrivalMs, payload: p.wire.subarray(start, start + reader.length[b]!) });
      }
    } else {
      have.add(p.seq);
      arrived.push({ seq: p.seq, ts: p.ts, arrivalMs, payload: p.wire });
    }
  }
  return { arrived, dropped };
}

interface Row {
  recoveredPct: number;
  wireLost: number;
  recovered: { red: number; fec: number; dred: number };
  /** Speech-like signal: segmental SNR of the lossy playout against the same packets played without loss. */
  snrDb: number;
  /** 4 Hz-enveloped 600 Hz tone (measure.ts toneSnrDb). */
  toneSnrDb: number;
  /** Sender bitrate, payload only and on the wire (RTP/SRTP/UDP/IPv4). */
  payloadKbps: number;
  wireKbps: number;
  /** Wire bitrate relative to `none`. */
  bandwidthVsNone: number;
  encodeMsPerFrame: number;
}

const speech = speechLikeFloat32(48_000, seconds + 1);
const tone = new Float32Array((seconds + 1) * 48_000);
new EnvelopedTone(600).read(tone);

const results: Record<number, Record<Mechanism, Row>> = {};
for (const lossPct of LOSSES) {
  const rows = {} as Record<Mechanism, Row>;
  for (const mechanism of MECHANISMS) {
    const red = mechanism === 'red' || mechanism === 'redFec';
    const seed = 1000 + lossPct;
    const s = encode(speech, mechanism, lossPct);
    const clean = playout(s.packets.map((p) => ({ seq: p.seq, ts: p.ts, arrivalMs: (p.ts / 48_000) * 1000, payload: red ? primary(p.wire) : p.wire })));
    const path = receive(s.packets, red, lossPct, seed);
    const lossy = playout(path.arrived);
    const rec = recovery(path.dropped, path.arrived, lossy.stats);
    const n = Math.min(clean.pcm.length, lossy.pcm.length);
    const t = encode(tone, mechanism, lossPct);
    const tonePlayed = playout(receive(t.packets, red, lossPct, seed).arrived);
    const bytes = s.packets.reduce((sum, p) => sum + p.wire.length, 0);
    rows[mechanism] = {
      recoveredPct: round(rec.recoveredPct),
      wireLost: rec.wireLost,
      recovered: { red: rec.red, fec: rec.fec, dred: rec.dred },
      snrDb: round(alignedSnrDb(clean.pcm, lossy.pcm, n)),
      toneSnrDb: round(toneSnrDb(tonePlayed.pcm, 600)),
      payloadKbps: round((bytes * 8) / seconds / 1000),
      wireKbps: round(((bytes + PACKET_OVERHEAD * frames) * 8) / seconds / 1000),
      bandwidthVsNone: 0,
      encodeMsPerFrame: round(s.encodeMs / frames, 3),
    };
  }
  for (const m of MECHANISMS) {
    rows[m].bandwidthVsNone = round(rows[m].wireKbps / rows.none.wireKbps, 2);
    console.log(`${lossPct} % ${m.padEnd(6)} ${JSON.stringify(rows[m])}`);
  }
  results[lossPct] = rows;
}

/**
 * Segmental SNR (mean over voiced 20 ms frames of the per-frame SNR, each clamped to −10…35 dB, the
 * usual speech-coding measure) of `out` against `ref`, at the whole-frame offset (±3 frames) where
 * the plain SNR is best: the two playouts may start a frame apart.
 */
function alignedSnrDb(ref: Float32Array, out: Float32Array, n: number): number {
  let bestD = 0;
  let best = -Infinity;
  for (let d = -3; d <= 3; d++) {
    const v = snrDb(ref, out, d * 960, 960 * 10, n - 960 * 4);
    if (v > best) [best, bestD] = [v, d * 960];
  }
  let sum = 0;
  let count = 0;
  for (let f = 10; (f + 1) * 960 + Math.max(0, bestD) <= n && (f + 1) * 960 <= n; f++) {
    let sig = 0;
    let err = 0;
    for (let i = f * 960; i < (f + 1) * 960; i++) {
      const r = ref[i]!;
      const e = (out[i + bestD] ?? 0) - r;
      sig += r * r;
      err += e * e;
    }
    if (sig / 960 < 1e-5) continue; // a pause in the speech-like signal (below −50 dBFS)
    sum += Math.min(35, Math.max(-10, 10 * Math.log10(sig / Math.max(err, 1e-12))));
    count++;
  }
  return count === 0 ? 0 : sum / count;
}

function primary(wire: Uint8Array): Uint8Array {
  const reader = new RedReader();
  reader.parse(wire);
  return wire.subarray(reader.primaryStart, reader.primaryStart + reader.primaryLength);
}

function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * The server side of DRED (docs/audio.md "DRED"): the mixer's encode of one stream for `normal`
 * listeners, plain vs its DRED variant (the encoders `createMixCodecs()` gives the RoomMixer), on the
 * same tone, then each through the 10 % loss pattern and the JitterBuffer. ms/frame is the cost the
 * room pays once per stream per tick.
 */
function mixDredCost(): Record<'plain' | 'dred', { encodeMsPerFrame: number; bytesPerPacket: number; recoveredPct: number }> {
  const codecs = createMixCodecs();
  const out = {} as Record<'plain' | 'dred', { encodeMsPerFrame: number; bytesPerPacket: number; recoveredPct: number }>;
  for (const variant of ['plain', 'dred'] as const) {
    const enc = codecs.createEncoder('normal', variant === 'dred');
    const tone = new EnvelopedTone(600);
    const frame = new Float32Array(960);
    const loss = new GilbertElliott({ lossPct: 10, burstLength: BURST, seed: 1010 });
    const packets: ArrivedPacket[] = [];
    const dropped = new Set<number>();
    let ms = 0;
    let bytes = 0;
    for (let i = 0; i < frames; i++) {
      tone.read(frame);
      const t0 = performance.now();
      const p = enc.encode(frame);
      ms += performance.now() - t0;
      bytes += p.length;
      const seq = i & 0xffff;
      if (loss.drop()) dropped.add(seq);
      else packets.push({ seq, ts: (i * 960) >>> 0, arrivalMs: i * 20, payload: Uint8Array.from(p) });
    }
    codecs.release?.(enc);
    const played = playout(packets);
    out[variant] = {
      encodeMsPerFrame: round(ms / frames, 3),
      bytesPerPacket: round(bytes / frames, 1),
      recoveredPct: round(recovery(dropped, packets, played.stats).recoveredPct),
    };
  }
  return out;
}
const mixDred = mixDredCost();
console.log('mix DRED variant vs plain:', JSON.stringify(mixDred));

const pick = <K extends keyof Row>(lossPct: number, key: K): Record<Mechanism, Row[K]> =>
  Object.fromEntries(MECHANISMS.map((m) => [m, results[lossPct]![m][key]])) as Record<Mechanism, Row[K]>;

const json = {
  bench: 'resilience',
  quick,
  seconds,
  bitrate: BITRATE,
  loss: { model: 'Gilbert-Elliott', burstLength: BURST },
  /** At 10 % bursty loss, keyed none, fec, red, redFec, dred. */
  recoveredPct: pick(10, 'recoveredPct'),
  snrDb: pick(10, 'snrDb'),
  toneSnrDb: pick(10, 'toneSnrDb'),
  wireKbps: pick(10, 'wireKbps'),
  bandwidthVsNone: pick(10, 'bandwidthVsNone'),
  byLoss: results,
  /** The server's mix encode for `normal` listeners, plain vs its DRED variant, at 10 % bursty loss. */
  mixDred: { ...mixDred, costVsPlain: round(mixDred.dred.encodeMsPerFrame / mixDred.plain.encodeMsPerFrame, 2), bandwidthVsPlain: round(mixDred.dred.bytesPerPacket / mixDred.plain.bytesPerPacket, 2) },
  node: process.version,
  date: new Date().toISOString(),
};
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'resilience.json'), JSON.stringify(json, null, 2) + '\n');
const svg = barChartSvg(
  `Recovered frames under bursty loss (mean burst ${BURST}, ${seconds} s of speech-like audio)`,
  'recovered %',
  [...MECHANISMS],
  LOSSES.map((l, i) => ({ name: `${l} % loss`, color: ['#3b7dd8', '#d8683b'][i]!, values: MECHANISMS.map((m) => results[l]![m].recoveredPct) })),
);
writeFileSync(join(resultsDir, 'resilience.svg'), svg);

const table = (lossPct: number): string[] => [
  `| mechanism | recovered | speech SNR vs lossless | tone SNR | wire kb/s | bandwidth vs none | encode ms/frame |`,
  `| --- | --- | --- | --- | --- | --- | --- |`,
  ...MECHANISMS.map((m) => {
    const r = results[lossPct]![m];
    return `| ${m} | ${r.recoveredPct} % (${r.recovered.red + r.recovered.fec + r.recovered.dred}/${r.wireLost}) | ${r.snrDb} dB | ${r.toneSnrDb} dB | ${r.wireKbps} | ${r.bandwidthVsNone}× | ${r.encodeMsPerFrame} |`;
  }),
];
const md = [
  '# Resilience benchmark',
  '',
  `One Opus sender (24 kb/s VOIP, VoxLink's wasm build) → a seeded Gilbert–Elliott lossy path (mean burst`,
  `${BURST} packets) → the project's JitterBuffer (FEC → DRED → PLC), ${seconds} s per mechanism on a simulated clock, every`,
  'mechanism through the same loss pattern. RED is built by the server\'s RedPacketizer at the distance its RedPolicy',
  'picks for the loss (2 at both losses). Recovered = lost frames that came back (RED block, LBRR, DRED) ÷ frames lost',
  'on the wire. Speech SNR: segmental SNR (20 ms frames, clamped −10…35 dB) of the lossy playout against the same packets played without loss. Tone SNR: a 4 Hz-enveloped',
  '600 Hz tone (test/resilience/measure.ts). Baseline in the same run: `none`.',
  '',
  '![recovered frames per mechanism](resilience.svg)',
  '',
  ...LOSSES.flatMap((l) => [`## ${l} % bursty loss`, '', ...table(l), '']),
  '## Server mix encode: plain vs DRED variant (docs/audio.md "DRED")',
  '',
  'The RoomMixer\'s encode of one stream for `normal` listeners (32 kb/s, complexity 5, FEC at 3 %) and its DRED variant',
  '(complexity 7, 10 % expected loss, in-band FEC off, DRED 1 s), a 600 Hz enveloped tone, 10 % bursty loss. Paid once per stream per tick.',
  '',
  '| encode | ms/frame | bytes/packet | recovered at 10 % |',
  '| --- | --- | --- | --- |',
  `| plain | ${mixDred.plain.encodeMsPerFrame} | ${mixDred.plain.bytesPerPacket} | ${mixDred.plain.recoveredPct} % |`,
  `| DRED variant | ${mixDred.dred.encodeMsPerFrame} (${json.mixDred.costVsPlain}×) | ${mixDred.dred.bytesPerPacket} (${json.mixDred.bandwidthVsPlain}×) | ${mixDred.dred.recoveredPct} % |`,
  '',
  `Node ${process.version}, ${json.date}${quick ? ' (--quick)' : ''}.`,
  '',
];
writeFileSync(join(resultsDir, 'resilience.md'), md.join('\n'));
console.log(`wrote ${join(resultsDir, 'resilience.json')}`);
