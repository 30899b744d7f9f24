/**
 * Opus encoder and decoder over wasm/opus.wasm (libopus 1.5.2 compiled to WebAssembly SIMD).
 *
 * ## Usage
 * ```ts
 * import { OpusEncoder, OpusDecoder, OpusApplication, loadOpus, warmUpOpus } from '../codec/index.ts';
 * await loadOpus();          // optional: async compile; otherwise the first constructor compiles synchronously
 * warmUpOpus();              // once per thread at startup: 600 frames so V8 tiers the wasm up (~0.5 s CPU)
 * const enc = new OpusEncoder({ sampleRate: 48000, channels: 1, application: OpusApplication.VOIP,
 *                              bitrate: 32000, inbandFec: true, packetLossPercent: 10 });
 * const dec = new OpusDecoder({ sampleRate: 48000, channels: 1 });
 * // Zero-copy hot path: fill the encoder's input view, get a view on the packet bytes.
 * enc.pcmIn.set(frame);                      // Float32Array view on wasm memory, enc.frameSize * channels
 * const packet = enc.encodeFrame();          // Uint8Array view on wasm memory, valid until the next call
 * const pcm = dec.decode(packet);            // Float32Array view on wasm memory, valid until the next call
 * const concealed = dec.decode(null);        // packet lost: PLC
 * enc.close(); dec.close();                  // idempotent; a FinalizationRegistry frees forgotten ones
 * ```
 *
 * ## Contract
 * - Synchronous API. The wasm is compiled once per thread that loads it and instantiated once per
 *   thread (`getOpusRuntime()`); workers can receive the compiled module (`getOpusModule()` →
 *   `instantiateOpus(module)`). All encoders/decoders of a thread share that instance's heap.
 * - Views (`pcmIn`, `pcmIn16`, `packetIn`, returned packets and PCM) live in wasm memory: they are
 *   valid until the next call on the same object, and become detached (length 0) when the memory
 *   grows (e.g. another encoder is created). Re-read the getter each frame; never keep them.
 *   Copy (`packet.slice()`) what must outlive the call, e.g. before handing it to werift.
 * - PCM is interleaved; float samples are in [-1, 1]. `frameSize` is samples per channel.
 * - Errors are `VoxError`s: `CODEC_BAD_ARGUMENT` (checked in TypeScript before calling wasm: sample
 *   rate, channels, frame size, empty packet, option types), `CODEC_CLOSED` (use after close),
 *   `OPUS_ERROR` as `OpusError` with `opusCode` (libopus's negative error) and `opusMessage`
 *   (opus_strerror), e.g. a corrupt packet (-4 "corrupted stream"). After an error the object
 *   stays usable.
 * - Options map 1:1 to OPUS_SET_* ctls and every getter reads back through OPUS_GET_*.
 * - Loss handling (decoder): `decode(null)` = PLC; `decodeFec(nextPacket)` = the lost frame
 *   rebuilt from the in-band FEC (LBRR) carried by the next packet (encoder needs
 *   `inbandFec` and `packetLossPercent > 0`); `parseDred(laterPacket)` + `decodeDred(offset)` =
 *   Deep REDundancy (Opus 1.5; encoder needs `dredDuration > 0` and `packetLossPercent > 0`).
 *   test/codec/stream.ts `decodeAll()` is a worked example of all three.
 * - Views of one object may be passed to another (decoder output into `encoder.encode()` when
 *   transcoding, an encoder's packet into `decoder.decode()`): the binding copies them before
 *   any allocation that could grow memory.
 *
 * ## Surface
 * - `OpusEncoder`: `pcmIn`/`pcmIn16` + `encodeFrame()`/`encodeFrame16()` (zero-copy), `encode(pcm)`
 *   (one copy in), `frameSize`, `frameDurationMs` (settable), option accessors (see
 *   `OpusEncoderOptions`), `lookahead`, `finalRange`, `inDtx`, `reset()`, `close()`.
 * - `OpusDecoder`: `decode(packet | null)`, `decode16()`, `packetIn` + `decodeFrame(length)`
 *   (zero-copy), `decodePlc()`, `decodeFec()`, `decodeInto(packet, out)` (one copy out),
 *   `parseDred()`/`decodeDred()`, `packetSamples()`, `gain`, `complexity`, `lastPacketDuration`,
 *   `pitch`, `bandwidth`, `finalRange`, `reset()`, `close()`.
 * - `getOpusPacketInfo(packet)`, `opusVersion()`, `warmUpOpus()`, loader functions from wasm.ts.
 */
import { VoxError } from '../errors.ts';
import { getOpusRuntime, type OpusRuntime, type OpusWasmExports } from './wasm.ts';
import {
  OPUS_MAX_PACKET_BYTES,
  OPUS_SAMPLE_RATES,
  OpusApplication,
  OpusCtl,
  DECODER_SETTINGS,
  ENCODER_SETTINGS,
  type CtlSetting,
  type OpusBandwidth,
  type OpusDecoderSettings,
  type OpusEncoderSettings,
  type OpusFrameDuration,
  type OpusSampleRate,
  type OpusSignal,
} from './opus-ctl.ts';

/** `VoxError` with code `OPUS_ERROR` for a negative return from libopus. */
export class OpusError extends VoxError {
  /** libopus error code (OPUS_BAD_ARG = -1 … OPUS_ALLOC_FAIL = -7). */
  readonly opusCode: number;
  /** opus_strerror(opusCode). */
  readonly opusMessage: string;

  constructor(operation: string, opusCode: number, opusMessage: string) {
    super('OPUS_ERROR', `${operation}: ${opusMessage} (${opusCode})`);
    this.opusCode = opusCode;
    this.opusMessage = opusMessage;
  }
}

