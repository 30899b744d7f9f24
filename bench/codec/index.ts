/**
 * Codec benchmark (VoxLink issue 2): ms of CPU per 20 ms frame to encode and decode the same
 * speech with
 *   wasm        wasm/opus.wasm through the TypeScript binding (src/codec), zero-copy path
 *   native      libopus built from the same tarball with gcc and its default configure
 *               (runtime CPU dispatch), timed by bench/codec/native-harness.c
 *   opusscript  the npm package (libopus 1.4 compiled to wasm without SIMD, int16 API)
 * Timed in process CPU time. Each pass is a fresh encoder/decoder over the whole signal; the three
 * implementations run interleaved, pass by pass, after a warm-up pass, and every chunk of 25
 * frames keeps its fastest of N passes (robust to a shared, loaded host).
 * Writes bench/results/codec.json and bench/results/codec.md.
 *
 *   npm run bench -- codec [--quick]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  OpusApplication,
  OpusBandwidth,
  OpusDecoder,
  OpusEncoder,
  opusVersion,
  warmUpOpus,
  type OpusEncoderOptions,
} from '../../src/codec/index.ts';
import { speechLikeFloat32, toInt16 } from '../../test/codec/signal.ts';
import { ensureNativeOpus } from './native-build.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// --quick results go to bench/results/quick/ (not committed) so they never replace a full run's.
const resultsDir = join(here, '..', 'results', ...(process.argv.includes('--quick') ? ['quick'] : []));
const cacheDir = join(root, '.cache', 'codec-bench');
const quick = process.argv.includes('--quick');
const RATE = 48000;
const FRAME = RATE / 50;
const seconds = quick ? 4 : 10;
const passes = quick ? 5 : 12;

interface Config {
  label: string;
  channels: 1 | 2;
  application: OpusApplication;
  bitrate: number;
  /** -1 = libopus default */
  complexity: number;
  fec: boolean;
  loss: number;
  /** 0 = libopus default */
  maxBandwidth: number;
}

const configs: Record<string, Config> = {
  A: { label: 'mono 32 kb/s VOIP, complexity 10, in-band FEC, loss 10%', channels: 1, application: OpusApplication.VOIP, bitrate: 32000, complexity: 10, fec: true, loss: 10, maxBandwidth: 0 },
  B: { label: 'stereo 64 kb/s AUDIO', channels: 2, application: OpusApplication.AUDIO, bitrate: 64000, complexity: -1, fec: false, loss: 0, maxBandwidth: 0 },
  C: { label: 'mono 16 kb/s VOIP, max bandwidth wideband (SILK)', channels: 1, application: OpusApplication.VOIP, bitrate: 16000, complexity: -1, fec: false, loss: 0, maxBandwidth: OpusBandwidth.WIDEBAND },
};

type Impl = 'wasm' | 'native' | 'opusscript';
interface Timing {
  encode: number;
  decode: number;
  kbps: number;
}

function log(line: string): void {
  console.log(line);
}

/** A few seconds of speech: espeak-ng resampled by sox (cached in .cache/), else a synthetic stand-in. */
function speech(): { pcm: Float32Array; source: string } {
  mkdirSync(cacheDir, { recursive: true });
  const raw = join(cacheDir, 'speech-48k.f32');
  if (!existsSync(raw)) {
    const wav = join(cacheDir, 'speech.wav');
    const text =
      'VoxLink carries group calls in the browser. Each speaker is ranked by audio level, and the loudest ' +
      'voices are forwarded to every listener without renegotiation. When the network drops packets, the ' +
      'decoder conceals the gap, and forward error correction rebuilds what it can. Thank you for joining ' +
      'the call; please mute your microphone when you are not speaking, and tell us if the audio breaks up.';
    const speak = spawnSync('espeak-ng', ['-s', '160', '-w', wav, text], { encoding: 'utf8' });
    const resample =
      speak.status === 0
        ? spawnSync('sox', [wav, '-t', 'raw', '-e', 'floating-point', '-b', '32', '-c', '1', '-r', String(RATE), raw], { encoding: 'utf8' })
        : undefined;
    if (resample?.status !== 0) {
      return { pcm: speechLikeFloat32(RATE, seconds), source: 'synthetic speech-like signal (espeak-ng or sox unavailable)' };
    }
  }
  const bytes = readFileSync(raw);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const pcm = new Float32Array(RATE * seconds);
  // Loop the utterance if it is shorter than the bench length.
  for (let i = 0; i < pcm.length; i++) pcm[i] = all[i % all.length];
  return { pcm, source: 'espeak-ng (en), resampled to 48 kHz by sox' };
}

