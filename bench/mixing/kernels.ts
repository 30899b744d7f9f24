import { getOpusRuntime } from '../../src/codec/wasm.ts';
import { tsMixKernels, wasmMixKernels, type MixKernels } from '../../src/codec/mixer.ts';

/**
 * Mix kernels, TypeScript loops vs opus.wasm's `vx_mix_add/vx_mix_sub` (wasm SIMD), on one 20 ms
 * frame (960 float samples): the raw wasm call on data already in wasm memory, and the
 * `WasmMixKernels` the mixer uses (copies in and out of wasm memory included).
 */
export interface KernelResult {
  tsAddNs: number;
  tsSubNs: number;
  wasmAddNs: number;
  wasmSubNs: number;
  wasmRawAddNs: number;
  wasmRawSubNs: number;
  chosen: 'ts' | 'wasm';
}

function time(iterations: number, fn: () => void): number {
  for (let i = 0; i < iterations / 5; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations;
}

export function measureKernels(iterations: number): KernelResult {
  const n = 960;
  const acc = new Float32Array(n).map((_, i) => Math.sin(i) * 0.1);
  const src = new Float32Array(n).map((_, i) => Math.cos(i) * 0.1);
  const out = new Float32Array(n);
  const rt = getOpusRuntime();
  const ex = rt.exports;
  const pa = rt.malloc(n * 4);
  const pb = rt.malloc(n * 4);
  new Float32Array(rt.memory.buffer, pa, n).set(acc);
  new Float32Array(rt.memory.buffer, pb, n).set(src);
  // Accumulating 0.1-scale frames for ~10⁶ iterations stays far from float overflow or denormals.
  const timed = (k: MixKernels) => ({
    add: time(iterations, () => k.add(acc, src, n)),
    sub: time(iterations, () => k.sub(out, acc, src, n)),
  });
  // Interleave the two implementations twice and keep the faster sample of each: on a shared host
  // contention only ever adds time.
  const ts1 = timed(tsMixKernels);
  const wasm1 = timed(wasmMixKernels());
  const ts2 = timed(tsMixKernels);
  const wasm2 = timed(wasmMixKernels());
  const wasmRawAddNs = time(iterations, () => ex.vx_mix_add(pa, pb, n));
  const wasmRawSubNs = time(iterations, () => ex.vx_mix_sub(pa, pa, pb, n));
  rt.free(pa);
  rt.free(pb);
  const tsAddNs = Math.min(ts1.add, ts2.add);
  const tsSubNs = Math.min(ts1.sub, ts2.sub);
  const wasmAddNs = Math.min(wasm1.add, wasm2.add);
  const wasmSubNs = Math.min(wasm1.sub, wasm2.sub);
  return {
    tsAddNs: Math.round(tsAddNs),
    tsSubNs: Math.round(tsSubNs),
    wasmAddNs: Math.round(wasmAddNs),
    wasmSubNs: Math.round(wasmSubNs),
    wasmRawAddNs: Math.round(wasmRawAddNs),
    wasmRawSubNs: Math.round(wasmRawSubNs),
    chosen: tsAddNs + tsSubNs <= wasmAddNs + wasmSubNs ? 'ts' : 'wasm',
  };
}
