import type { FrameDecoder } from './frame-codec.ts';
import { framePower } from './mixer.ts';
import { SEQ_MOD, TS_MOD, unwrap } from './rtp-numbers.ts';

/**
 * Adaptive jitter buffer for one incoming audio stream, as a pure processor: `push()` RTP payloads
 * with their sequence number, timestamp and arrival time; `pull()` once per 20 ms tick and get exactly
 * one frame of PCM — decoded, recovered or concealed, never a gap.
 *
 * - Ordering: packets are slotted by (unwrapped) RTP timestamp, so reordering within the buffer depth
 *   is invisible; a packet for a frame already played is counted `late` and dropped.
 * - Delay: the target follows the RFC 3550 §6.4.1 interarrival jitter J (J += (|D| − J)/16),
 *   target = frame + `jitterFactor`·J, clamped to [minDelayMs, maxDelayMs]. An underrun holds the
 *   playout point (a concealed frame is inserted, the delay grows by one frame); a buffer deeper than
 *   the target plus `accelerateSlackFrames` drops one frame, at most every `accelerateEveryTicks`
 *   (in a pause; during speech only beyond twice the slack).
 * - Loss (a sequence-number gap, not a DTX pause): in-band FEC from the next packet when it is already
 *   here (`decode_fec=1`), else DRED from any later packet when the decoder supports it, else PLC.
 * - DTX (RFC 7587 §3.1.3: seq continues, timestamp jumps): frames between a DTX packet and the next
 *   packet are silence, not loss. libwebrtc does not send Opus's 1-byte DTX frames at all, only a
 *   comfort-noise refresh every 400 ms, so an underrun right after a quiet frame (≤ 2 bytes, or
 *   decoded below `quietDbfs`) is taken as DTX too: silence, the playout point keeps moving.
 * - Packets longer than 20 ms (40/60 ms Opus, long G.711 ptimes) are decoded whole (up to 120 ms) and
 *   their remainder plays on the next ticks; shorter ones are zero-padded to a frame (see
 *   src/codec/frame-codecs.ts). `played` counts frames played from packets.
 * - Hostile timestamps: a packet `capacity` frames or more away from what is buffered restarts the
 *   buffer (before start as after), and no per-tick search walks more than `capacity` frames.
 */

export type PlayoutKind = 'packet' | 'quiet' | 'fec' | 'dred' | 'plc' | 'dtx' | 'silence';

export interface JitterBufferOptions {
  /** RTP clock rate (48 000 for Opus per RFC 7587, 8 000 for G.711). */
  clockRate?: number;
  /** RTP timestamp units per frame (default 20 ms worth). */
  frameTicks?: number;
  /** Lower bound of the target delay (default 20 ms). */
  minDelayMs?: number;
  /** Upper bound of the target delay (default 200 ms). */
  maxDelayMs?: number;
  /** Target delay before any jitter has been measured (default 40 ms). */
  initialDelayMs?: number;
  /** Multiplier on the RFC 3550 jitter estimate (default 3). */
  jitterFactor?: number;
  /** Frames beyond the target tolerated before dropping one (default 2). */
  accelerateSlackFrames?: number;
  /** Minimum ticks between two dropped frames (default 10 = 200 ms). */
  accelerateEveryTicks?: number;
  /** Consecutive PLC frames before fading to silence (default 5 = 100 ms). */
  maxConcealFrames?: number;
  /** Use Opus in-band FEC when the next packet is here (default true). */
  fec?: boolean;
  /** Use DRED when the decoder supports it (default true). */
  dred?: boolean;
  /** A decoded frame below this power (dBFS) counts as quiet for DTX detection (default −60). */
  quietDbfs?: number;
  /**
   * Packets whose RFC 6464 audio level (0–127, −dBov) is at or above this are not decoded: the
   * frame is silence (default 70 = quieter than −70 dBov, well under any voice threshold). Saves the
   * decode of every listening-only participant. 128 disables it.
   */
  skipDecodeLevel?: number;
}

export interface JitterBufferStats {
  received: number;
  duplicates: number;
  late: number;
  lost: number;
  played: number;
  fecRecovered: number;
  dredRecovered: number;
  concealed: number;
  dtxFrames: number;
  /** Packets not decoded because their audio level said silence. */
  quietSkipped: number;
  silenceFrames: number;
  underruns: number;
  accelerated: number;
  resyncs: number;
  /** Packets the decoder rejected (corrupt); concealed instead. */
  decodeErrors: number;
  jitterMs: number;
  targetDelayMs: number;
  depthFrames: number;
}

