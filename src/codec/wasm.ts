/**
 * Loader for wasm/opus.wasm (contract: wasm/ABI.md).
 *
 * - One compiled `WebAssembly.Module` per thread that compiles it; the main thread hands it to
 *   workers with postMessage/workerData (`getOpusModule()` → `instantiateOpus(module)` in the
 *   worker), so a process compiles it once. A worker that was not given one compiles its own.
 * - One `WebAssembly.Instance` (one wasm heap) per thread: `getOpusRuntime()` instantiates lazily,
 *   synchronously (Node allows synchronous compilation of large modules on any thread).
 *   `await loadOpus()` does the same with an asynchronous compile, for startup paths that must
 *   not block the event loop for the few tens of milliseconds compilation takes.
 * - The file is found at `$VOXLINK_OPUS_WASM`, else at `wasm/opus.wasm` in the nearest ancestor
 *   directory of this file: `<repo>/wasm/opus.wasm` when running from source (src/codec/), and
 *   `dist/wasm/opus.wasm` from the esbuild bundle (dist/src/main.js, dist/workers/*.js).
 * - Emscripten's JS glue is not used (it calls fetch() on Node 18+), so the few imports the
 *   standalone module declares get small stubs here.
 */
import { readFileSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';

const log = logger('codec');

type Ptr = number;

/** The exports wasm/ABI.md promises (C names, no leading underscore). */
export interface OpusWasmExports {
  readonly memory: WebAssembly.Memory;
  malloc(size: number): Ptr;
  free(ptr: Ptr): void;
  _initialize?: () => void;
  opus_encoder_create(fs: number, channels: number, application: number, errorPtr: Ptr): Ptr;
  opus_encoder_destroy(st: Ptr): void;
  opus_encode(st: Ptr, pcm: Ptr, frameSize: number, data: Ptr, maxBytes: number): number;
  opus_encode_float(st: Ptr, pcm: Ptr, frameSize: number, data: Ptr, maxBytes: number): number;
  opus_decoder_create(fs: number, channels: number, errorPtr: Ptr): Ptr;
  opus_decoder_destroy(st: Ptr): void;
  opus_decode(st: Ptr, data: Ptr, len: number, pcm: Ptr, frameSize: number, decodeFec: number): number;
  opus_decode_float(st: Ptr, data: Ptr, len: number, pcm: Ptr, frameSize: number, decodeFec: number): number;
  opus_packet_get_nb_samples(data: Ptr, len: number, fs: number): number;
  opus_packet_get_nb_frames(data: Ptr, len: number): number;
  opus_packet_get_nb_channels(data: Ptr): number;
  opus_packet_get_bandwidth(data: Ptr): number;
  opus_decoder_get_nb_samples(st: Ptr, data: Ptr, len: number): number;
  /** Opus 1.5; absent from builds before it was exported (then FEC is assumed present). */
  opus_packet_has_lbrr?(data: Ptr, len: number): number;
  opus_strerror(code: number): Ptr;
  opus_get_version_string(): Ptr;
  opus_dred_decoder_create(errorPtr: Ptr): Ptr;
  opus_dred_decoder_destroy(st: Ptr): void;
  opus_dred_alloc(errorPtr: Ptr): Ptr;
  opus_dred_free(dred: Ptr): void;
  opus_dred_parse(
    dredDec: Ptr,
    dred: Ptr,
    data: Ptr,
    len: number,
    maxDredSamples: number,
    samplingRate: number,
    dredEndPtr: Ptr,
    deferProcessing: number,
  ): number;
  opus_dred_process(dredDec: Ptr, src: Ptr, dst: Ptr): number;
  opus_decoder_dred_decode_float(st: Ptr, dred: Ptr, dredOffset: number, pcm: Ptr, frameSize: number): number;
  vx_encoder_ctl_set(st: Ptr, request: number, value: number): number;
  vx_encoder_ctl_get(st: Ptr, request: number, out: Ptr): number;
  vx_decoder_ctl_set(st: Ptr, request: number, value: number): number;
  vx_decoder_ctl_get(st: Ptr, request: number, out: Ptr): number;
  vx_encoder_reset(st: Ptr): number;
  vx_decoder_reset(st: Ptr): number;
  vx_mix_add(acc: Ptr, src: Ptr, n: number): void;
  vx_mix_sub(out: Ptr, acc: Ptr, src: Ptr, n: number): void;
  vx_mix_scale(io: Ptr, n: number, gain: number): void;
}

const REQUIRED_EXPORTS = [
  'memory',
  'malloc',
  'free',
  'opus_encoder_create',
  'opus_encoder_destroy',
  'opus_encode',
  'opus_encode_float',
  'opus_decoder_create',
  'opus_decoder_destroy',
  'opus_decode',
  'opus_decode_float',
  'opus_packet_get_nb_samples',
  'opus_strerror',
  'opus_get_version_string',
  'vx_encoder_ctl_set',
  'vx_encoder_ctl_get',
  'vx_decoder_ctl_set',
  'vx_decoder_ctl_get',
  'vx_encoder_reset',
  'vx_decoder_reset',
] as const;

const DRED_EXPORTS = [
  'opus_dred_decoder_create',
  'opus_dred_decoder_destroy',
  'opus_dred_alloc',
  'opus_dred_free',
  'opus_dred_parse',
  'opus_decoder_dred_decode_float',
] as const;

/**
 * One thread's instance of opus.wasm: its exports, its memory, and views on that memory that are
 * re-created whenever the memory grows (growth detaches the old ArrayBuffer).
 */
export class OpusRuntime {
  readonly exports: OpusWasmExports;
  readonly memory: WebAssembly.Memory;
  readonly module: WebAssembly.Module;
  /** libopus version string, e.g. "libopus 1.5.2". */
  readonly version: string;
  /** True when the build carries DRED (Opus 1.5 `--enable-dred`) and its model weights. */
  readonly hasDred: boolean;
  /** 16 scratch bytes for out-parameters (int* error, ctl GET results, dred_end). */
  readonly scratch: Ptr;
  #buffer: ArrayBuffer | SharedArrayBuffer;
  #u8: Uint8Array;
  #i32: Int32Array;

  constructor(module: WebAssembly.Module, instance: WebAssembly.Instance) {
    this.module = module;
    const exports = instance.exports as unknown as OpusWasmExports;
    for (const name of REQUIRED_EXPORTS) {
      if (!(name in exports)) throw new VoxError('WASM_LOAD_FAILED', `opus.wasm does not export ${name} (see wasm/ABI.md)`);
    }
    this.exports = exports;
    this.memory = exports.memory;
    this.#buffer = this.memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#i32 = new Int32Array(this.#buffer);
    // Emscripten's standalone build runs static constructors from _initialize (a WASI reactor).
    exports._initialize?.();
    this.scratch = this.malloc(16);
    this.version = this.readCString(exports.opus_get_version_string());
    this.hasDred = this.#probeDred();
  }

  /** Byte view of the whole wasm memory (re-created after growth). */
  get u8(): Uint8Array {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#u8;
  }

  /** Int32 view of the whole wasm memory (re-created after growth). */
  get i32(): Int32Array {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#i32;
  }

  /** malloc that throws instead of returning NULL. */
  malloc(size: number): Ptr {
    const ptr = this.exports.malloc(size);
    if (ptr === 0) throw new VoxError('INTERNAL', `opus.wasm malloc(${size}) failed (wasm memory exhausted)`);
    return ptr;
  }

  free(ptr: Ptr): void {
    if (ptr !== 0) this.exports.free(ptr);
  }

  /** The int stored at `scratch + 4*slot`. */
  scratchInt(slot = 0): number {
    return this.i32[(this.scratch >> 2) + slot];
  }

  readCString(ptr: Ptr): string {
    const u8 = this.u8;
    let end = ptr;
    while (end < u8.length && u8[end] !== 0) end++;
    return Buffer.from(u8.buffer, ptr, end - ptr).toString('latin1');
  }

  /** opus_strerror text for an Opus error code. */
  strerror(code: number): string {
    return this.readCString(this.exports.opus_strerror(code));
  }

  #refresh(): void {
    this.#buffer = this.memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#i32 = new Int32Array(this.#buffer);
  }

  #probeDred(): boolean {
    const ex = this.exports as unknown as Record<string, unknown>;
    if (!DRED_EXPORTS.every((name) => typeof ex[name] === 'function')) return false;
    // Without --enable-dred, libopus 1.5 still exports the symbols but they fail with
    // OPUS_UNIMPLEMENTED; the DRED decoder creation also fails if the weights are missing.
    const dec = this.exports.opus_dred_decoder_create(this.scratch);
    const err = this.scratchInt();
    if (dec === 0 || err !== 0) return false;
    this.exports.opus_dred_decoder_destroy(dec);
    return true;
  }
}

