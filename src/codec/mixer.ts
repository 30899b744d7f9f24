import { getOpusRuntime, type OpusRuntime } from './wasm.ts';

/**
 * Float mix kernels for the room mixer's 20 ms bus, in two implementations: plain TypeScript loops
 * over Float32Array, and opus.wasm's SIMD kernels (`vx_mix_add/vx_mix_sub`, wasm/ABI.md) staged
 * through three frames of wasm memory. bench/mixing measures both every run ("Mix kernels" in
 * bench/results/mixing.md): the wasm kernels win by 3–6× even with the copies in and out, because
 * V8 does not vectorise the scalar loop; so RoomMixer uses `WasmMixKernels` (docs/audio.md).
 *
 * The N−1 trick (everyone but me): sum all active speakers once into `total`, then each speaker's
 * mix is `total − own`, so a room with S speakers costs S+1 passes instead of S².
 */

/** acc[i] += src[i] */
export function mixAdd(acc: Float32Array, src: Float32Array, count = acc.length): void {
  for (let i = 0; i < count; i++) acc[i] += src[i]!;
}

/** out[i] = acc[i] − src[i] */
export function mixSub(out: Float32Array, acc: Float32Array, src: Float32Array, count = out.length): void {
  for (let i = 0; i < count; i++) out[i] = acc[i]! - src[i]!;
}

/** io[i] *= gain */
export function mixScale(io: Float32Array, gain: number, count = io.length): void {
  for (let i = 0; i < count; i++) io[i] *= gain;
}

/** Mean square of a frame (power); used for voice activity on the bus. */
export function framePower(pcm: Float32Array, count = pcm.length): number {
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const x = pcm[i]!;
    sum += x * x;
  }
  return count > 0 ? sum / count : 0;
}

/** Largest absolute sample of a frame. */
export function framePeak(pcm: Float32Array, count = pcm.length): number {
  let peak = 0;
  for (let i = 0; i < count; i++) {
    const x = pcm[i]!;
    const a = x < 0 ? -x : x;
    if (a > peak) peak = a;
  }
  return peak;
}

/** The two operations the N−1 mix needs. Frames are 960-sample (20 ms at 48 kHz) Float32Arrays. */
export interface MixKernels {
  readonly name: 'ts' | 'wasm';
  /** acc[i] += src[i] */
  add(acc: Float32Array, src: Float32Array, count: number): void;
  /** out[i] = acc[i] − src[i] */
  sub(out: Float32Array, acc: Float32Array, src: Float32Array, count: number): void;
}

export const tsMixKernels: MixKernels = { name: 'ts', add: mixAdd, sub: mixSub };

const STAGE_SAMPLES = 960;

/**
 * `vx_mix_add/sub` over three staging frames malloc'd once in this thread's wasm heap. The mixer's
 * frames stay in JS memory (wasm views detach whenever the heap grows, e.g. when an encoder is
 * created mid-tick), so each call copies in (memcpy-speed `set`) and out. Other lengths than one
 * 20 ms frame fall back to the TypeScript loops.
 */
export class WasmMixKernels implements MixKernels {
  readonly name = 'wasm' as const;
  readonly #rt: OpusRuntime;
  readonly #a: number;
  readonly #b: number;
  #buffer: ArrayBufferLike | undefined;
  #va!: Float32Array;
  #vb!: Float32Array;

  constructor(runtime: OpusRuntime = getOpusRuntime()) {
    this.#rt = runtime;
    this.#a = runtime.malloc(STAGE_SAMPLES * 4);
    this.#b = runtime.malloc(STAGE_SAMPLES * 4);
  }

  add(acc: Float32Array, src: Float32Array, count: number): void {
    if (count !== STAGE_SAMPLES || acc.length !== STAGE_SAMPLES || src.length !== STAGE_SAMPLES) {
      mixAdd(acc, src, count);
      return;
    }
    this.#views();
    this.#va.set(acc);
    this.#vb.set(src);
    this.#rt.exports.vx_mix_add(this.#a, this.#b, STAGE_SAMPLES);
    acc.set(this.#va);
  }

  sub(out: Float32Array, acc: Float32Array, src: Float32Array, count: number): void {
    if (count !== STAGE_SAMPLES || out.length !== STAGE_SAMPLES || acc.length !== STAGE_SAMPLES || src.length !== STAGE_SAMPLES) {
      mixSub(out, acc, src, count);
      return;
    }
    this.#views();
    this.#va.set(acc);
    this.#vb.set(src);
    // ABI: out may alias acc.
    this.#rt.exports.vx_mix_sub(this.#a, this.#a, this.#b, STAGE_SAMPLES);
    out.set(this.#va);
  }

  #views(): void {
    const buffer = this.#rt.memory.buffer;
    if (buffer === this.#buffer) return;
    this.#buffer = buffer;
    this.#va = new Float32Array(buffer, this.#a, STAGE_SAMPLES);
    this.#vb = new Float32Array(buffer, this.#b, STAGE_SAMPLES);
  }
}

let threadKernels: WasmMixKernels | undefined;

/** This thread's WasmMixKernels (stateless between calls, so every mixer of the thread shares it). */
export function wasmMixKernels(): WasmMixKernels {
  return (threadKernels ??= new WasmMixKernels());
}