/** An Opus packet of at most this many bytes is a DTX / comfort-noise frame (TOC byte only). */
const DTX_MAX_BYTES = 2;
const INITIAL_SLOT_BYTES = 256;
/** Longest packet decoded whole (RFC 6716 §3.2: 120 ms), in 20 ms frames. */
const MAX_PACKET_FRAMES = 6;

class Slot {
  data = new Uint8Array(INITIAL_SLOT_BYTES);
  length = 0;
  /** Views by payload length, so steady traffic (VBR sizes repeat) allocates nothing per packet. */
  #views: (Uint8Array | undefined)[] = [];
  seq = 0;
  level = -1;
  ts = -1;
  filled = false;

  store(payload: Uint8Array, seq: number, ts: number, level: number): void {
    this.level = level;
    if (payload.length > this.data.length) {
      this.data = new Uint8Array(Math.max(payload.length, this.data.length * 2));
      this.#views = [];
    }
    this.data.set(payload);
    this.length = payload.length;
    this.seq = seq;
    this.ts = ts;
    this.filled = true;
  }

  view(): Uint8Array {
    return (this.#views[this.length] ??= this.data.subarray(0, this.length));
  }
}

export class JitterBuffer {
  readonly #decoder: FrameDecoder;
  readonly #clockRate: number;
  readonly #frameTicks: number;
  readonly #frameMs: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #jitterFactor: number;
  readonly #accelerateSlack: number;
  readonly #accelerateEvery: number;
  readonly #maxConceal: number;
  readonly #fec: boolean;
  readonly #dred: boolean;
  readonly #quietPower: number;
  readonly #skipDecodeLevel: number;
  readonly #slots: Slot[];
  /** The last packet's whole decode (up to 120 ms); frames after the first play on the next ticks. */
  readonly #decoded: Float32Array;
  /** Timestamp of the first frame in `#decoded`, and how many frames it holds (0 = none). */
  #carryTs = 0;
  #carryFrames = 0;

  #haveAny = false;
  #lastSeqExt = 0;
  #lastTsExt = 0;
  #highestTs = 0;
  #prevArrivalMs = 0;
  #prevTs = 0;
  #jitterMs = 0;
  #targetDelayMs: number;

  #started = false;
  #primeTicks = 0;
  #playTs = 0;
  #lastPlayedSeq = -1;
  #inDtx = false;
  #lastQuiet = false;
  #concealRun = 0;
  #holdRun = 0;
  #ticksSinceAccelerate = 0;

  #stats = {
    received: 0,
    duplicates: 0,
    late: 0,
    lost: 0,
    played: 0,
    fecRecovered: 0,
    dredRecovered: 0,
    concealed: 0,
    dtxFrames: 0,
    quietSkipped: 0,
    silenceFrames: 0,
    underruns: 0,
    accelerated: 0,
    resyncs: 0,
    decodeErrors: 0,
  };

  constructor(decoder: FrameDecoder, options: JitterBufferOptions = {}) {
    this.#decoder = decoder;
    this.#clockRate = options.clockRate ?? 48_000;
    this.#frameTicks = options.frameTicks ?? this.#clockRate / 50;
    this.#frameMs = (this.#frameTicks * 1000) / this.#clockRate;
    this.#minDelayMs = options.minDelayMs ?? 20;
    this.#maxDelayMs = options.maxDelayMs ?? 200;
    this.#jitterFactor = options.jitterFactor ?? 3;
    this.#accelerateSlack = options.accelerateSlackFrames ?? 2;
    this.#accelerateEvery = options.accelerateEveryTicks ?? 10;
    this.#maxConceal = options.maxConcealFrames ?? 5;
    this.#fec = options.fec ?? true;
    this.#dred = options.dred ?? true;
    this.#quietPower = 10 ** ((options.quietDbfs ?? -60) / 10);
    this.#skipDecodeLevel = options.skipDecodeLevel ?? 70;
    this.#targetDelayMs = Math.min(Math.max(options.initialDelayMs ?? 40, this.#minDelayMs), this.#maxDelayMs);
    // Room for the largest delay plus as much again of reordering/arrival burst.
    const capacity = 2 * Math.ceil(this.#maxDelayMs / this.#frameMs) + 4;
    this.#slots = Array.from({ length: capacity }, () => new Slot());
    this.#decoded = new Float32Array(this.frameSamples * MAX_PACKET_FRAMES);
  }

  /** Timestamp units the buffer can hold; a packet farther away than this restarts it. */
  get #span(): number {
    return this.#slots.length * this.#frameTicks;
  }