/** Where opus.wasm is looked for (see the module comment). */
export function resolveOpusWasmPath(): string {
  const fromEnv = process.env.VOXLINK_OPUS_WASM;
  if (fromEnv) return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'wasm', 'opus.wasm');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new VoxError(
    'WASM_LOAD_FAILED',
    `opus.wasm not found in wasm/ next to ${fileURLToPath(import.meta.url)} or its parents; set VOXLINK_OPUS_WASM`,
  );
}

let compiled: WebAssembly.Module | undefined;
let compiling: Promise<WebAssembly.Module> | undefined;
let runtime: OpusRuntime | undefined;

/**
 * The compiled module of this thread (compiles synchronously on first use). Post it to a worker
 * (`new Worker(file, { workerData: { opusModule } })`) so the worker skips compilation.
 */
export function getOpusModule(): WebAssembly.Module {
  if (compiled) return compiled;
  const path = resolveOpusWasmPath();
  const started = performance.now();
  try {
    compiled = new WebAssembly.Module(readFileSync(path));
  } catch (cause) {
    throw new VoxError('WASM_LOAD_FAILED', `cannot compile ${path}: ${String(cause)}`, { cause });
  }
  log.debug({ path, ms: Math.round(performance.now() - started) }, 'opus.wasm compiled');
  return compiled;
}

