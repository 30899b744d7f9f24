// Times opus.wasm encode/decode (CPU ms per 20 ms frame), best of N passes after warm-up, and checks
// the decoded tone is still the tone (SNR against the input, delay-compensated).
//
//   node wasm/tools/time-codec.mjs [path/to/opus.wasm] [--passes N] [--config A|C|all]
//                                  [--dec-complexity 0..10] [--json] [--input speech.f32]
//   node wasm/tools/time-codec.mjs a.wasm b.wasm     (interleaved A/B comparison, same run)
//
// Config A: mono 48 kHz, 20 ms, 32 kbps, VOIP, complexity 10, in-band FEC on, 5% loss hint.
// Config C: mono 48 kHz, 20 ms, 16 kbps, VOIP, SILK only (forced), complexity 10.
// Input: 10 s of a 440 Hz tone at -12 dBFS plus its 3rd harmonic (so SILK has a spectrum), or
// with --input the first 10 s (looped if shorter) of a raw 48 kHz mono float32 file, e.g. the
// espeak-ng speech that `npm run bench -- codec` caches in .cache/codec-bench/speech-48k.f32.
// Native numbers for the same configs come from wasm/tools/time-native.c (same output format).
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const FS = 48000;
const FRAME = 960;
const SECONDS = 10;
const FRAMES = (FS * SECONDS) / FRAME;
const MAX_PACKET = 1500;

const OPUS_APPLICATION_VOIP = 2048;
const REQ = {
  SET_BITRATE: 4002,
  SET_COMPLEXITY: 4010,
  SET_INBAND_FEC: 4012,
  SET_PACKET_LOSS_PERC: 4014,
  GET_LOOKAHEAD: 4027,
  GET_FINAL_RANGE: 4031,
  SET_FORCE_MODE: 11002,
};
const MODE_SILK_ONLY = 1000;

export const CONFIGS = {
  A: { bitrate: 32000, complexity: 10, fec: 1, loss: 5, forceMode: 0 },
  C: { bitrate: 16000, complexity: 10, fec: 0, loss: 0, forceMode: MODE_SILK_ONLY },
};

/** 10 s of a raw 48 kHz mono float32 file as int16 (looped if shorter). */
export function fileInput(path) {
  const bytes = readFileSync(path);
  const f32 = new Float32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4));
  if (f32.length === 0) throw new Error(`${path} holds no samples`);
  const pcm = new Int16Array(FS * SECONDS);
  for (let i = 0; i < pcm.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(f32[i % f32.length] * 32768)));
  return pcm;
}

export function tone() {
  const pcm = new Int16Array(FS * SECONDS);
  const amp = 32767 * 10 ** (-12 / 20);
  for (let i = 0; i < pcm.length; i++) {
    const t = i / FS;
    pcm[i] = Math.round(amp * (0.8 * Math.sin(2 * Math.PI * 440 * t) + 0.2 * Math.sin(2 * Math.PI * 1320 * t)));
  }
  return pcm;
}

export async function loadOpus(path) {
  const module = await WebAssembly.compile(readFileSync(path));
  const stub = (name) => () => {
    throw new Error(`opus.wasm called ${name}`);
  };
  const imports = { wasi_snapshot_preview1: {}, env: {} };
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] =
      imp.name === 'emscripten_notify_memory_growth' ? () => {} : stub(`${imp.module}.${imp.name}`);
  }
  const instance = await WebAssembly.instantiate(module, imports);
  const x = instance.exports;
  x._initialize?.();
  return x;
}

// CPU time of this process, not wall time: the machine is shared (2 cores, several busy
// neighbours) and CPU time is far less disturbed by them. The native tool uses the thread's
// CPU clock likewise. The process is single-threaded while timing (no GC to speak of:
// nothing is allocated in the timed loops).
function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function check(ok, what) {
  if (!ok) throw new Error(what);
}

// One codec session on one wasm instance: buffers allocated once, views re-made on growth.
function session(x, cfg) {
  const errPtr = x.malloc(4);
  const pcmPtr = x.malloc(FRAME * 2);
  const outPtr = x.malloc(FRAME * 2);
  const pktPtr = x.malloc(MAX_PACKET);
  const enc = x.opus_encoder_create(FS, 1, OPUS_APPLICATION_VOIP, errPtr);
  check(enc !== 0, 'opus_encoder_create failed');
  const dec = x.opus_decoder_create(FS, 1, errPtr);
  check(dec !== 0, 'opus_decoder_create failed');
  const set = (req, v) => check(x.vx_encoder_ctl_set(enc, req, v) === 0, `ctl ${req}`);
  set(REQ.SET_BITRATE, cfg.bitrate);
  set(REQ.SET_COMPLEXITY, cfg.complexity);
  set(REQ.SET_INBAND_FEC, cfg.fec);
  set(REQ.SET_PACKET_LOSS_PERC, cfg.loss);
  if (cfg.forceMode) set(REQ.SET_FORCE_MODE, cfg.forceMode);
  // decoder complexity (Opus 1.5): >= 5 deep PLC, >= 6 LACE, >= 7 NoLACE (when built with OSCE)
  check(x.vx_decoder_ctl_set(dec, REQ.SET_COMPLEXITY, cfg.decComplexity ?? 0) === 0, 'decoder complexity');
  x.vx_encoder_ctl_get(enc, REQ.GET_LOOKAHEAD, errPtr);
  const lookahead = new Int32Array(x.memory.buffer, errPtr, 1)[0];
  return { x, enc, dec, pcmPtr, outPtr, pktPtr, errPtr, lookahead };
}