/** Stereo from mono: the right channel a little later and darker, plus room noise, so it is not dual-mono. */
function stereo(mono: Float32Array): Float32Array {
  const out = new Float32Array(mono.length * 2);
  let lp = 0;
  let seed = 5;
  for (let i = 0; i < mono.length; i++) {
    lp = 0.6 * lp + 0.4 * (i >= 24 ? mono[i - 24] : 0);
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[2 * i] = mono[i];
    out[2 * i + 1] = 0.8 * lp + ((seed / 0x100000000) - 0.5) * 0.002;
  }
  return out;
}

function encoderOptions(c: Config): OpusEncoderOptions {
  return {
    sampleRate: RATE,
    channels: c.channels,
    application: c.application,
    bitrate: c.bitrate,
    ...(c.complexity >= 0 ? { complexity: c.complexity } : {}),
    inbandFec: c.fec,
    packetLossPercent: c.loss,
    ...(c.maxBandwidth ? { maxBandwidth: c.maxBandwidth as OpusBandwidth } : {}),
  };
}

/**
 * Process CPU time in ms (getrusage): on a shared host, wall time would include the time spent
 * waiting for a core. After warm-up the process's other threads (GC, compiler) are idle, so this
 * is the encoding thread's time. native-harness.c uses CLOCK_PROCESS_CPUTIME_ID to match.
 */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Frames per timed chunk (native-harness.c uses the same). */
const CHUNK = 25;

/**
 * One implementation under test: a pass encodes (or decodes) the whole signal with a fresh
 * encoder (decoder) and returns the CPU ms of each chunk of CHUNK frames.
 */
interface Contender {
  encodePass(): Float64Array;
  decodePass(): Float64Array;
  kbps(): number;
}

/** Times one pass of `frames` frames in chunks. */
function timeChunks(frames: number, frame: (i: number) => void): Float64Array {
  const chunks = new Float64Array(Math.ceil(frames / CHUNK));
  for (let c = 0; c < chunks.length; c++) {
    const end = Math.min(frames, (c + 1) * CHUNK);
    const started = cpuMs();
    for (let i = c * CHUNK; i < end; i++) frame(i);
    chunks[c] = cpuMs() - started;
  }
  return chunks;
}

function wasmContender(c: Config, pcm: Float32Array): Contender {
  const step = FRAME * c.channels;
  const frames = Math.floor(pcm.length / step);
  const packets: Uint8Array[] = [];
  return {
    encodePass() {
      const encoder = new OpusEncoder(encoderOptions(c));
      const chunks = timeChunks(frames, (i) => {
        // The zero-copy path: PCM into the encoder's view on wasm memory, packet as a view back.
        encoder.pcmIn.set(pcm.subarray(i * step, (i + 1) * step));
        const packet = encoder.encodeFrame();
        if (packets.length < frames) packets.push(packet.slice());
      });
      encoder.close();
      return chunks;
    },
    decodePass() {
      const decoder = new OpusDecoder({ sampleRate: RATE, channels: c.channels });
      const chunks = timeChunks(frames, (i) => decoder.decode(packets[i]));
      decoder.close();
      return chunks;
    },
    kbps: () => (packets.reduce((n, p) => n + p.length, 0) * 8) / (frames * 20),
  };
}

interface OpusScriptInstance {
  encode(buffer: Buffer, frameSize: number): Buffer;
  decode(buffer: Buffer): Buffer;
  encoderCTL(ctl: number, arg: number): void;
  delete(): void;
}
type OpusScriptClass = new (rate: number, channels: number, application: number) => OpusScriptInstance;

function opusscriptContender(c: Config, pcm: Float32Array): Contender {
  const OpusScript = createRequire(import.meta.url)('opusscript') as OpusScriptClass;
  const pcm16 = toInt16(pcm);
  const step = FRAME * c.channels;
  const frames = Math.floor(pcm16.length / step);
  // opusscript takes a Buffer of int16 bytes (an Int16Array is mis-read); views, no copies.
  const inputs = Array.from({ length: frames }, (_, i) => Buffer.from(pcm16.buffer, i * step * 2, step * 2));
  const create = (): OpusScriptInstance => {
    const codec = new OpusScript(RATE, c.channels, c.application);
    codec.encoderCTL(4002, c.bitrate);
    if (c.complexity >= 0) codec.encoderCTL(4010, c.complexity);
    codec.encoderCTL(4012, c.fec ? 1 : 0);
    codec.encoderCTL(4014, c.loss);
    if (c.maxBandwidth) codec.encoderCTL(4004, c.maxBandwidth);
    return codec;
  };
  const packets: Buffer[] = [];
  return {
    encodePass() {
      const codec = create();
      const chunks = timeChunks(frames, (i) => {
        const packet = codec.encode(inputs[i], FRAME);
        if (packets.length < frames) packets.push(packet);
      });
      codec.delete();
      return chunks;
    },
    decodePass() {
      const codec = create(); // one object holds an encoder and a decoder
      const chunks = timeChunks(frames, (i) => codec.decode(packets[i]));
      codec.delete();
      return chunks;
    },
    kbps: () => (packets.reduce((n, p) => n + p.length, 0) * 8) / (frames * 20),
  };
}