export function isOpusError(value: unknown): value is OpusError {
  return value instanceof OpusError;
}

export type OpusChannels = 1 | 2;

/** Frame durations an encoder accepts (RFC 6716 section 2.1.4; 80–120 ms are Opus 1.2+ multi-frame packets). */
export type OpusFrameDurationMs = 2.5 | 5 | 10 | 20 | 40 | 60 | 80 | 100 | 120;

/** Frame sizes in 2.5 ms units that opus_encode accepts. */
const ENCODER_FRAME_UNITS: readonly boolean[] = (() => {
  const ok = new Array<boolean>(49).fill(false);
  for (const units of [1, 2, 4, 8, 16, 24, 32, 40, 48]) ok[units] = true;
  return ok;
})();

function badArgument(message: string): VoxError {
  return new VoxError('CODEC_BAD_ARGUMENT', message);
}

function checkFormat(sampleRate: number, channels: number): void {
  if (!(OPUS_SAMPLE_RATES as readonly number[]).includes(sampleRate)) {
    throw badArgument(`sample rate ${sampleRate} Hz is not one of ${OPUS_SAMPLE_RATES.join('/')}`);
  }
  if (channels !== 1 && channels !== 2) throw badArgument(`channels must be 1 or 2, got ${channels}`);
}

/** Samples per channel for a duration, validated against what opus_encode accepts. */
function frameSizeFor(sampleRate: number, durationMs: number): number {
  const units = durationMs / 2.5;
  if (!Number.isInteger(units) || !ENCODER_FRAME_UNITS[units]) {
    throw badArgument(`frame duration ${durationMs} ms is not one of 2.5/5/10/20/40/60/80/100/120`);
  }
  return (sampleRate * units) / 400;
}

function checkInt(name: string, value: number): number {
  if (!Number.isInteger(value)) throw badArgument(`${name} must be an integer, got ${value}`);
  return value;
}

/** Holds what a FinalizationRegistry needs to free an object's wasm allocations (never the object). */
interface WasmAllocations {
  readonly rt: OpusRuntime;
  state: number;
  readonly destroy: 'encoder' | 'decoder';
  buffers: number[];
  dred: number;
  dredDecoder: number;
}

/**
 * One libopus encoder or decoder state as the binding holds it: its address, whether it is closed,
 * and the OPUS_GET_* / OPUS_SET_* calls on it. libopus's ctl is variadic, so the wasm build exports
 * two fixed-arity wrappers per kind (wasm/ABI.md). Use after close throws CODEC_CLOSED; a negative
 * return from libopus throws an `OpusError`.
 */
class OpusHandle {
  /** The state's address in wasm memory; 0 once closed. */
  ptr: number;
  closed = false;
  readonly #rt: OpusRuntime;
  readonly #owner: string;
  readonly #api: string;
  readonly #get: (state: number, request: number, out: number) => number;
  readonly #set: (state: number, request: number, value: number) => number;

  constructor(rt: OpusRuntime, kind: 'encoder' | 'decoder', ptr: number) {
    this.ptr = ptr;
    this.#rt = rt;
    this.#owner = kind === 'encoder' ? 'OpusEncoder' : 'OpusDecoder';
    this.#api = `opus_${kind}_ctl`;
    const ex = rt.exports;
    this.#get = kind === 'encoder' ? ex.vx_encoder_ctl_get : ex.vx_decoder_ctl_get;
    this.#set = kind === 'encoder' ? ex.vx_encoder_ctl_set : ex.vx_decoder_ctl_set;
  }

  live(): void {
    if (this.closed) throw new VoxError('CODEC_CLOSED', `${this.#owner} is closed`);
  }

  get(request: number): number {
    this.live();
    const err = this.#get(this.ptr, request, this.#rt.scratch);
    if (err < 0) throw this.error(`${this.#api}(${request})`, err);
    return this.#rt.scratchInt();
  }

  set(request: number, value: number, name: string): void {
    this.live();
    const err = this.#set(this.ptr, request, checkInt(name, value));
    if (err < 0) throw this.error(`${this.#api}(${request}) ${name}=${value}`, err);
  }

  error(operation: string, code: number): OpusError {
    return new OpusError(operation, code, this.#rt.strerror(code));
  }

  close(): void {
    this.closed = true;
    this.ptr = 0;
  }
}

/** Each encoder's/decoder's ctl handle, for the accessors below (module-private, so not public API). */
const ctlHandles = new WeakMap<object, OpusHandle>();

/** Installs one accessor per table row (opus-ctl.ts CtlSetting) on a class whose instances have a ctl handle. */
function installCtlAccessors(prototype: object, table: Record<string, CtlSetting>): void {
  for (const [name, row] of Object.entries(table)) {
    const { get, set, read, write } = row;
    const toInt = write as ((value: unknown) => number) | undefined;
    Object.defineProperty(prototype, name, {
      configurable: true,
      enumerable: false,
      get:
        get === undefined
          ? undefined
          : function (this: object) {
              const raw = ctlHandles.get(this)!.get(get);
              return read === undefined ? raw : read(raw);
            },
      set:
        set === undefined
          ? undefined
          : function (this: object, value: unknown) {
              ctlHandles.get(this)!.set(set, toInt === undefined ? (value as number) : toInt(value), name);
            },
    });
  }
}

function releaseAllocations(held: WasmAllocations): void {
  const ex = held.rt.exports;
  if (held.state !== 0) {
    if (held.destroy === 'encoder') ex.opus_encoder_destroy(held.state);
    else ex.opus_decoder_destroy(held.state);
    held.state = 0;
  }
  for (const ptr of held.buffers) held.rt.free(ptr);
  held.buffers.length = 0;
  if (held.dred !== 0) ex.opus_dred_free(held.dred);
  if (held.dredDecoder !== 0) ex.opus_dred_decoder_destroy(held.dredDecoder);
  held.dred = 0;
  held.dredDecoder = 0;
}

/** Safety net for objects dropped without close(); close() unregisters, so this never double-frees. */
const leakRegistry = new FinalizationRegistry<WasmAllocations>((held) => {
  finalizedCount++;
  releaseAllocations(held);
});
let finalizedCount = 0;

/** How many encoders/decoders were freed by the FinalizationRegistry (i.e. never closed). */
export function opusFinalizedCount(): number {
  return finalizedCount;
}

/**
 * Cache of `Uint8Array` views by length over one region, so returning a packet of a length seen
 * before allocates nothing (VBR packet lengths repeat within a small range).
 */
class RegionViews {
  #buffer: ArrayBufferLike | undefined;
  #byLength: (Uint8Array | undefined)[] = [];

