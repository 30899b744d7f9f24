/**
 * Checks of the committed build itself (wasm/opus.wasm against wasm/build-info.json and
 * wasm/ABI.md), with a test-local instantiation so a fault here points at the build, not at
 * the binding in src/codec/. Emscripten is never run here: `./emsdk-build.sh --check` and
 * `--conformance` are the heavy checks.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const wasmDir = fileURLToPath(new URL('../../wasm/', import.meta.url));
const wasmBytes = readFileSync(`${wasmDir}opus.wasm`);
const buildInfo = JSON.parse(readFileSync(`${wasmDir}build-info.json`, 'utf8')) as {
  opus: { version: string; sha256: string };
  exports: string[];
  imports: string[];
  stack_size: number;
  output: { sha256: string; size: number };
};
const abiMd = readFileSync(`${wasmDir}ABI.md`, 'utf8');
const buildScript = readFileSync(fileURLToPath(new URL('../../emsdk-build.sh', import.meta.url)), 'utf8');

/** Backticked names in the first column of the tables of one `## Section` of ABI.md. */
function abiTableNames(section: string): string[] {
  const start = abiMd.indexOf(`\n## ${section}\n`);
  expect(start, `ABI.md has a "## ${section}" section`).toBeGreaterThan(-1);
  const end = abiMd.indexOf('\n## ', start + 1);
  const body = abiMd.slice(start, end === -1 ? undefined : end);
  const names: string[] = [];
  for (const m of body.matchAll(/^\| `([A-Za-z0-9_.]+)(?:\([^`]*\))?` \|/gm)) names.push(m[1]);
  return names;
}

const OPUS_APPLICATION_VOIP = 2048;
const OPUS_BAD_ARG = -1;
const REQ = {
  SET_BITRATE: 4002,
  GET_BITRATE: 4003,
  SET_COMPLEXITY: 4010,
  SET_INBAND_FEC: 4012,
  SET_PACKET_LOSS_PERC: 4014,
  RESET_STATE: 4028,
  GET_LOOKAHEAD: 4027,
  GET_FINAL_RANGE: 4031,
  SET_DRED_DURATION: 4050,
};

type Fn = (...args: number[]) => number;
type Exports = Record<string, Fn> & { memory: WebAssembly.Memory };

function instantiate(): Exports {
  const module = new WebAssembly.Module(wasmBytes);
  const imports: Record<string, Record<string, () => unknown>> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] =
      imp.name === 'emscripten_notify_memory_growth'
        ? () => undefined
        : () => {
            throw new Error(`opus.wasm called ${imp.module}.${imp.name}`);
          };
  }
  const x = new WebAssembly.Instance(module, imports).exports as unknown as Exports;
  x._initialize?.();
  return x;
}

function cString(x: Exports, ptr: number): string {
  const bytes = new Uint8Array(x.memory.buffer, ptr);
  return Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString('latin1');
}

/** Amplitude of `freq` in `pcm` (single-bin DFT), relative to full scale. */
function toneLevel(pcm: Int16Array | Float32Array, freq: number, fs: number, scale: number): number {
  let re = 0;
  let im = 0;
  for (let i = 0; i < pcm.length; i++) {
    const w = (2 * Math.PI * freq * i) / fs;
    re += pcm[i] * Math.cos(w);
    im -= pcm[i] * Math.sin(w);
  }
  return (2 * Math.hypot(re, im)) / pcm.length / scale;
}

function sine(n: number, freq: number, fs: number, amp: number): Int16Array {
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = Math.round(amp * 32767 * Math.sin((2 * Math.PI * freq * i) / fs));
  return pcm;
}

describe('wasm/opus.wasm matches wasm/build-info.json', () => {
  it('has the sha256 and size recorded for it', () => {
    expect(createHash('sha256').update(wasmBytes).digest('hex')).toBe(buildInfo.output.sha256);
    expect(wasmBytes.length).toBe(buildInfo.output.size);
  });

  it('was built from the source tarball pinned in emsdk-build.sh', () => {
    const pinned = /^OPUS_SHA256=([0-9a-f]{64})$/m.exec(buildScript)?.[1];
    expect(pinned).toBe('65c1d2f78b9f2fb20082c38cbe47c951ad5839345876e46941612ee87f9a7ce1');
    expect(buildInfo.opus.sha256).toBe(pinned);
    expect(buildInfo.opus.version).toBe('1.5.2');
  });

  it('has exactly the exports and imports build-info.json lists', () => {
    const module = new WebAssembly.Module(wasmBytes);
    const exports = WebAssembly.Module.exports(module).map((e) => e.name).sort();
    const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`).sort();
    expect(exports).toEqual([...buildInfo.exports].sort());
    expect(imports).toEqual([...buildInfo.imports].sort());
  });
});