// Encodes the whole input; returns packets (copied out once, outside the timed loop) and ms/frame.
function encodePass(s, input, keep) {
  const { x, enc, pcmPtr, pktPtr } = s;
  x.vx_encoder_reset(enc);
  const packets = keep ? [] : null;
  let heap = new Int16Array(x.memory.buffer, pcmPtr, FRAME);
  const t0 = cpuMs();
  for (let f = 0; f < FRAMES; f++) {
    if (heap.buffer !== x.memory.buffer) heap = new Int16Array(x.memory.buffer, pcmPtr, FRAME);
    heap.set(input.subarray(f * FRAME, (f + 1) * FRAME));
    const n = x.opus_encode(enc, pcmPtr, FRAME, pktPtr, MAX_PACKET);
    if (n < 0) throw new Error(`opus_encode: ${n}`);
    if (keep) packets.push(new Uint8Array(x.memory.buffer, pktPtr, n).slice());
  }
  return { packets, msPerFrame: (cpuMs() - t0) / FRAMES };
}

function decodePass(s, packets, output) {
  const { x, dec, pktPtr, outPtr } = s;
  x.vx_decoder_reset(dec);
  let pkt = new Uint8Array(x.memory.buffer, pktPtr, MAX_PACKET);
  const t0 = cpuMs();
  for (let f = 0; f < packets.length; f++) {
    if (pkt.buffer !== x.memory.buffer) pkt = new Uint8Array(x.memory.buffer, pktPtr, MAX_PACKET);
    pkt.set(packets[f]);
    const n = x.opus_decode(dec, pktPtr, packets[f].length, outPtr, FRAME, 0);
    if (n !== FRAME) throw new Error(`opus_decode: ${n}`);
    if (output) output.set(new Int16Array(x.memory.buffer, outPtr, FRAME), f * FRAME);
  }
  return (cpuMs() - t0) / packets.length;
}

export function snrDb(input, output, delay) {
  let sig = 0;
  let err = 0;
  for (let i = FS; i + delay < output.length; i++) {
    const a = input[i];
    const b = output[i + delay];
    sig += a * a;
    err += (a - b) * (a - b);
  }
  return 10 * Math.log10(sig / Math.max(err, 1e-9));
}

export async function measure(paths, { passes = 7, warmupFrames = 1000, configs = ['A', 'C'], decComplexity = 0, inputPath } = {}) {
  const input = inputPath ? fileInput(inputPath) : tone();
  const out = {};
  const xs = [];
  for (const p of paths) xs.push(await loadOpus(p));
  for (const name of configs) {
    const cfg = { ...CONFIGS[name], decComplexity };
    const sessions = xs.map((x) => session(x, cfg));
    const results = sessions.map(() => ({ enc: Infinity, dec: Infinity }));
    const packetsOf = [];
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i];
      const { packets } = encodePass(s, input, true);
      const decoded = new Int16Array(input.length);
      decodePass(s, packets, decoded);
      const bytes = packets.reduce((a, p) => a + p.length, 0);
      const hash = createHash('sha256');
      for (const p of packets) hash.update(p);
      results[i].snr = snrDb(input, decoded, s.lookahead);
      results[i].kbps = (bytes * 8) / SECONDS / 1000;
      results[i].packetsSha = hash.digest('hex').slice(0, 16);
      results[i].toc = packets[FRAMES - 1][0];
      packetsOf.push(packets);
    }
    // warm-up: at least warmupFrames encodes and decodes per session
    for (let w = 0; w * FRAMES < warmupFrames; w++) {
      sessions.forEach((s, i) => {
        encodePass(s, input, false);
        decodePass(s, packetsOf[i], null);
      });
    }
    // interleave the builds pass by pass so machine noise hits them alike; keep the best
    for (let p = 0; p < passes; p++) {
      sessions.forEach((s, i) => {
        results[i].enc = Math.min(results[i].enc, encodePass(s, input, false).msPerFrame);
        results[i].dec = Math.min(results[i].dec, decodePass(s, packetsOf[i], null));
      });
    }
    out[name] = results;
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const paths = [];
  let passes = 7;
  let configs = ['A', 'C'];
  let json = false;
  let decComplexity = 0;
  let inputPath;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--passes') passes = Number(args[++i]);
    else if (args[i] === '--config') configs = args[++i] === 'all' ? ['A', 'C'] : args[i].split(',');
    else if (args[i] === '--json') json = true;
    else if (args[i] === '--dec-complexity') decComplexity = Number(args[++i]);
    else if (args[i] === '--input') inputPath = args[++i];
    else paths.push(args[i]);
  }
  if (paths.length === 0) paths.push(fileURLToPath(new URL('../opus.wasm', import.meta.url)));
  const res = await measure(paths, { passes, configs, decComplexity, inputPath });
  if (json) {
    console.log(JSON.stringify({ paths, res }));
  } else {
    for (const [name, rs] of Object.entries(res)) {
      rs.forEach((r, i) => {
        console.log(
          `config ${name} ${paths[i]}: encode ${r.enc.toFixed(4)} ms/frame, decode ${r.dec.toFixed(4)} ms/frame, ` +
            `${r.kbps.toFixed(1)} kbps, toc 0x${r.toc.toString(16)}, SNR ${r.snr.toFixed(1)} dB, packets ${r.packetsSha}`,
        );
      });
    }
  }
}