  /** Frames per 20 ms tick are fixed; this is the PCM length `pull()` writes. */
  get frameSamples(): number {
    return Math.round((this.#decoder.sampleRate * this.#frameMs) / 1000);
  }

  /**
   * Accepts one RTP payload. `arrivalMs` is any monotonic clock in milliseconds; `audioLevel` the
   * RFC 6464 client-to-mixer level (0 = loudest … 127 = silence, −1 = not sent).
   */
  push(payload: Uint8Array, seq: number, timestamp: number, arrivalMs: number, audioLevel = -1): void {
    let seqExt: number;
    let tsExt: number;
    if (!this.#haveAny) {
      seqExt = seq;
      tsExt = timestamp;
      this.#haveAny = true;
      this.#highestTs = tsExt;
      this.#prevArrivalMs = arrivalMs;
      this.#prevTs = tsExt;
    } else {
      seqExt = unwrap(seq, this.#lastSeqExt, SEQ_MOD);
      tsExt = unwrap(timestamp, this.#lastTsExt, TS_MOD);
      // RFC 3550 §6.4.1 / A.8: D = (Rj − Ri) − (Sj − Si), J += (|D| − J) / 16, in arrival order.
      const d = arrivalMs - this.#prevArrivalMs - ((tsExt - this.#prevTs) * 1000) / this.#clockRate;
      this.#jitterMs += (Math.abs(d) - this.#jitterMs) / 16;
      this.#prevArrivalMs = arrivalMs;
      this.#prevTs = tsExt;
      this.#updateTarget();
    }
    this.#lastSeqExt = seqExt;
    this.#lastTsExt = tsExt;
    this.#stats.received++;

    if (this.#started) {
      if (tsExt < this.#playTs) {
        if (this.#inDtx) {
          // The sender's clock ran ahead of ours during a DTX pause: re-prime rather than drop speech.
          this.#restart();
        } else {
          this.#stats.late++;
          return;
        }
      } else if (tsExt - this.#playTs >= this.#span) {
        // Far ahead of the playout point (a long pause or a sender restart): start over from here.
        this.#stats.resyncs++;
        this.#restart();
      }
    } else {
      // Not started yet: everything buffered must fit in one window of `span`, or a hostile jump
      // (2^31 ticks) would make the playout search walk millions of frames. Start over from here.
      const lowest = this.#lowestBuffered();
      if (lowest === undefined) {
        this.#highestTs = tsExt;
      } else if (tsExt - lowest >= this.#span || this.#highestTs - tsExt >= this.#span) {
        this.#stats.resyncs++;
        this.#restart();
      }
    }
    if (tsExt > this.#highestTs) this.#highestTs = tsExt;
    const slot = this.#slotFor(tsExt);
    if (slot.filled && slot.ts === tsExt) {
      this.#stats.duplicates++;
      return;
    }
    slot.store(payload, seqExt, tsExt, audioLevel);
  }

  /** Writes exactly one frame into `pcm` (length ≥ frameSamples) and says where it came from. */
  pull(pcm: Float32Array): PlayoutKind {
    const n = this.frameSamples;
    if (!this.#started && !this.#tryStart()) {
      pcm.fill(0, 0, n);
      this.#stats.silenceFrames++;
      return 'silence';
    }
    this.#ticksSinceAccelerate++;
    this.#maybeAccelerate();

    const playTs = this.#playTs;
    const slot = this.#slotFor(playTs);
    const carried = this.#carryFrames > 0 ? (playTs - this.#carryTs) / this.#frameTicks : 0;
    if (carried >= 1 && carried < this.#carryFrames && Number.isInteger(carried)) {
      // The rest of a packet longer than 20 ms, decoded with its first frame. It wins over any packet
      // claiming the same timestamp (an overlapping sender): the decoder state already moved past it.
      if (slot.filled && slot.ts === playTs) slot.filled = false;
      const decoded = this.#decoded;
      for (let i = 0, j = carried * n; i < n; i++, j++) pcm[i] = decoded[j]!;
      this.#lastQuiet = this.#inDtx || framePower(pcm, n) < this.#quietPower;
      this.#concealRun = 0;
      this.#advance();
      this.#stats.played++;
      return 'packet';
    }
    if (slot.filled && slot.ts === playTs) {
      slot.filled = false;
      this.#carryFrames = 0;
      if (slot.level >= this.#skipDecodeLevel) {
        // The sender's RFC 6464 level says silence: skip the decode. The decoder simply sees a gap
        // before the next voiced packet, as after DTX; its state held nothing but silence.
        pcm.fill(0, 0, n);
        this.#inDtx = false;
        this.#lastQuiet = true;
        this.#lastPlayedSeq = slot.seq;
        this.#concealRun = 0;
        this.#advance();
        this.#stats.quietSkipped++;
        return 'quiet';
      }
      try {
        const written = this.#decoder.decode(slot.view(), this.#decoded);
        this.#carryTs = playTs;
        this.#carryFrames = Math.max(1, Math.floor(written / n));
        const decoded = this.#decoded;
        for (let i = 0; i < n; i++) pcm[i] = decoded[i]!;
      } catch {
        // A corrupt packet (libopus -4) from one participant must not break the room's tick.
        this.#stats.decodeErrors++;
        this.#lastPlayedSeq = slot.seq;
        this.#advance();
        return this.#conceal(pcm);
      }
      this.#inDtx = slot.length <= DTX_MAX_BYTES;
      this.#lastQuiet = this.#inDtx || framePower(pcm, n) < this.#quietPower;
      this.#lastPlayedSeq = slot.seq;
      this.#concealRun = 0;
      this.#advance();
      this.#stats.played++;
      return 'packet';
    }

    const next = this.#nextBuffered(playTs);
    if (next !== undefined) {
      if (this.#lastPlayedSeq >= 0 && next.seq === this.#lastPlayedSeq + 1) {
        // No sequence number missing: the sender paused (DTX), the gap is silence.
        pcm.fill(0, 0, n);
        this.#stats.dtxFrames++;
        this.#advance();
        return 'dtx';
      }
      this.#stats.lost++;
      const kind = this.#recover(next, playTs, pcm);
      this.#advance();
      return kind;
    }

    if (this.#inDtx || this.#lastQuiet) {
      this.#inDtx = true;
      pcm.fill(0, 0, n);
      this.#stats.dtxFrames++;
      this.#advance();
      return 'dtx';
    }
    // Underrun: nothing at or after the playout point. Hold the point (the delay grows by one frame)
    // so a merely late packet still plays; after maxDelay of nothing the stream has stopped.
    this.#stats.underruns++;
    this.#holdRun++;
    if (this.#holdRun * this.#frameMs > this.#maxDelayMs) this.#restart();
    return this.#conceal(pcm);
  }

  /**
   * Packet-clocked playout, for a receiver without an audio clock of its own (the Node SDK, which
   * keeps what it hears rather than playing it): plays the next frame if it lies at or before the
   * newest packet received, else returns null. Called after each `push()` until null, it plays every
   * frame exactly once as soon as a packet at or after it is here — a lost frame when the packet after
   * the gap arrives, so that packet's FEC or DRED rebuilds it — with no delay added and no underruns.
   * Starts at once at the oldest buffered packet (no target delay). Pass `accelerateSlackFrames`
   * larger than any burst (the SDK uses the buffer's capacity) so no frame is dropped to catch up.
   */
  pullDue(pcm: Float32Array): PlayoutKind | null {
    if (!this.#started) {
      const lowest = this.#lowestBuffered();
      if (lowest === undefined) return null;
      this.#started = true;
      this.#playTs = lowest;
      this.#ticksSinceAccelerate = 0;
    }
    if (this.#playTs > this.#highestTs) return null;
    return this.pull(pcm);
  }

  #recover(next: Slot, playTs: number, pcm: Float32Array): PlayoutKind {
    const decoder = this.#decoder;
    try {
      // In-band FEC only helps when the next packet carries LBRR for this frame; otherwise DRED or PLC.
      if (this.#fec && decoder.decodeFec && next.ts === playTs + this.#frameTicks && decoder.decodeFec(next.view(), pcm) > 0) {
        this.#stats.fecRecovered++;
        this.#concealRun = 0;
        return 'fec';
      }
      if (this.#dred && decoder.decodeDred) {
        const offset48k = Math.round(((next.ts - playTs) * 48_000) / this.#clockRate);
        if (decoder.decodeDred(next.view(), offset48k, pcm) > 0) {
          this.#stats.dredRecovered++;
          this.#concealRun = 0;
          return 'dred';
        }
      }
    } catch {
      this.#stats.decodeErrors++;
    }
    return this.#conceal(pcm);
  }

  #conceal(pcm: Float32Array): PlayoutKind {
    this.#concealRun++;
    if (this.#concealRun > this.#maxConceal) {
      pcm.fill(0, 0, this.frameSamples);
      this.#stats.silenceFrames++;
      return 'silence';
    }
    try {
      this.#decoder.conceal(pcm);
    } catch {
      this.#stats.decodeErrors++;
      pcm.fill(0, 0, this.frameSamples);
    }
    this.#stats.concealed++;
    return 'plc';
  }

  #tryStart(): boolean {
    if (!this.#haveAny) return false;
    const lowest = this.#lowestBuffered();
    if (lowest === undefined) return false;
    this.#primeTicks++;
    const bufferedMs = ((this.#highestTs - lowest + this.#frameTicks) * 1000) / this.#clockRate;
    if (bufferedMs < this.#targetDelayMs && this.#primeTicks * this.#frameMs < this.#targetDelayMs) return false;
    this.#started = true;
    this.#playTs = lowest;
    this.#ticksSinceAccelerate = 0;
    return true;
  }

  #maybeAccelerate(): void {
    const depthFrames = this.#depthFrames();
    const targetFrames = Math.ceil(this.#targetDelayMs / this.#frameMs);
    if (depthFrames <= targetFrames + this.#accelerateSlack) return;
    if (this.#ticksSinceAccelerate < this.#accelerateEvery) return;
    // Prefer to drop during a pause (last frame quiet): inaudible. In speech, only when the excess
    // is twice the slack, since skipping a voiced frame is a small audible glitch.
    if (!this.#lastQuiet && depthFrames <= targetFrames + 2 * this.#accelerateSlack) return;
    // Drop the oldest frame: the listener loses 20 ms once instead of hearing extra delay forever.
    const slot = this.#slotFor(this.#playTs);
    if (slot.filled && slot.ts === this.#playTs) {
      this.#lastPlayedSeq = slot.seq;
      slot.filled = false;
    }
    this.#advance();
    this.#ticksSinceAccelerate = 0;
    this.#stats.accelerated++;
  }

  #depthFrames(): number {
    if (!this.#started) return 0;
    return Math.max(0, (this.#highestTs + this.#frameTicks - this.#playTs) / this.#frameTicks);
  }

  #updateTarget(): void {
    const target = this.#frameMs + this.#jitterFactor * this.#jitterMs;
    this.#targetDelayMs = Math.min(Math.max(target, this.#minDelayMs), this.#maxDelayMs);
  }

  #advance(): void {
    this.#holdRun = 0;
    this.#playTs += this.#frameTicks;
  }

  #restart(): void {
    for (const slot of this.#slots) slot.filled = false;
    this.#started = false;
    this.#primeTicks = 0;
    this.#inDtx = false;
    this.#lastQuiet = false;
    this.#lastPlayedSeq = -1;
    this.#carryFrames = 0;
    this.#highestTs = this.#lastTsExt;
  }

  #slotFor(tsExt: number): Slot {
    const index = Math.floor(tsExt / this.#frameTicks) % this.#slots.length;
    return this.#slots[index < 0 ? index + this.#slots.length : index]!;
  }

  #nextBuffered(afterTs: number): Slot | undefined {
    // Nothing buffered lies `span` or more beyond the playout point (push() restarts instead), so
    // the walk is bounded by the slot count whatever `#highestTs` says.
    const last = Math.min(this.#highestTs, afterTs + this.#span);
    for (let ts = afterTs + this.#frameTicks; ts <= last; ts += this.#frameTicks) {
      const slot = this.#slotFor(ts);
      if (slot.filled && slot.ts === ts) return slot;
    }
    return undefined;
  }

  #lowestBuffered(): number | undefined {
    let lowest: number | undefined;
    for (const slot of this.#slots) if (slot.filled && (lowest === undefined || slot.ts < lowest)) lowest = slot.ts;
    return lowest;
  }

  toJSON(): JitterBufferStats {
    return {
      ...this.#stats,
      jitterMs: Math.round(this.#jitterMs * 100) / 100,
      targetDelayMs: Math.round(this.#targetDelayMs * 10) / 10,
      depthFrames: this.#depthFrames(),
    };
  }
}
