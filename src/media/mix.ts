import { VoxError } from '../errors.ts';
import type { FrameDecoder, FrameEncoder } from '../codec/frame-codec.ts';
import { JitterBuffer, type JitterBufferOptions, type JitterBufferStats } from '../codec/jitter-buffer.ts';
import { SoftLimiter, type SoftLimiterOptions } from '../codec/limiter.ts';
import { framePower, wasmMixKernels, type MixKernels } from '../codec/mixer.ts';
import { rtpClockRate, type MixCodecs, type MixInputCodec, type MixOutputFormat } from './mix-codecs.ts';

/**
 * RoomMixer: the audio of one `mix`/`hybrid` room as a pure processor. The room pushes every RTP
 * audio payload it receives; a drift-free 20 ms clock (MixClock) calls `tick()`, which returns the
 * packets to send, one per listener.
 *
 * Per tick: every input's jitter buffer yields exactly one 48 kHz frame (decoded, FEC/DRED-recovered
 * or concealed); inputs above the voice threshold (plus a hangover) are the active speakers; their
 * frames are summed once in float (`total`). Each active speaker hears `total − own` (N−1) through
 * their own encoder; every other listener hears `total` through ONE shared encoder per output format.
 * So a room costs O(speakers) encodes, not O(participants). Listeners whose loss calls for DRED
 * (`setDred`, from their DredPolicy) hear the same stream through its DRED variant
 * (profiles.ts `dredVariant`: DRED on, in-band FEC off): one more encode per stream and format,
 * shared by all of them, never one per listener (docs/audio.md "DRED"). Every stream passes a soft limiter
 * (src/codec/limiter.ts) before encoding: never wrap-around, never hard clipping.
 *
 * Hybrid rooms pass the speakers they forward as slots in `excluded`: those are left out of the
 * mix (everyone hears them through their slot) and hear the shared mix of everyone else themselves.
 *
 * RTP: each listener has its own sequence number and timestamp (48 kHz clock, +960 per 20 ms for
 * Opus; 8 kHz, +160 for G.711), continuous across switches between the shared and an N−1 stream;
 * only the payload bytes are shared. Payload views are valid until the next `tick()`.
 */

const FRAME_MS = 20;
const BUS_RATE = 48_000;
const FRAME = (BUS_RATE * FRAME_MS) / 1000;

export interface RoomMixerOptions {
  codecs: MixCodecs;
  /** Jitter buffer settings for every input (see JitterBufferOptions for defaults). */
  jitter?: JitterBufferOptions;
  /** Limiter settings for every output stream (see SoftLimiterOptions). */
  limiter?: SoftLimiterOptions;
  /** Frame power above which an input is an active speaker, in dBFS (default −50). */
  voiceThresholdDbfs?: number;
  /** How long an input stays active after its last loud frame (default 400 ms). */
  hangoverMs?: number;
  /** Mix kernels (default: opus.wasm's SIMD `vx_mix_*`, measured faster; `tsMixKernels` for plain loops). */
  kernels?: MixKernels;
}

export interface MixInputOptions {
  /** What the participant sends (default `opus`). */
  codec?: MixInputCodec;
  /** What the participant receives (default `normal` Opus profile). */
  format?: MixOutputFormat;
  /** False for a publish-only participant (default true). */
  receive?: boolean;
}

/** One packet for one listener. `payload` is shared between listeners of the same stream. */
export interface MixPacket {
  readonly listenerId: string;
  payload: Uint8Array;
  sequenceNumber: number;
  timestamp: number;
  format: MixOutputFormat;
  /** Id of the speaker whose N−1 mix this is, or null for the shared mix. */
  source: string | null;
}

export interface RoomMixerStats {
  inputs: number;
  ticks: number;
  speakers: number;
  encodes: number;
  encodesLastTick: number;
  decodeMs: number;
  mixMs: number;
  encodeMs: number;
  lastTick: { decodeMs: number; mixMs: number; encodeMs: number };
  concealed: number;
  fecRecovered: number;
  dredRecovered: number;
  lost: number;
  late: number;
  decodeErrors: number;
  limitedFrames: number;
  /** Listeners that got the DRED variant in the last tick. */
  dredListeners: number;
  /** DRED-variant encodes so far (each shared by every DRED listener of its stream and format). */
  dredEncodes: number;
  /** Packets handed to listeners from a DRED-variant encode. */
  dredPackets: number;
  /** Time spent in DRED-variant encodes, ms (part of `encodeMs`). */
  dredEncodeMs: number;
}