/** Asynchronous compile + instantiate for this thread; resolves to the thread's runtime. */
export async function loadOpus(options: { module?: WebAssembly.Module } = {}): Promise<OpusRuntime> {
  if (runtime) return runtime;
  if (options.module) return instantiateOpus(options.module);
  if (!compiled) {
    compiling ??= (async () => {
      const path = resolveOpusWasmPath();
      const started = performance.now();
      try {
        const module = await WebAssembly.compile(await readFile(path));
        log.debug({ path, ms: Math.round(performance.now() - started) }, 'opus.wasm compiled');
        return module;
      } catch (cause) {
        compiling = undefined;
        throw new VoxError('WASM_LOAD_FAILED', `cannot compile ${path}: ${String(cause)}`, { cause });
      }
    })();
    compiled = await compiling;
  }
  return instantiateOpus(compiled);
}

/**
 * Instantiate a module compiled elsewhere (e.g. received from the main thread) as this thread's
 * runtime. If the thread already has a runtime, that one is returned unchanged.
 */
export function instantiateOpus(module: WebAssembly.Module): OpusRuntime {
  if (runtime) return runtime;
  compiled ??= module;
  const memoryRef: { memory?: WebAssembly.Memory } = {};
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(module, buildImports(module, memoryRef));
  } catch (cause) {
    throw new VoxError('WASM_LOAD_FAILED', `cannot instantiate opus.wasm: ${String(cause)}`, { cause });
  }
  memoryRef.memory = (instance.exports as { memory?: WebAssembly.Memory }).memory;
  runtime = new OpusRuntime(module, instance);
  log.debug({ version: runtime.version, dred: runtime.hasDred }, 'opus.wasm instantiated');
  return runtime;
}