  get(memory: WebAssembly.Memory, ptr: number, length: number): Uint8Array {
    const buffer = memory.buffer;
    if (buffer !== this.#buffer) {
      this.#buffer = buffer;
      this.#byLength = [];
    }
    return (this.#byLength[length] ??= new Uint8Array(buffer, ptr, length));
  }

  clear(): void {
    this.#buffer = undefined;
    this.#byLength = [];
  }
}

export interface OpusEncoderOptions {
  /** Input sample rate. Default 48000. */
  sampleRate?: OpusSampleRate;
  /** 1 or 2. Default 1. */
  channels?: OpusChannels;
  /** Default VOIP. Fixed for the encoder's life in practice (OPUS_SET_APPLICATION only before the first frame). */
  application?: OpusApplication;
  /** Duration of `pcmIn` / `encodeFrame()`. Default 20 ms. `encode(pcm)` takes any valid size. */
  frameDurationMs?: OpusFrameDurationMs;
  /** bits/s (500–512000, libopus clamps), or 'auto' / 'max'. Default libopus auto. */
  bitrate?: number | 'auto' | 'max';
  /** Variable bitrate. Default true. */
  vbr?: boolean;
  /** Constrained VBR (no bursts above the target; what RTP wants). Default true. */
  vbrConstraint?: boolean;
  /** 0–10, CPU vs quality. libopus default 9 (1.5). */
  complexity?: number;
  /** Upper bound for the encoder's bandwidth choice. Default FULLBAND. */
  maxBandwidth?: OpusBandwidth;
  /** Force a bandwidth (or AUTO). Default AUTO. */
  bandwidth?: OpusBandwidth;
  /** AUTO / VOICE / MUSIC. Default AUTO. */
  signal?: OpusSignal;
  /** In-band FEC (LBRR): false/0 off, true/1 on, 2 = on without forcing SILK (Opus 1.5). Default off. */
  inbandFec?: boolean | 0 | 1 | 2;
  /** Expected packet loss 0–100 %; drives FEC/DRED redundancy. Default 0. */
  packetLossPercent?: number;
  /** Discontinuous transmission: one packet per 400 ms in silence. Default false. */
  dtx?: boolean;
  /** Deep REDundancy depth in 10 ms units, 0–104 (Opus 1.5, needs a DRED build). Default 0. */
  dredDuration?: number;
  /** Bit depth of the input, 8–24; lets the encoder skip noise below it. Default 24. */
  lsbDepth?: number;
  /** Make every frame independently decodable (costs quality). Default false. */
  predictionDisabled?: boolean;
  /** Disable stereo phase inversion (better downmix to mono). Default false. */
  phaseInversionDisabled?: boolean;
  /** 'auto', 1 (force mono coding) or 2. Default 'auto'. */
  forceChannels?: 'auto' | OpusChannels;
  /** OPUS_SET_EXPERT_FRAME_DURATION. Default ARG (use the frame size passed in). */
  expertFrameDuration?: OpusFrameDuration;
}

export interface OpusEncoder extends OpusEncoderSettings {}
export class OpusEncoder {
  readonly sampleRate: OpusSampleRate;
  readonly channels: OpusChannels;
  readonly #rt: OpusRuntime;
  readonly #ex: OpusWasmExports;
  readonly #held: WasmAllocations;
  readonly #h: OpusHandle;
  #pcmPtr = 0;
  /** Capacity of the PCM region in samples per channel. */
  #pcmCapacity = 0;
  #packetPtr = 0;
  #frameSize: number;
  #buffer: ArrayBufferLike | undefined;
  #pcmF32!: Float32Array;
  #pcmI16!: Int16Array;
  readonly #packets = new RegionViews();