class EncodeSlot {
  payload: Uint8Array = new Uint8Array(0);
  tick = -1;
  constructor(readonly encoder: FrameEncoder) {}
}

/** One mixed output (the shared mix, or one speaker's N−1) and its encodes, one per format. */
class MixStream {
  readonly pcm = new Float32Array(FRAME);
  readonly limiter: SoftLimiter;
  readonly slots = new Map<MixOutputFormat, EncodeSlot>();
  /** The DRED variants' encodes (Opus formats only), made while some listener of this stream wants DRED. */
  readonly dredSlots = new Map<MixOutputFormat, EncodeSlot>();
  constructor(limiter: SoftLimiterOptions | undefined) {
    this.limiter = new SoftLimiter(limiter);
  }
}

/** One output's RTP numbering: its own sequence number and timestamp, continuous across stream switches. */
class OutputStream {
  readonly packet: MixPacket;
  format: MixOutputFormat;
  #tsStep: number;

  constructor(listenerId: string, format: MixOutputFormat) {
    this.format = format;
    // RFC 3550 §5.1: random initial sequence number and timestamp.
    this.packet = {
      listenerId,
      payload: new Uint8Array(0),
      sequenceNumber: Math.floor(Math.random() * 0x1_0000),
      timestamp: Math.floor(Math.random() * 0x1_0000_0000),
      format,
      source: null,
    };
    this.#tsStep = (rtpClockRate(format) * FRAME_MS) / 1000;
  }

  setFormat(format: MixOutputFormat): void {
    this.format = format;
    this.packet.format = format;
    this.#tsStep = (rtpClockRate(format) * FRAME_MS) / 1000;
  }

