import {
  G711FrameDecoder,
  JitterBuffer,
  OpusFrameDecoder,
  Upsampled48kDecoder,
  type FrameDecoder,
  type G711Law,
  type JitterBufferStats,
  type PlayoutKind,
} from '../../codec/index.ts';

/** How the Node client's received audio of one slot was played, frame by frame (docs/audio.md "DRED", "The Node SDK's playout"). */
export interface PlayoutStats {
  /** Frames played by kind: `packet` decoded as received, `fec`/`dred` rebuilt, `plc` concealed, `dtx`/`silence`/`quiet` silent. */
  frames: Record<PlayoutKind, number>;
  /** Frames lost on the way and rebuilt: from in-band FEC, from DRED, or only concealed (PLC). */
  recoveredFrames: { fec: number; dred: number; plc: number };
  /** The slot's jitter buffer counters (lost, late, duplicates, …) since its stream last changed SSRC. */
  jitter: JitterBufferStats;
}

const FRAME_SAMPLES = 960;

function emptyKinds(): Record<PlayoutKind, number> {
  return { packet: 0, quiet: 0, fec: 0, dred: 0, plc: 0, dtx: 0, silence: 0 };
}

/**
 * The received audio of one slot (or of the direct link) played through the project's JitterBuffer
 * (src/codec/jitter-buffer.ts), clocked by the packets themselves (`pullDue`): each frame is played
 * once, as soon as a packet at or after it has arrived, so a frame lost on the way is rebuilt from
 * the next packet's in-band FEC, from a later packet's DRED (Opus 1.5), or concealed (PLC) — and the
 * client keeps what a real receiver would play, at no added delay. G.711 is decoded and upsampled
 * to the same 48 kHz. A new SSRC (a new server peer, a new direct link) starts a fresh buffer.
 */
export class SlotPlayout {
  readonly #codec: 'opus' | G711Law;
  readonly #decoder: FrameDecoder & { close?(): void };
  readonly #frame = new Float32Array(FRAME_SAMPLES);
  #jitter: JitterBuffer;
  #ssrc = -1;
  readonly #kinds = emptyKinds();

  constructor(codec: 'opus' | G711Law) {
    this.#codec = codec;
    this.#decoder = codec === 'opus' ? new OpusFrameDecoder(48_000) : new Upsampled48kDecoder(new G711FrameDecoder(codec));
    this.#jitter = this.#newJitter();
  }

  /** One received packet; `play` gets each frame it makes due (a view, valid during the call). */
  receive(ssrc: number, payload: Uint8Array, seq: number, ts: number, arrivalMs: number, play: (pcm: Float32Array) => void): void {
    if (ssrc !== this.#ssrc) {
      if (this.#ssrc !== -1) {
        this.#decoder.reset?.();
        this.#jitter = this.#newJitter();
      }
      this.#ssrc = ssrc;
    }
    const jitter = this.#jitter;
    jitter.push(payload, seq, ts, arrivalMs);
    const frame = this.#frame;
    for (let kind = jitter.pullDue(frame); kind !== null; kind = jitter.pullDue(frame)) {
      this.#kinds[kind]++;
      play(frame);
    }
  }

  stats(): PlayoutStats {
    const k = this.#kinds;
    return { frames: { ...k }, recoveredFrames: { fec: k.fec, dred: k.dred, plc: k.plc }, jitter: this.#jitter.toJSON() };
  }

  close(): void {
    if (this.#decoder instanceof OpusFrameDecoder) this.#decoder.close();
  }

  #newJitter(): JitterBuffer {
    const g711 = this.#codec !== 'opus';
    return new JitterBuffer(this.#decoder, {
      clockRate: g711 ? 8000 : 48_000,
      frameTicks: g711 ? 160 : 960,
      // Every packet is decoded (the level extension need not be there), none dropped to catch up.
      skipDecodeLevel: 128,
      accelerateSlackFrames: 1_000_000,
    });
  }
}