/** This thread's runtime, instantiated (and compiled, if needed) synchronously on first use. */
export function getOpusRuntime(): OpusRuntime {
  return runtime ?? instantiateOpus(getOpusModule());
}

const WASI_EBADF = 8;
const WASI_ENOSYS = 52;

/**
 * Trivial implementations of whatever the standalone module imports (wasm/ABI.md lists them:
 * WASI stdio/exit, emscripten's memory-growth notification). libopus itself does no I/O; only
 * assertion/abort paths might print, so fd_write forwards to stderr and abort-like calls throw.
 */
function buildImports(
  module: WebAssembly.Module,
  ref: { memory?: WebAssembly.Memory },
): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  const mem = (): WebAssembly.Memory => {
    if (!ref.memory) throw new VoxError('INTERNAL', 'opus.wasm called an import before instantiation finished');
    return ref.memory;
  };
  let tempRet0 = 0;
  const known: Record<string, (...args: number[]) => number | void> = {
    proc_exit: (code) => {
      throw new VoxError('INTERNAL', `opus.wasm called exit(${code})`);
    },
    abort: () => {
      throw new VoxError('INTERNAL', 'opus.wasm aborted');
    },
    fd_write: (fd, iovs, iovsLen, nwrittenPtr) => {
      const view = new DataView(mem().buffer);
      let written = 0;
      const chunks: Buffer[] = [];
      for (let i = 0; i < iovsLen; i++) {
        const base = view.getUint32(iovs + i * 8, true);
        const len = view.getUint32(iovs + i * 8 + 4, true);
        chunks.push(Buffer.from(mem().buffer, base, len));
        written += len;
      }
      if (fd === 1 || fd === 2) log.warn({ fd, text: Buffer.concat(chunks).toString('utf8') }, 'opus.wasm wrote');
      view.setUint32(nwrittenPtr, written, true);
      return 0;
    },
    fd_close: () => WASI_EBADF,
    fd_seek: () => WASI_EBADF,
    fd_read: () => WASI_EBADF,
    fd_fdstat_get: () => WASI_EBADF,
    environ_sizes_get: (countPtr, sizePtr) => {
      const view = new DataView(mem().buffer);
      view.setUint32(countPtr, 0, true);
      view.setUint32(sizePtr, 0, true);
      return 0;
    },
    environ_get: () => 0,
    args_sizes_get: (countPtr, sizePtr) => {
      const view = new DataView(mem().buffer);
      view.setUint32(countPtr, 0, true);
      view.setUint32(sizePtr, 0, true);
      return 0;
    },
    args_get: () => 0,
    clock_time_get: (_id, _precision, outPtr) => {
      new DataView(mem().buffer).setBigUint64(outPtr, process.hrtime.bigint(), true);
      return 0;
    },
    emscripten_notify_memory_growth: () => {
      // Views are re-created lazily by identity check on memory.buffer; nothing to do here.
    },
    emscripten_memcpy_big: (dest, src, num) => {
      new Uint8Array(mem().buffer).copyWithin(dest, src, src + num);
      return dest;
    },
    emscripten_resize_heap: (requested) => {
      const memory = mem();
      const pages = Math.ceil((requested - memory.buffer.byteLength) / 65536);
      try {
        if (pages > 0) memory.grow(pages);
        return 1;
      } catch {
        return 0;
      }
    },
    setTempRet0: (value) => {
      tempRet0 = value;
    },
    getTempRet0: () => tempRet0,
  };
  for (const { module: mod, name, kind } of WebAssembly.Module.imports(module)) {
    if (kind !== 'function') {
      throw new VoxError('WASM_LOAD_FAILED', `opus.wasm imports ${kind} ${mod}.${name}; the ABI wants memory exported`);
    }
    const fn =
      known[name] ??
      ((): number => {
        log.warn({ import: `${mod}.${name}` }, 'opus.wasm called an import VoxLink does not implement');
        return WASI_ENOSYS;
      });
    (imports[mod] ??= {})[name] = fn as WebAssembly.ImportValue;
  }
  return imports;
}