  /** Ticks that produced no packet (a stalled clock): the timestamp moves on, the sequence number does not. */
  skip(ticks: number): void {
    this.packet.timestamp = (this.packet.timestamp + ticks * this.#tsStep) >>> 0;
  }

  advance(payload: Uint8Array, source: string | null): void {
    const p = this.packet;
    p.payload = payload;
    p.source = source;
    p.sequenceNumber = (p.sequenceNumber + 1) & 0xffff;
    p.timestamp = (p.timestamp + this.#tsStep) >>> 0;
  }
}

class Participant extends OutputStream {
  readonly pcm = new Float32Array(FRAME);
  hangover = 0;
  inMix = false;
  /** This listener gets the DRED variant of its stream (an Opus format only). */
  dred = false;
  stream: MixStream | undefined;

  constructor(
    readonly id: string,
    readonly codec: MixInputCodec,
    readonly decoder: FrameDecoder,
    readonly jitter: JitterBuffer,
    format: MixOutputFormat,
    readonly receive: boolean,
  ) {
    super(id, format);
  }
}

/** The listener id of the room output's packets (not a participant: nobody by that id is in the mixer). */
export const ROOM_OUTPUT_ID = '';

export class RoomMixer {
  readonly #codecs: MixCodecs;
  readonly #jitterOptions: JitterBufferOptions | undefined;
  readonly #limiterOptions: SoftLimiterOptions | undefined;
  readonly #voicePower: number;
  readonly #hangoverTicks: number;
  readonly #kernels: MixKernels;
  readonly #participants = new Map<string, Participant>();
  readonly #list: Participant[] = [];
  readonly #total = new Float32Array(FRAME);
  readonly #shared: MixStream;
  readonly #streamPool: MixStream[] = [];
  readonly #encoderPool = new Map<MixOutputFormat, FrameEncoder[]>();
  readonly #dredEncoderPool = new Map<MixOutputFormat, FrameEncoder[]>();
  readonly #out: MixPacket[] = [];
  /** The room's own mix (`openRoomOutput`), or null. */
  #roomOutput: OutputStream | null = null;
  #tick = 0;
  #closed = false;
  #stats = {
    encodes: 0,
    encodesLastTick: 0,
    speakers: 0,
    decodeMs: 0,
    mixMs: 0,
    encodeMs: 0,
    lastDecodeMs: 0,
    lastMixMs: 0,
    lastEncodeMs: 0,
    dredListeners: 0,
    dredEncodes: 0,
    dredPackets: 0,
    dredEncodeMs: 0,
  };
  /** Loss counters of inputs already removed, so room totals never go backwards. */
  #removed = { concealed: 0, fecRecovered: 0, dredRecovered: 0, lost: 0, late: 0, decodeErrors: 0 };

  constructor(options: RoomMixerOptions) {
    this.#codecs = options.codecs;
    this.#jitterOptions = options.jitter;
    this.#limiterOptions = options.limiter;
    this.#voicePower = 10 ** ((options.voiceThresholdDbfs ?? -50) / 10);
    this.#hangoverTicks = Math.max(1, Math.round((options.hangoverMs ?? 400) / FRAME_MS));
    this.#shared = new MixStream(this.#limiterOptions);
    this.#kernels = options.kernels ?? wasmMixKernels();
  }

  /** Adds a participant: a voice to mix and (unless `receive: false`) a listener. */
  addInput(id: string, options: MixInputOptions = {}): void {
    this.#live();
    if (this.#participants.has(id)) throw new VoxError('INVALID_ARGUMENT', `mixer input ${id} already exists`);
    const codec = options.codec ?? 'opus';
    const decoder = this.#codecs.createDecoder(codec);
    const clockRate = rtpClockRate(codec);
    const jitter = new JitterBuffer(decoder, { ...this.#jitterOptions, clockRate, frameTicks: (clockRate * FRAME_MS) / 1000 });
    const p = new Participant(id, codec, decoder, jitter, options.format ?? 'normal', options.receive ?? true);
    this.#participants.set(id, p);
    this.#list.push(p);
  }

  removeInput(id: string): void {
    const p = this.#participants.get(id);
    if (!p) return;
    this.#participants.delete(id);
    this.#list.splice(this.#list.indexOf(p), 1);
    const s = p.jitter.toJSON();
    this.#removed.concealed += s.concealed;
    this.#removed.fecRecovered += s.fecRecovered;
    this.#removed.dredRecovered += s.dredRecovered;
    this.#removed.lost += s.lost;
    this.#removed.late += s.late;
    this.#removed.decodeErrors += s.decodeErrors;
    if (p.stream) this.#releaseStream(p.stream);
    this.#codecs.release?.(p.decoder);
  }

  /**
   * Opens the room's own output: the mix of everyone in it, as a listener who publishes nothing
   * would hear it (so it is the shared stream's encode and costs nothing extra when anyone else
   * hears the shared mix). Its packet, with its own sequence numbers and timestamps, is
   * `roomPacket` after each tick. Idempotent. The recorder records a `mix` room through it.
   */
  openRoomOutput(format: MixOutputFormat = 'normal'): void {
    this.#live();
    this.#roomOutput ??= new OutputStream(ROOM_OUTPUT_ID, format);
  }

  closeRoomOutput(): void {
    this.#roomOutput = null;
  }

  /** The room output's packet of the last tick (null while closed). Reused by the next tick. */
  get roomPacket(): MixPacket | null {
    return this.#roomOutput?.packet ?? null;
  }

  /** Changes what a listener receives (e.g. the ProfilePicker stepped down to `low`). */
  setFormat(id: string, format: MixOutputFormat): void {
    const p = this.#participants.get(id);
    if (!p) throw new VoxError('INVALID_ARGUMENT', `no mixer input ${id}`);
    p.setFormat(format);
  }

  /**
   * Whether listener `id` gets the DRED variant of its stream from the next tick on (its
   * DredPolicy, and only if it can decode DRED). Ignored for G.711 listeners and unknown ids.
   */
  setDred(id: string, on: boolean): void {
    const p = this.#participants.get(id);
    if (p !== undefined) p.dred = on;
  }

  /**
   * One received RTP audio payload of participant `id`; `audioLevel` is the RFC 6464 header
   * extension's level (0–127 −dBov) when the sender includes it (lets silent inputs skip decoding).
   * Unknown ids are ignored (left the room).
   */
  push(id: string, payload: Uint8Array, sequenceNumber: number, timestamp: number, arrivalMs: number, audioLevel = -1): void {
    const p = this.#participants.get(id);
    if (p) p.jitter.push(payload, sequenceNumber, timestamp, arrivalMs, audioLevel);
  }

  /**
   * `ticks` frames were not mixed (the clock skipped them after a stall): every listener's RTP
   * timestamp advances across them, so receivers see a pause of the right length rather than
   * packets that arrive late (RFC 3550 §5.1: the timestamp follows the sampling clock; the
   * sequence number counts packets sent and does not move).
   */
  skip(ticks: number): void {
    if (!Number.isInteger(ticks) || ticks <= 0) return;
    for (const p of this.#participants.values()) p.skip(ticks);
    this.#roomOutput?.skip(ticks);
  }

  /**
   * Mixes one 20 ms frame. `excluded`: ids forwarded as slots this tick (hybrid rooms), kept out of
   * every mix. Returns one packet per listener; the array and packets are reused by the next tick.
   */
  tick(excluded?: ReadonlySet<string>): readonly MixPacket[] {
    this.#live();
    const tickNo = this.#tick++;
    const list = this.#list;
    const t0 = performance.now();

    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      p.jitter.pull(p.pcm);
      if (framePower(p.pcm, FRAME) > this.#voicePower) p.hangover = this.#hangoverTicks;
      else if (p.hangover > 0) p.hangover--;
    }
    const t1 = performance.now();

    const total = this.#total;
    total.fill(0);
    let speakers = 0;
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      p.inMix = p.hangover > 0 && !(excluded !== undefined && excluded.has(p.id));
      if (p.inMix) {
        this.#kernels.add(total, p.pcm, FRAME);
        speakers++;
      }
    }
    const shared = this.#shared;
    shared.pcm.set(total);
    shared.limiter.process(shared.pcm, FRAME);
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (p.inMix && p.receive) {
        const stream = (p.stream ??= this.#acquireStream());
        this.#kernels.sub(stream.pcm, total, p.pcm, FRAME);
        stream.limiter.process(stream.pcm, FRAME);
      } else if (p.stream) {
        this.#releaseStream(p.stream);
        p.stream = undefined;
      }
    }
    const t2 = performance.now();

    const out = this.#out;
    out.length = 0;
    let encodes = 0;
    let dredListeners = 0;
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (!p.receive) continue;
      const stream = p.stream ?? shared;
      const dred = p.dred && p.format !== 'pcmu' && p.format !== 'pcma';
      const slot = this.#encodeSlot(stream, p.format, dred);
      if (slot.tick !== tickNo) {
        if (dred) {
          const d0 = performance.now();
          slot.payload = slot.encoder.encode(stream.pcm);
          this.#stats.dredEncodeMs += performance.now() - d0;
          this.#stats.dredEncodes++;
        } else {
          slot.payload = slot.encoder.encode(stream.pcm);
        }
        slot.tick = tickNo;
        encodes++;
      }
      if (dred) dredListeners++;
      p.advance(slot.payload, p.stream ? p.id : null);
      out.push(p.packet);
    }
    this.#stats.dredListeners = dredListeners;
    this.#stats.dredPackets += dredListeners;
    const room = this.#roomOutput;
    if (room !== null) {
      const slot = this.#encodeSlot(shared, room.format, false);
      if (slot.tick !== tickNo) {
        slot.payload = slot.encoder.encode(shared.pcm);
        slot.tick = tickNo;
        encodes++;
      }
      room.advance(slot.payload, null);
    }
    const t3 = performance.now();

    const st = this.#stats;
    st.speakers = speakers;
    st.encodes += encodes;
    st.encodesLastTick = encodes;
    st.lastDecodeMs = t1 - t0;
    st.lastMixMs = t2 - t1;
    st.lastEncodeMs = t3 - t2;
    st.decodeMs += st.lastDecodeMs;
    st.mixMs += st.lastMixMs;
    st.encodeMs += st.lastEncodeMs;
    return out;
  }

  /** Jitter buffer stats of one input (for per-participant metrics). */
  inputStats(id: string): JitterBufferStats | undefined {
    return this.#participants.get(id)?.jitter.toJSON();
  }

  /** Ids of the inputs mixed in the last tick. */
  activeSpeakers(): string[] {
    return this.#list.filter((p) => p.inMix).map((p) => p.id);
  }

  close(): void {
    if (this.#closed) return;
    for (const p of [...this.#list]) this.removeInput(p.id);
    for (const slots of [this.#shared.slots, this.#shared.dredSlots]) {
      for (const slot of slots.values()) this.#codecs.release?.(slot.encoder);
      slots.clear();
    }
    for (const stream of this.#streamPool) {
      for (const slot of stream.slots.values()) this.#codecs.release?.(slot.encoder);
      for (const slot of stream.dredSlots.values()) this.#codecs.release?.(slot.encoder);
    }
    for (const pools of [this.#encoderPool, this.#dredEncoderPool]) {
      for (const pool of pools.values()) for (const e of pool) this.#codecs.release?.(e);
      pools.clear();
    }
    this.#closed = true;
  }

  toJSON(): RoomMixerStats {
    const st = this.#stats;
    const agg = { ...this.#removed };
    for (const p of this.#list) {
      const s = p.jitter.toJSON();
      agg.concealed += s.concealed;
      agg.fecRecovered += s.fecRecovered;
      agg.dredRecovered += s.dredRecovered;
      agg.lost += s.lost;
      agg.late += s.late;
      agg.decodeErrors += s.decodeErrors;
    }
    let limitedFrames = this.#shared.limiter.toJSON().limitedFrames;
    for (const p of this.#list) if (p.stream) limitedFrames += p.stream.limiter.toJSON().limitedFrames;
    const r = (x: number): number => Math.round(x * 1000) / 1000;
    return {
      inputs: this.#list.length,
      ticks: this.#tick,
      speakers: st.speakers,
      encodes: st.encodes,
      encodesLastTick: st.encodesLastTick,
      decodeMs: r(st.decodeMs),
      mixMs: r(st.mixMs),
      encodeMs: r(st.encodeMs),
      lastTick: { decodeMs: r(st.lastDecodeMs), mixMs: r(st.lastMixMs), encodeMs: r(st.lastEncodeMs) },
      ...agg,
      limitedFrames,
      dredListeners: st.dredListeners,
      dredEncodes: st.dredEncodes,
      dredPackets: st.dredPackets,
      dredEncodeMs: r(st.dredEncodeMs),
    };
  }

  #encodeSlot(stream: MixStream, format: MixOutputFormat, dred: boolean): EncodeSlot {
    const slots = dred ? stream.dredSlots : stream.slots;
    let slot = slots.get(format);
    if (!slot) {
      slot = new EncodeSlot(this.#acquireEncoder(format, dred));
      slots.set(format, slot);
    }
    return slot;
  }

  #acquireStream(): MixStream {
    const stream = this.#streamPool.pop() ?? new MixStream(this.#limiterOptions);
    stream.limiter.reset();
    return stream;
  }

  /** A speaker fell silent: their encoders go back to the pool for the next speaker. */
  #releaseStream(stream: MixStream): void {
    for (const [slots, pools] of [
      [stream.slots, this.#encoderPool],
      [stream.dredSlots, this.#dredEncoderPool],
    ] as const) {
      for (const [format, slot] of slots) {
        slot.encoder.reset?.();
        let pool = pools.get(format);
        if (!pool) pools.set(format, (pool = []));
        pool.push(slot.encoder);
      }
      slots.clear();
    }
    this.#streamPool.push(stream);
  }

  #acquireEncoder(format: MixOutputFormat, dred: boolean): FrameEncoder {
    return (dred ? this.#dredEncoderPool : this.#encoderPool).get(format)?.pop() ?? this.#codecs.createEncoder(format, dred);
  }

  #live(): void {
    if (this.#closed) throw new VoxError('CLOSED', 'RoomMixer is closed');
  }
}