describe('wasm/opus.wasm honours wasm/ABI.md', () => {
  const module = new WebAssembly.Module(wasmBytes);

  it('exports every function ABI.md promises, and a memory', () => {
    const promised = abiTableNames('Exports');
    expect(promised.length).toBeGreaterThanOrEqual(33);
    const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
    const missing = promised.filter((name) => exports.get(name) !== 'function');
    expect(missing).toEqual([]);
    expect(exports.get('memory')).toBe('memory');
  });

  it('imports nothing beyond the table in ABI.md', () => {
    const allowed = new Set(abiTableNames('Imports'));
    expect(allowed.size).toBeGreaterThan(0);
    const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`);
    expect(imports.filter((i) => !allowed.has(i))).toEqual([]);
  });
});

describe('wasm/opus.wasm runs', () => {
  let x: Exports;
  let scratch: number;
  beforeAll(() => {
    x = instantiate();
    scratch = x.malloc(64);
  });
  const i32 = (ptr: number) => new Int32Array(x.memory.buffer, ptr, 1)[0];

  it('reports libopus 1.5.2 and Opus error strings', () => {
    expect(cString(x, x.opus_get_version_string())).toBe('libopus 1.5.2');
    expect(cString(x, x.opus_strerror(OPUS_BAD_ARG))).toBe('invalid argument');
  });

  it('encodes and decodes a 440 Hz tone in config A, which comes back at 440 Hz', () => {
    const fs = 48000;
    const frame = 960;
    const input = sine(fs, 440, fs, 0.5);
    const enc = x.opus_encoder_create(fs, 1, OPUS_APPLICATION_VOIP, scratch);
    expect(i32(scratch)).toBe(0);
    const dec = x.opus_decoder_create(fs, 1, scratch);
    expect(i32(scratch)).toBe(0);
    expect(x.vx_encoder_ctl_set(enc, REQ.SET_BITRATE, 32000)).toBe(0);
    expect(x.vx_encoder_ctl_set(enc, REQ.SET_COMPLEXITY, 10)).toBe(0);
    expect(x.vx_encoder_ctl_set(enc, REQ.SET_INBAND_FEC, 1)).toBe(0);
    expect(x.vx_encoder_ctl_get(enc, REQ.GET_BITRATE, scratch + 4)).toBe(0);
    expect(i32(scratch + 4)).toBe(32000);

    const pcm = x.malloc(frame * 2);
    const pkt = x.malloc(1500);
    const out = x.malloc(frame * 2);
    const decoded = new Int16Array(input.length);
    let bytes = 0;
    for (let f = 0; f < input.length / frame; f++) {
      new Int16Array(x.memory.buffer, pcm, frame).set(input.subarray(f * frame, (f + 1) * frame));
      const n = x.opus_encode(enc, pcm, frame, pkt, 1500);
      expect(n).toBeGreaterThan(0);
      bytes += n;
      expect(x.opus_packet_get_nb_samples(pkt, n, fs)).toBe(frame);
      expect(x.opus_decode(dec, pkt, n, out, frame, 0)).toBe(frame);
      // both ends agree on the range coder state: the packet decoded as it was encoded
      x.vx_encoder_ctl_get(enc, REQ.GET_FINAL_RANGE, scratch + 4);
      x.vx_decoder_ctl_get(dec, REQ.GET_FINAL_RANGE, scratch + 8);
      expect(i32(scratch + 8) >>> 0).toBe(i32(scratch + 4) >>> 0);
      decoded.set(new Int16Array(x.memory.buffer, out, frame), f * frame);
    }
    expect((bytes * 8) / 1000).toBeGreaterThan(24); // ~32 kbps for 1 s
    expect((bytes * 8) / 1000).toBeLessThan(40);
    const tail = decoded.subarray(fs / 2);
    expect(toneLevel(tail, 440, fs, 32767)).toBeGreaterThan(0.4);
    expect(toneLevel(tail, 1000, fs, 32767)).toBeLessThan(0.02);
    for (const p of [pcm, pkt, out]) x.free(p);
    x.opus_encoder_destroy(enc);
    x.opus_decoder_destroy(dec);
  });

  it('encodes a 120 ms frame (needs the 1 MiB+ stack)', () => {
    const fs = 48000;
    const frame = 5760;
    const enc = x.opus_encoder_create(fs, 2, OPUS_APPLICATION_VOIP, scratch);
    const dec = x.opus_decoder_create(fs, 2, scratch);
    x.vx_encoder_ctl_set(enc, REQ.SET_BITRATE, 64000);
    const pcm = x.malloc(frame * 4);
    const out = x.malloc(frame * 4);
    const pkt = x.malloc(4000);
    const tone = sine(frame * 2, 440, fs * 2, 0.3);
    new Int16Array(x.memory.buffer, pcm, frame * 2).set(tone);
    const n = x.opus_encode(enc, pcm, frame, pkt, 4000);
    expect(n).toBeGreaterThan(0);
    expect(x.opus_packet_get_nb_samples(pkt, n, fs)).toBe(frame);
    expect(x.opus_decode(dec, pkt, n, out, frame, 0)).toBe(frame);
    for (const p of [pcm, out, pkt]) x.free(p);
    x.opus_encoder_destroy(enc);
    x.opus_decoder_destroy(dec);
  });

  it('carries DRED in the packets and decodes audio from it', () => {
    const fs = 16000;
    const frame = 320;
    const enc = x.opus_encoder_create(fs, 1, OPUS_APPLICATION_VOIP, scratch);
    expect(x.vx_encoder_ctl_set(enc, REQ.SET_BITRATE, 32000)).toBe(0);
    expect(x.vx_encoder_ctl_set(enc, REQ.SET_PACKET_LOSS_PERC, 20)).toBe(0);
    expect(x.vx_encoder_ctl_set(enc, REQ.SET_DRED_DURATION, 100)).toBe(0);
    const dredDec = x.opus_dred_decoder_create(scratch);
    expect(i32(scratch)).toBe(0);
    const dred = x.opus_dred_alloc(scratch);
    expect(i32(scratch)).toBe(0);
    const dec = x.opus_decoder_create(fs, 1, scratch);
    const pcm = x.malloc(frame * 2);
    const pkt = x.malloc(1500);
    const out = x.malloc(frame * 4);
    const input = sine(fs, 220, fs, 0.4);
    let parsed = 0;
    let level = 0;
    for (let f = 0; f < input.length / frame; f++) {
      new Int16Array(x.memory.buffer, pcm, frame).set(input.subarray(f * frame, (f + 1) * frame));
      const n = x.opus_encode(enc, pcm, frame, pkt, 1500);
      expect(n).toBeGreaterThan(0);
      expect(x.opus_decode(dec, pkt, n, out, frame, 0)).toBe(frame);
      // the decoder recovers the 20 ms before this packet from its DRED, as after a loss
      const avail = x.opus_dred_parse(dredDec, dred, pkt, n, fs, fs, scratch, 0);
      if (f > 10 && avail >= frame) {
        parsed++;
        expect(x.opus_decoder_dred_decode_float(dec, dred, frame, out, frame)).toBe(frame);
        const floats = new Float32Array(x.memory.buffer, out, frame);
        level = Math.max(level, ...floats.map(Math.abs));
      }
    }
    expect(parsed).toBeGreaterThan(10);
    expect(level).toBeGreaterThan(0.05);
    for (const p of [pcm, pkt, out]) x.free(p);
    x.opus_dred_free(dred);
    x.opus_dred_decoder_destroy(dredDec);
    x.opus_encoder_destroy(enc);
    x.opus_decoder_destroy(dec);
  });

  it('refuses ctl requests of the wrong kind instead of writing through an int', () => {
    const enc = x.opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, scratch);
    const dec = x.opus_decoder_create(48000, 1, scratch);
    expect(x.vx_encoder_ctl_set(enc, REQ.GET_BITRATE, 1234)).toBe(OPUS_BAD_ARG);
    expect(x.vx_encoder_ctl_get(enc, REQ.SET_BITRATE, scratch)).toBe(OPUS_BAD_ARG);
    expect(x.vx_encoder_ctl_set(enc, REQ.RESET_STATE, 0)).toBe(OPUS_BAD_ARG);
    expect(x.vx_decoder_ctl_set(dec, REQ.GET_FINAL_RANGE, 1234)).toBe(OPUS_BAD_ARG);
    expect(x.vx_encoder_ctl_set(0, REQ.SET_BITRATE, 32000)).toBe(OPUS_BAD_ARG);
    expect(x.vx_encoder_ctl_set(enc, REQ.SET_BITRATE, 24000)).toBe(0);
    expect(x.vx_encoder_reset(enc)).toBe(0);
    expect(x.vx_decoder_reset(dec)).toBe(0);
    expect(x.vx_encoder_ctl_get(enc, REQ.GET_LOOKAHEAD, scratch)).toBe(0);
    expect(i32(scratch)).toBe(312); // 2.5 ms + 4 ms at 48 kHz for VOIP (opus_encoder.c)
    x.opus_encoder_destroy(enc);
    x.opus_decoder_destroy(dec);
  });

  it('mix kernels add, subtract and scale every sample, including a ragged tail', () => {
    const n = 963; // not a multiple of the SIMD width
    const acc = x.malloc(n * 4);
    const src = x.malloc(n * 4);
    const out = x.malloc(n * 4);
    const f32 = (p: number) => new Float32Array(x.memory.buffer, p, n);
    const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
    const b = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 0.25);
    f32(acc).set(a);
    f32(src).set(b);
    x.vx_mix_add(acc, src, n);
    const sum = f32(acc).slice();
    x.vx_mix_sub(out, acc, src, n);
    const minus = f32(out).slice();
    x.vx_mix_scale(out, n, 0.5);
    const scaled = f32(out).slice();
    let worst = 0;
    for (let i = 0; i < n; i++) {
      worst = Math.max(
        worst,
        Math.abs(sum[i] - Math.fround(a[i] + b[i])),
        Math.abs(minus[i] - Math.fround(sum[i] - b[i])),
        Math.abs(scaled[i] - Math.fround(minus[i] * 0.5)),
      );
    }
    expect(worst).toBe(0); // f32 arithmetic, same as the scalar loop would give
    expect(minus[n - 1]).toBeCloseTo(a[n - 1], 6);
    for (const p of [acc, src, out]) x.free(p);
  });

  it('grows its memory when asked for more than it has', () => {
    const before = x.memory.buffer.byteLength;
    const big = x.malloc(before + (1 << 20));
    expect(big).not.toBe(0);
    expect(x.memory.buffer.byteLength).toBeGreaterThan(before);
    x.free(big);
  });
});