  constructor(options: OpusEncoderOptions = {}) {
    const sampleRate = options.sampleRate ?? 48000;
    const channels = options.channels ?? 1;
    checkFormat(sampleRate, channels);
    const application = options.application ?? OpusApplication.VOIP;
    if (!Object.values(OpusApplication).includes(application)) {
      throw badArgument(`application ${application} is not VOIP (2048), AUDIO (2049) or RESTRICTED_LOWDELAY (2051)`);
    }
    this.#frameSize = frameSizeFor(sampleRate, options.frameDurationMs ?? 20);
    this.sampleRate = sampleRate;
    this.channels = channels;
    const rt = getOpusRuntime();
    this.#rt = rt;
    this.#ex = rt.exports;
    const state = this.#ex.opus_encoder_create(sampleRate, channels, application, rt.scratch);
    const err = rt.scratchInt();
    if (state === 0 || err !== 0) throw new OpusError('opus_encoder_create', err, rt.strerror(err));
    this.#h = new OpusHandle(rt, 'encoder', state);
    ctlHandles.set(this, this.#h);
    this.#held = { rt, state, destroy: 'encoder', buffers: [], dred: 0, dredDecoder: 0 };
    leakRegistry.register(this, this.#held, this);
    try {
      this.#packetPtr = rt.malloc(OPUS_MAX_PACKET_BYTES);
      this.#held.buffers.push(this.#packetPtr);
      this.#ensurePcmCapacity(this.#frameSize);
      this.#applyOptions(options);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  #applyOptions(o: OpusEncoderOptions): void {
    if (o.bitrate !== undefined) this.bitrate = o.bitrate;
    if (o.vbr !== undefined) this.vbr = o.vbr;
    if (o.vbrConstraint !== undefined) this.vbrConstraint = o.vbrConstraint;
    if (o.complexity !== undefined) this.complexity = o.complexity;
    if (o.maxBandwidth !== undefined) this.maxBandwidth = o.maxBandwidth;
    if (o.bandwidth !== undefined) this.bandwidth = o.bandwidth;
    if (o.signal !== undefined) this.signal = o.signal;
    if (o.inbandFec !== undefined) this.inbandFec = o.inbandFec;
    if (o.packetLossPercent !== undefined) this.packetLossPercent = o.packetLossPercent;
    if (o.dtx !== undefined) this.dtx = o.dtx;
    if (o.dredDuration !== undefined) this.dredDuration = o.dredDuration;
    if (o.lsbDepth !== undefined) this.lsbDepth = o.lsbDepth;
    if (o.predictionDisabled !== undefined) this.predictionDisabled = o.predictionDisabled;
    if (o.phaseInversionDisabled !== undefined) this.phaseInversionDisabled = o.phaseInversionDisabled;
    if (o.forceChannels !== undefined) this.forceChannels = o.forceChannels;
    if (o.expertFrameDuration !== undefined) this.expertFrameDuration = o.expertFrameDuration;
  }

  get closed(): boolean {
    return this.#h.closed;
  }

  /** Samples per channel that `pcmIn` holds and `encodeFrame()` encodes. */
  get frameSize(): number {
    return this.#frameSize;
  }

  /** Change the frame duration used by `pcmIn` / `encodeFrame()`. */
  set frameDurationMs(ms: OpusFrameDurationMs) {
    this.#h.live();
    const size = frameSizeFor(this.sampleRate, ms);
    this.#ensurePcmCapacity(size);
    this.#frameSize = size;
    this.#buffer = undefined;
  }

  get frameDurationMs(): number {
    return (this.#frameSize * 1000) / this.sampleRate;
  }

  /** Float input for the next `encodeFrame()`: `frameSize * channels` interleaved samples in wasm memory. */
  get pcmIn(): Float32Array {
    this.#h.live();
    if (this.#rt.memory.buffer !== this.#buffer) this.#views();
    return this.#pcmF32;
  }

  /** Int16 input for the next `encodeFrame16()` (same region as `pcmIn`, other sample format). */
  get pcmIn16(): Int16Array {
    this.#h.live();
    if (this.#rt.memory.buffer !== this.#buffer) this.#views();
    return this.#pcmI16;
  }

  /** Encode `pcmIn` (float). Returns a view on the packet, valid until the next call on this encoder. */
  encodeFrame(): Uint8Array {
    this.#h.live();
    const n = this.#ex.opus_encode_float(this.#h.ptr, this.#pcmPtr, this.#frameSize, this.#packetPtr, OPUS_MAX_PACKET_BYTES);
    if (n < 0) throw this.#h.error('opus_encode_float', n);
    return this.#packets.get(this.#rt.memory, this.#packetPtr, n);
  }

  /** Encode `pcmIn16` (int16). Returns a view on the packet, valid until the next call on this encoder. */
  encodeFrame16(): Uint8Array {
    this.#h.live();
    const n = this.#ex.opus_encode(this.#h.ptr, this.#pcmPtr, this.#frameSize, this.#packetPtr, OPUS_MAX_PACKET_BYTES);
    if (n < 0) throw this.#h.error('opus_encode', n);
    return this.#packets.get(this.#rt.memory, this.#packetPtr, n);
  }

  /**
   * Copy one frame of interleaved PCM in and encode it. Its length decides the frame size
   * (`length / channels` samples per channel, any valid Opus duration). Returns a view on the
   * packet, valid until the next call on this encoder.
   */
  encode(pcm: Float32Array | Int16Array): Uint8Array {
    this.#h.live();
    const frameSize = pcm.length / this.channels;
    const units = (frameSize * 400) / this.sampleRate;
    if (!Number.isInteger(frameSize) || !Number.isInteger(units) || !ENCODER_FRAME_UNITS[units]) {
      throw badArgument(
        `${pcm.length} samples is not a valid Opus frame at ${this.sampleRate} Hz × ${this.channels} ch ` +
          `(need 2.5/5/10/20/40/60/80/100/120 ms)`,
      );
    }
    if (frameSize > this.#pcmCapacity) {
      // Growing the region may grow wasm memory, which would detach `pcm` if it is itself a
      // view on wasm memory (e.g. a decoder's output being transcoded): copy it out first.
      if (pcm.buffer === this.#rt.memory.buffer) pcm = pcm.slice();
      this.#ensurePcmCapacity(frameSize);
    }
    const offset = this.#pcmPtr;
    // The cached views cover exactly frameSize; other sizes get a one-off view.
    const usual = frameSize === this.#frameSize;
    if (usual && this.#rt.memory.buffer !== this.#buffer) this.#views();
    let n: number;
    if (pcm instanceof Float32Array) {
      (usual ? this.#pcmF32 : new Float32Array(this.#rt.memory.buffer, offset, pcm.length)).set(pcm);
      n = this.#ex.opus_encode_float(this.#h.ptr, offset, frameSize, this.#packetPtr, OPUS_MAX_PACKET_BYTES);
    } else {
      (usual ? this.#pcmI16 : new Int16Array(this.#rt.memory.buffer, offset, pcm.length)).set(pcm);
      n = this.#ex.opus_encode(this.#h.ptr, offset, frameSize, this.#packetPtr, OPUS_MAX_PACKET_BYTES);
    }
    if (n < 0) throw this.#h.error('opus_encode', n);
    return this.#packets.get(this.#rt.memory, this.#packetPtr, n);
  }

  /** OPUS_RESET_STATE: start a fresh stream (keeps the settings). */
  reset(): void {
    this.#h.live();
    const err = this.#ex.vx_encoder_reset(this.#h.ptr);
    if (err < 0) throw this.#h.error('OPUS_RESET_STATE', err);
  }

  /** Free the wasm state and buffers. Idempotent; later calls on this object throw CODEC_CLOSED. */
  close(): void {
    if (this.#h.closed) return;
    this.#h.close();
    leakRegistry.unregister(this);
    releaseAllocations(this.#held);
    this.#buffer = undefined;
    this.#packets.clear();
  }

  // ---- settings: OPUS_SET_* / OPUS_GET_* accessors installed from ENCODER_SETTINGS (opus-ctl.ts) ----

  // ---- internals ----

  #ensurePcmCapacity(samplesPerChannel: number): void {
    if (samplesPerChannel <= this.#pcmCapacity) return;
    const ptr = this.#rt.malloc(samplesPerChannel * this.channels * 4);
    if (this.#pcmPtr !== 0) {
      this.#rt.free(this.#pcmPtr);
      this.#held.buffers.splice(this.#held.buffers.indexOf(this.#pcmPtr), 1);
    }
    this.#pcmPtr = ptr;
    this.#held.buffers.push(ptr);
    this.#pcmCapacity = samplesPerChannel;
    this.#buffer = undefined;
  }

  #views(): void {
    const buffer = this.#rt.memory.buffer;
    this.#buffer = buffer;
    this.#pcmF32 = new Float32Array(buffer, this.#pcmPtr, this.#frameSize * this.channels);
    this.#pcmI16 = new Int16Array(buffer, this.#pcmPtr, this.#frameSize * this.channels);
  }
}
installCtlAccessors(OpusEncoder.prototype, ENCODER_SETTINGS);

export interface OpusDecoderOptions {
  /** Output sample rate (any packet decodes at any rate). Default 48000. */
  sampleRate?: OpusSampleRate;
  /** Output channels 1 or 2 (mono packets are upmixed, stereo downmixed). Default 1. */
  channels?: OpusChannels;
  /** Output gain in Q8 dB (256 = +1 dB), -32768..32767 (OPUS_SET_GAIN). Default 0. */
  gain?: number;
  /**
   * Decoder complexity 0–10 (Opus 1.5): ≥ 5 enables deep PLC (neural concealment for SILK at
   * 16 kHz), ≥ 6/7 the LACE/NoLACE speech enhancers where the build includes them. Default 0.
   */
  complexity?: number;
  /** Frame duration assumed for PLC before the first packet. Default 20 ms. */
  frameDurationMs?: OpusFrameDurationMs;
  /** Disable stereo phase inversion. Default false. */
  phaseInversionDisabled?: boolean;
}

/** Opus packets are at most 120 ms (RFC 6716 section 3.2.5). */
const MAX_DECODE_MS = 120;

export interface OpusDecoder extends OpusDecoderSettings {}
export class OpusDecoder {
  readonly sampleRate: OpusSampleRate;
  readonly channels: OpusChannels;
  readonly #rt: OpusRuntime;
  readonly #ex: OpusWasmExports;
  readonly #held: WasmAllocations;
  readonly #maxFrame: number;
  readonly #h: OpusHandle;
  #packetPtr = 0;
  #packetCapacity = 0;
  #pcmPtr = 0;
  #defaultFrame: number;
  #buffer: ArrayBufferLike | undefined;
  #packetView!: Uint8Array;
  #f32!: Float32Array;
  #i16!: Int16Array;
  /** Cached output views by sample count (normally one: the stream's frame size). */
  #outF32: (Float32Array | undefined)[] = [];
  #outI16: (Int16Array | undefined)[] = [];

  constructor(options: OpusDecoderOptions = {}) {
    const sampleRate = options.sampleRate ?? 48000;
    const channels = options.channels ?? 1;
    checkFormat(sampleRate, channels);
    this.#defaultFrame = frameSizeFor(sampleRate, options.frameDurationMs ?? 20);
    this.sampleRate = sampleRate;
    this.channels = channels;
    this.#maxFrame = (sampleRate * MAX_DECODE_MS) / 1000;
    const rt = getOpusRuntime();
    this.#rt = rt;
    this.#ex = rt.exports;
    const state = this.#ex.opus_decoder_create(sampleRate, channels, rt.scratch);
    const err = rt.scratchInt();
    if (state === 0 || err !== 0) throw new OpusError('opus_decoder_create', err, rt.strerror(err));
    this.#h = new OpusHandle(rt, 'decoder', state);
    ctlHandles.set(this, this.#h);
    this.#held = { rt, state, destroy: 'decoder', buffers: [], dred: 0, dredDecoder: 0 };
    leakRegistry.register(this, this.#held, this);
    try {
      this.#pcmPtr = rt.malloc(this.#maxFrame * channels * 4);
      this.#held.buffers.push(this.#pcmPtr);
      this.#ensurePacketCapacity(OPUS_MAX_PACKET_BYTES);
      if (options.gain !== undefined) this.gain = options.gain;
      if (options.complexity !== undefined) this.complexity = options.complexity;
      if (options.phaseInversionDisabled !== undefined) this.phaseInversionDisabled = options.phaseInversionDisabled;
    } catch (error) {
      this.close();
      throw error;
    }
  }

  get closed(): boolean {
    return this.#h.closed;
  }

  /** True when this build can recover loss from DRED (Opus 1.5 `--enable-dred`). */
  get dredAvailable(): boolean {
    return this.#rt.hasDred;
  }

  /**
   * Input region for `decodeFrame(length)`: write a packet's bytes here to skip one copy. Its length
   * is the capacity (4000 bytes); view re-created after memory growth, so re-read it per packet.
   */
  get packetIn(): Uint8Array {
    this.#h.live();
    if (this.#rt.memory.buffer !== this.#buffer) this.#views();
    return this.#packetView;
  }

  /**
   * Decode `packet` (copied into wasm memory), or conceal a lost one (`null` = PLC, for the
   * duration of the last packet). Returns interleaved float PCM as a view on wasm memory, valid
   * until the next call on this decoder.
   */
  decode(packet: Uint8Array | null): Float32Array {
    this.#h.live();
    if (packet === null) return this.decodePlc();
    const len = this.#copyPacket(packet);
    return this.#decodeFloat(len, this.#maxFrame, 0, 'opus_decode_float');
  }

  /** Like `decode` with int16 output. */
  decode16(packet: Uint8Array | null): Int16Array {
    this.#h.live();
    if (packet === null) return this.#decodeInt16(0, this.#plcFrameSize(undefined), 0, 'opus_decode (PLC)');
    const len = this.#copyPacket(packet);
    return this.#decodeInt16(len, this.#maxFrame, 0, 'opus_decode');
  }

  /** Decode the `length` bytes already written to `packetIn` (0 = lost packet, PLC). */
  decodeFrame(length: number): Float32Array {
    this.#h.live();
    if (!Number.isInteger(length) || length < 0 || length > this.#packetCapacity) {
      throw badArgument(`packet length ${length} is outside 0..${this.#packetCapacity}`);
    }
    if (length === 0) return this.decodePlc();
    return this.#decodeFloat(length, this.#maxFrame, 0, 'opus_decode_float');
  }

  /**
   * Packet loss concealment for `frameSize` samples per channel (default: the last packet's
   * duration). Deep PLC at decoder complexity ≥ 5 (Opus 1.5).
   */
  decodePlc(frameSize?: number): Float32Array {
    this.#h.live();
    return this.#decodeFloat(0, this.#plcFrameSize(frameSize), 0, 'opus_decode_float (PLC)');
  }

  /**
   * Rebuild the LOST frame that preceded `nextPacket` from the in-band FEC (LBRR) that
   * `nextPacket` carries (opus_decode with decode_fec=1). Then decode `nextPacket` itself
   * normally. `frameSize` is the lost duration (default: the last packet's duration). If the
   * packet has no FEC, libopus falls back to PLC.
   */
  decodeFec(nextPacket: Uint8Array, frameSize?: number): Float32Array {
    this.#h.live();
    const size = this.#plcFrameSize(frameSize);
    const len = this.#copyPacket(nextPacket);
    return this.#decodeFloat(len, size, 1, 'opus_decode_float (FEC)');
  }

  /**
   * Decode into a caller-owned array (one copy out of wasm memory). `packet === null` = PLC.
   * Returns samples per channel written.
   */
  decodeInto(packet: Uint8Array | null, out: Float32Array | Int16Array, options: { fec?: boolean } = {}): number {
    this.#h.live();
    const fec = options.fec === true;
    const len = packet === null ? 0 : this.#copyPacket(packet);
    const size = packet === null || fec ? this.#plcFrameSize(undefined) : this.#maxFrame;
    const pcm =
      out instanceof Float32Array
        ? this.#decodeFloat(len, size, fec ? 1 : 0, 'opus_decode_float')
        : this.#decodeInt16(len, size, fec ? 1 : 0, 'opus_decode');
    if (out.length < pcm.length) {
      throw badArgument(`output holds ${out.length} samples, the frame has ${pcm.length}`);
    }
    out.set(pcm);
    return pcm.length / this.channels;
  }

  /**
   * Parse the DRED (Deep REDundancy, Opus 1.5) carried by `packet` — normally the first packet
   * received after a loss — into this decoder's DRED state, for `decodeDred()`. Returns how many
   * samples per channel (at this decoder's rate) before the start of `packet` the redundancy
   * reaches: 0 if the packet has none. Throws OpusError -5 on builds without DRED.
   */
  parseDred(packet: Uint8Array, maxDredSamples = this.#maxFrame * 8): number {
    this.#h.live();
    if (!this.#rt.hasDred) throw new OpusError('opus_dred_parse', -5, this.#rt.strerror(-5));
    if (this.#held.dred === 0) {
      // The first call allocates the DRED state, which may grow wasm memory and detach `packet`
      // if it is a view on wasm memory (an encoder's output): keep a copy across the allocation.
      const copy = packet.slice();
      this.#ensureDred();
      packet = copy;
    }
    const len = this.#copyPacket(packet);
    const ret = this.#ex.opus_dred_parse(
      this.#held.dredDecoder,
      this.#held.dred,
      this.#packetPtr,
      len,
      checkInt('maxDredSamples', maxDredSamples),
      this.sampleRate,
      this.#rt.scratch,
      0,
    );
    if (ret < 0) throw this.#h.error('opus_dred_parse', ret);
    return ret;
  }

  /**
   * Decode `frameSize` samples per channel of lost audio from the DRED parsed by `parseDred()`.
   * `offset` = samples per channel between the start of the lost frame and the start of the packet
   * that carried the DRED (e.g. one lost 20 ms frame right before it at 48 kHz: offset 960; the
   * frame before that: 1920). Decode lost frames oldest first.
   */
  decodeDred(offset: number, frameSize?: number): Float32Array {
    this.#h.live();
    if (this.#held.dred === 0) throw badArgument('decodeDred() needs parseDred() first');
    const size = this.#plcFrameSize(frameSize);
    const n = this.#ex.opus_decoder_dred_decode_float(this.#h.ptr, this.#held.dred, checkInt('offset', offset), this.#pcmPtr, size);
    if (n < 0) throw this.#h.error('opus_decoder_dred_decode_float', n);
    return this.#outFloat(n);
  }

  /** OPUS_RESET_STATE: forget the stream (e.g. on an SSRC change). */
  reset(): void {
    this.#h.live();
    const err = this.#ex.vx_decoder_reset(this.#h.ptr);
    if (err < 0) throw this.#h.error('OPUS_RESET_STATE', err);
  }

  /** Samples per channel `packet` decodes to at this decoder's rate (opus_decoder_get_nb_samples). */
  packetSamples(packet: Uint8Array): number {
    this.#h.live();
    const len = this.#copyPacket(packet);
    const n = this.#ex.opus_decoder_get_nb_samples(this.#h.ptr, this.#packetPtr, len);
    if (n < 0) throw this.#h.error('opus_decoder_get_nb_samples', n);
    return n;
  }

  /**
   * Whether `packet` carries in-band FEC (SILK LBRR) for the frame before it (opus_packet_has_lbrr),
   * i.e. whether `decodeFec(packet)` can rebuild a lost frame rather than conceal it. CELT-only
   * packets and packets from encoders without in-band FEC have none. Throws OpusError for an
   * invalid packet.
   */
  hasFec(packet: Uint8Array): boolean {
    this.#h.live();
    const fn = this.#ex.opus_packet_has_lbrr;
    if (fn === undefined) return true; // an older build: let decodeFec find out
    // A TOC byte alone (DTX) has no frame data; libopus would read the LBRR flag past its end.
    if (packet.length <= 1) return false;
    const len = this.#copyPacket(packet);
    const n = fn(this.#packetPtr, len);
    if (n < 0) throw this.#h.error('opus_packet_has_lbrr', n);
    return n > 0;
  }

  /** Free the wasm state and buffers. Idempotent; later calls throw CODEC_CLOSED. */
  close(): void {
    if (this.#h.closed) return;
    this.#h.close();
    leakRegistry.unregister(this);
    releaseAllocations(this.#held);
    this.#buffer = undefined;
    this.#outF32 = [];
    this.#outI16 = [];
  }

  // ---- settings: accessors installed from DECODER_SETTINGS (opus-ctl.ts) ----

  // ---- internals ----

  #plcFrameSize(frameSize: number | undefined): number {
    if (frameSize === undefined) {
      const last = this.#h.get(OpusCtl.GET_LAST_PACKET_DURATION);
      return last > 0 ? last : this.#defaultFrame;
    }
    const units = (frameSize * 400) / this.sampleRate;
    if (!Number.isInteger(frameSize) || !Number.isInteger(units) || units < 1 || units > 48) {
      throw badArgument(`frame size ${frameSize} is not a multiple of 2.5 ms up to 120 ms at ${this.sampleRate} Hz`);
    }
    return frameSize;
  }

  #copyPacket(packet: Uint8Array): number {
    const len = packet.length;
    if (len === 0) throw badArgument('empty packet (pass null to conceal a lost packet)');
    if (len > this.#packetCapacity) {
      if (packet.buffer === this.#rt.memory.buffer) packet = packet.slice(); // survives growth
      this.#ensurePacketCapacity(len);
    }
    if (this.#rt.memory.buffer !== this.#buffer) this.#views();
    this.#packetView.set(packet);
    return len;
  }

  #decodeFloat(len: number, frameSize: number, fec: number, operation: string): Float32Array {
    const n = this.#ex.opus_decode_float(this.#h.ptr, len === 0 ? 0 : this.#packetPtr, len, this.#pcmPtr, frameSize, fec);
    if (n < 0) throw this.#h.error(operation, n);
    return this.#outFloat(n);
  }

  #decodeInt16(len: number, frameSize: number, fec: number, operation: string): Int16Array {
    const n = this.#ex.opus_decode(this.#h.ptr, len === 0 ? 0 : this.#packetPtr, len, this.#pcmPtr, frameSize, fec);
    if (n < 0) throw this.#h.error(operation, n);
    if (this.#rt.memory.buffer !== this.#buffer) this.#views();
    return (this.#outI16[n] ??= this.#i16.subarray(0, n * this.channels));
  }

  #outFloat(samplesPerChannel: number): Float32Array {
    if (this.#rt.memory.buffer !== this.#buffer) this.#views();
    return (this.#outF32[samplesPerChannel] ??= this.#f32.subarray(0, samplesPerChannel * this.channels));
  }

  #ensurePacketCapacity(bytes: number): void {
    const ptr = this.#rt.malloc(bytes);
    if (this.#packetPtr !== 0) {
      this.#rt.free(this.#packetPtr);
      this.#held.buffers.splice(this.#held.buffers.indexOf(this.#packetPtr), 1);
    }
    this.#packetPtr = ptr;
    this.#packetCapacity = bytes;
    this.#held.buffers.push(ptr);
    this.#buffer = undefined;
  }

  #ensureDred(): void {
    if (this.#held.dred !== 0) return;
    const rt = this.#rt;
    const dredDecoder = this.#ex.opus_dred_decoder_create(rt.scratch);
    let err = rt.scratchInt();
    if (dredDecoder === 0 || err !== 0) throw this.#h.error('opus_dred_decoder_create', err || -7);
    const dred = this.#ex.opus_dred_alloc(rt.scratch);
    err = rt.scratchInt();
    if (dred === 0 || err !== 0) {
      this.#ex.opus_dred_decoder_destroy(dredDecoder);
      throw this.#h.error('opus_dred_alloc', err || -7);
    }
    this.#held.dredDecoder = dredDecoder;
    this.#held.dred = dred;
  }

  #views(): void {
    const buffer = this.#rt.memory.buffer;
    this.#buffer = buffer;
    this.#packetView = new Uint8Array(buffer, this.#packetPtr, this.#packetCapacity);
    this.#f32 = new Float32Array(buffer, this.#pcmPtr, this.#maxFrame * this.channels);
    this.#i16 = new Int16Array(buffer, this.#pcmPtr, this.#maxFrame * this.channels);
    this.#outF32 = [];
    this.#outI16 = [];
  }
}
installCtlAccessors(OpusDecoder.prototype, DECODER_SETTINGS);

/** TOC-level facts about a packet (RFC 6716 section 3.1), read by libopus without decoding. */
export interface OpusPacketInfo {
  /** Samples per channel at `sampleRate`. */
  samples: number;
  frames: number;
  channels: OpusChannels;
  bandwidth: OpusBandwidth;
}

/** Inspect a packet's TOC (opus_packet_get_*). Throws OpusError -4 for an invalid packet. */
export function getOpusPacketInfo(packet: Uint8Array, sampleRate: OpusSampleRate = 48000): OpusPacketInfo {
  if (packet.length === 0) throw badArgument('empty packet');
  checkFormat(sampleRate, 1);
  const rt = getOpusRuntime();
  const ptr = rt.malloc(packet.length);
  try {
    rt.u8.set(packet, ptr);
    const ex = rt.exports;
    const samples = ex.opus_packet_get_nb_samples(ptr, packet.length, sampleRate);
    if (samples < 0) throw new OpusError('opus_packet_get_nb_samples', samples, rt.strerror(samples));
    const frames = ex.opus_packet_get_nb_frames(ptr, packet.length);
    if (frames < 0) throw new OpusError('opus_packet_get_nb_frames', frames, rt.strerror(frames));
    return {
      samples,
      frames,
      channels: ex.opus_packet_get_nb_channels(ptr) as OpusChannels,
      bandwidth: ex.opus_packet_get_bandwidth(ptr) as OpusBandwidth,
    };
  } finally {
    rt.free(ptr);
  }
}

/** libopus version string of the loaded wasm, e.g. "libopus 1.5.2". */
export function opusVersion(): string {
  return getOpusRuntime().version;
}

export interface OpusWarmUp {
  /** Frames encoded and decoded. */
  frames: number;
  /** Wall-clock ms the warm-up took. */
  ms: number;
}

let warmUp: OpusWarmUp | undefined;

/**
 * Encode and decode `frames` frames of noise (default 600) through the three shapes a voice server
 * runs — 48 kHz mono VOIP complexity 10 with FEC (SILK/hybrid), 48 kHz stereo AUDIO (CELT) and
 * 16 kHz VOIP (SILK wideband) — once per thread, so V8 tiers the hot wasm functions up from its
 * baseline compiler before real traffic. Measured (Node 20, loaded 2-core host): without it the
 * first ~50 frames of a complexity-10 encoder cost ~10× steady state and the next ~100 ~2–6×; the
 * warm-up costs ~0.5 s of CPU, once. Call at server/worker startup; later calls return the first result.
 */
export function warmUpOpus(options: { frames?: number } = {}): OpusWarmUp {
  if (warmUp) return warmUp;
  const frames = options.frames ?? 600;
  const started = performance.now();
  const configs: [OpusEncoderOptions, OpusDecoderOptions][] = [
    [
      { sampleRate: 48000, channels: 1, application: OpusApplication.VOIP, bitrate: 32000, complexity: 10, inbandFec: true, packetLossPercent: 10 },
      { sampleRate: 48000, channels: 1 },
    ],
    [{ sampleRate: 48000, channels: 2, application: OpusApplication.AUDIO, bitrate: 64000 }, { sampleRate: 48000, channels: 2 }],
    [{ sampleRate: 16000, channels: 1, application: OpusApplication.VOIP, bitrate: 16000 }, { sampleRate: 16000, channels: 1 }],
  ];
  let seed = 12345;
  let done = 0;
  for (let c = 0; c < configs.length; c++) {
    const encoder = new OpusEncoder(configs[c][0]);
    const decoder = new OpusDecoder(configs[c][1]);
    const share = Math.round((frames * (c + 1)) / configs.length) - done;
    try {
      for (let i = 0; i < share; i++) {
        const pcm = encoder.pcmIn;
        for (let j = 0; j < pcm.length; j++) {
          seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
          // Noise under a slow envelope, so VAD, pitch and transient paths all run.
          pcm[j] = (seed / 0x100000000 - 0.5) * (0.05 + 0.4 * Math.abs(Math.sin(i / 7)));
        }
        decoder.decode(encoder.encodeFrame());
      }
    } finally {
      encoder.close();
      decoder.close();
    }
    done += share;
  }
  warmUp = { frames: done, ms: performance.now() - started };
  return warmUp;
}