/** Native libopus: each pass is one harness run (its own untimed warm-up pass, then one timed). */
function nativeContender(harness: string, name: string, c: Config, pcm: Float32Array): Contender & { version: () => string } {
  const file = join(cacheDir, `bench-${name}.f32`);
  writeFileSync(file, new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  const args = [file, RATE, c.channels, c.application, c.bitrate, c.complexity, c.fec ? 1 : 0, c.loss, c.maxBandwidth, 2].map(String);
  let last: { version: string; frames: number; bytes: number; encodeChunks: number[]; decodeChunks: number[] } | undefined;
  let pendingDecode: Float64Array | undefined;
  const run = (): void => {
    const result = spawnSync(harness, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`native harness failed: ${result.stderr}`);
    last = JSON.parse(result.stdout) as NonNullable<typeof last>;
  };
  return {
    // One harness run times both directions; the decode half is handed out on the next decodePass().
    encodePass() {
      run();
      pendingDecode = Float64Array.from(last!.decodeChunks);
      return Float64Array.from(last!.encodeChunks);
    },
    decodePass() {
      const chunks = pendingDecode ?? (run(), Float64Array.from(last!.decodeChunks));
      pendingDecode = undefined;
      return chunks;
    },
    kbps: () => (last ? (last.bytes * 8) / (last.frames * 20) : 0),
    version: () => last?.version ?? '',
  };
}

/**
 * Runs a warm-up pass of every contender, then `passes` rounds in which each contender runs one
 * encode pass and one decode pass, interleaved, so all see the same host load over time. Every
 * chunk keeps its fastest time across rounds; returns ms per frame.
 */
function race(frames: number, contenders: Partial<Record<Impl, Contender>>): Partial<Record<Impl, { encode: number; decode: number }>> {
  const entries = Object.entries(contenders) as [Impl, Contender][];
  const best = new Map<Impl, { encode: Float64Array; decode: Float64Array }>();
  for (let round = 0; round <= passes; round++) {
    for (const [impl, contender] of entries) {
      const encode = contender.encodePass();
      const decode = contender.decodePass();
      if (round === 0) continue; // warm-up
      const b = best.get(impl);
      if (!b) {
        best.set(impl, { encode, decode });
        continue;
      }
      for (let i = 0; i < encode.length; i++) b.encode[i] = Math.min(b.encode[i], encode[i]);
      for (let i = 0; i < decode.length; i++) b.decode[i] = Math.min(b.decode[i], decode[i]);
    }
  }
  const sum = (a: Float64Array): number => a.reduce((x, y) => x + y, 0);
  return Object.fromEntries(
    [...best].map(([impl, b]) => [impl, { encode: sum(b.encode) / frames, decode: sum(b.decode) / frames }]),
  );
}

const round = (x: number, digits = 4): number => Number(x.toFixed(digits));

function main(): void {
  const started = performance.now();
  const { pcm: mono, source } = speech();
  log(`signal: ${seconds} s, ${source}; ${passes} timed rounds after 1 warm-up round${quick ? ' (--quick)' : ''}`);
  const warm = warmUpOpus();
  log(`warmUpOpus: ${warm.frames} frames in ${warm.ms.toFixed(0)} ms`);

  let native: Awaited<ReturnType<typeof ensureNativeOpus>>;
  try {
    native = ensureNativeOpus(root, log);
  } catch (error) {
    native = `native build failed: ${String(error)}`;
  }
  if (typeof native === 'string') log(`native libopus skipped: ${native}`);

  const results: Record<string, { encode: Partial<Record<Impl, number>>; decode: Partial<Record<Impl, number>>; kbps: Partial<Record<Impl, number>> }> = {};
  const ratios: Record<string, Record<string, number | null>> = {};
  let nativeVersion = '';
  for (const [name, c] of Object.entries(configs)) {
    const pcm = c.channels === 2 ? stereo(mono) : mono;
    const contenders: Partial<Record<Impl, Contender>> = { wasm: wasmContender(c, pcm) };
    let nativeRun: ReturnType<typeof nativeContender> | undefined;
    if (typeof native !== 'string') contenders.native = nativeRun = nativeContender(native.harness, name, c, pcm);
    contenders.opusscript = opusscriptContender(c, pcm);
    const frames = Math.floor(pcm.length / (FRAME * c.channels));
    const raced = race(frames, contenders);
    if (nativeRun) nativeVersion = nativeRun.version();
    const timings: Partial<Record<Impl, Timing>> = {};
    for (const [impl, t] of Object.entries(raced) as [Impl, { encode: number; decode: number }][]) {
      timings[impl] = { ...t, kbps: contenders[impl]!.kbps() };
    }
    const pick = (key: keyof Timing): Partial<Record<Impl, number>> =>
      Object.fromEntries(Object.entries(timings).map(([impl, t]) => [impl, round(t[key])]));
    results[name] = { encode: pick('encode'), decode: pick('decode'), kbps: pick('kbps') };
    const w = timings.wasm!;
    const nt = timings.native;
    const o = timings.opusscript!;
    ratios[name] = {
      encodeWasmVsNative: nt ? round(w.encode / nt.encode, 2) : null,
      decodeWasmVsNative: nt ? round(w.decode / nt.decode, 2) : null,
      encodeOpusscriptVsWasm: round(o.encode / w.encode, 2),
      decodeOpusscriptVsWasm: round(o.decode / w.decode, 2),
    };
    log(`${name} ${c.label}: ${JSON.stringify(results[name])} ${JSON.stringify(ratios[name])}`);
  }

  const a = ratios.A;
  const targets = {
    'A encode ≤ 1.5× native': a.encodeWasmVsNative === null ? null : a.encodeWasmVsNative <= 1.5,
    'A decode ≤ 1.3× native': a.decodeWasmVsNative === null ? null : a.decodeWasmVsNative <= 1.3,
    'goal beyond: A encode ≤ 1.2× native': a.encodeWasmVsNative === null ? null : a.encodeWasmVsNative <= 1.2,
    'goal beyond: A decode ≤ 1.1× native': a.decodeWasmVsNative === null ? null : a.decodeWasmVsNative <= 1.1,
    'wasm faster than opusscript (encode and decode, every config)': Object.values(ratios).every(
      (r) => (r.encodeOpusscriptVsWasm ?? 0) > 1 && (r.decodeOpusscriptVsWasm ?? 0) > 1,
    ),
  };
  const environment = {
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadavg: os.loadavg().map((x) => round(x, 2)),
    wasm: opusVersion(),
    native: typeof native === 'string' ? native : `${nativeVersion}, ${native.compiler}, default configure`,
    opusscript: 'opusscript 0.1.1 (libopus 1.4, wasm, no SIMD)',
    signal: source,
    seconds,
    passes,
    quick,
  };
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(
    join(resultsDir, 'codec.json'),
    `${JSON.stringify({ unit: 'CPU ms per 20 ms frame (per-chunk best of passes)', environment, configs: results, ratios, targets }, null, 2)}\n`,
  );

  const cell = (x: number | undefined | null, digits = 4): string => (x === undefined || x === null ? '—' : x.toFixed(digits));
  const lines = [
    '# Codec benchmark: Opus encode/decode, ms per 20 ms frame (lower is better)',
    '',
    `Signal: ${seconds} s of ${source}, 48 kHz, 20 ms frames; process CPU time; ${passes} rounds (implementations interleaved) after a warm-up round, each 25-frame chunk keeps its fastest round.`,
    `wasm = ${environment.wasm} (wasm/opus.wasm, SIMD) through src/codec; native = ${environment.native}; ` +
      `opusscript = ${environment.opusscript}.`,
    `Machine: ${environment.cpu}, ${environment.cores} cores, load ${environment.loadavg.join(' ')} (shared; ratios are from the same run), Node ${process.version}.`,
    '',
    '| config | op | wasm | native | opusscript | wasm / native | opusscript / wasm |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [name, c] of Object.entries(configs)) {
    for (const op of ['encode', 'decode'] as const) {
      const r = results[name][op];
      const q = ratios[name];
      lines.push(
        `| ${name}: ${c.label} | ${op} | ${cell(r.wasm)} | ${cell(r.native)} | ${cell(r.opusscript)} | ` +
          `${cell(op === 'encode' ? q.encodeWasmVsNative : q.decodeWasmVsNative, 2)}× | ` +
          `${cell(op === 'encode' ? q.encodeOpusscriptVsWasm : q.decodeOpusscriptVsWasm, 2)}× |`,
      );
    }
  }
  lines.push('', '| target | met |', '| --- | --- |');
  for (const [target, met] of Object.entries(targets)) lines.push(`| ${target} | ${met === null ? 'n/a (no native build)' : met ? 'yes' : 'no'} |`);
  lines.push('', `Bitrates produced (kb/s): ${Object.entries(results).map(([n, r]) => `${n} ${JSON.stringify(r.kbps)}`).join('; ')}.`);
  writeFileSync(join(resultsDir, 'codec.md'), `${lines.join('\n')}\n`);
  log(lines.join('\n'));
  log(`\ncodec bench done in ${((performance.now() - started) / 1000).toFixed(1)} s → ${join(resultsDir, 'codec.json')}, codec.md`);
}

main();
