import type { FrameDecoder, FrameEncoder } from '../../src/codec/frame-codec.ts';
import { JitterBuffer } from '../../src/codec/jitter-buffer.ts';
import { SoftLimiter } from '../../src/codec/limiter.ts';
import { framePower, mixAdd, mixSub } from '../../src/codec/mixer.ts';
import type { MixCodecs } from '../../src/media/mix-codecs.ts';

/**
 * The baseline the room mixer is measured against: Janus audiobridge's way, one encoder per
 * participant, each encoding that participant's own mix every tick (O(participants) encodes).
 * Same jitter buffers, decoders, kernels, limiter and codec settings as RoomMixer, so the ratio
 * isolates the shared-encode design.
 */
const FRAME = 960;

interface NaiveParticipant {
  id: string;
  decoder: FrameDecoder;
  jitter: JitterBuffer;
  encoder: FrameEncoder;
  limiter: SoftLimiter;
  pcm: Float32Array;
  out: Float32Array;
  hangover: number;
  payload: Uint8Array;
}

export class NaiveMixer {
  readonly #codecs: MixCodecs;
  readonly #list: NaiveParticipant[] = [];
  readonly #byId = new Map<string, NaiveParticipant>();
  readonly #total = new Float32Array(FRAME);
  readonly #voicePower = 10 ** (-50 / 10);
  #stats = { ticks: 0, encodes: 0, encodesLastTick: 0, decodeMs: 0, mixMs: 0, encodeMs: 0 };

  constructor(options: { codecs: MixCodecs }) {
    this.#codecs = options.codecs;
  }

  addInput(id: string): void {
    const decoder = this.#codecs.createDecoder('opus');
    const p: NaiveParticipant = {
      id,
      decoder,
      jitter: new JitterBuffer(decoder),
      encoder: this.#codecs.createEncoder('normal'),
      limiter: new SoftLimiter(),
      pcm: new Float32Array(FRAME),
      out: new Float32Array(FRAME),
      hangover: 0,
      payload: new Uint8Array(0),
    };
    this.#list.push(p);
    this.#byId.set(id, p);
  }

  push(id: string, payload: Uint8Array, seq: number, ts: number, arrivalMs: number, audioLevel = -1): void {
    this.#byId.get(id)?.jitter.push(payload, seq, ts, arrivalMs, audioLevel);
  }

  tick(): void {
    const t0 = performance.now();
    for (const p of this.#list) {
      p.jitter.pull(p.pcm);
      if (framePower(p.pcm, FRAME) > this.#voicePower) p.hangover = 20;
      else if (p.hangover > 0) p.hangover--;
    }
    const t1 = performance.now();
    const total = this.#total;
    total.fill(0);
    for (const p of this.#list) if (p.hangover > 0) mixAdd(total, p.pcm, FRAME);
    for (const p of this.#list) {
      if (p.hangover > 0) mixSub(p.out, total, p.pcm, FRAME);
      else p.out.set(total);
      p.limiter.process(p.out, FRAME);
    }
    const t2 = performance.now();
    for (const p of this.#list) p.payload = p.encoder.encode(p.out);
    const t3 = performance.now();
    const st = this.#stats;
    st.ticks++;
    st.encodes += this.#list.length;
    st.encodesLastTick = this.#list.length;
    st.decodeMs += t1 - t0;
    st.mixMs += t2 - t1;
    st.encodeMs += t3 - t2;
  }

  close(): void {
    for (const p of this.#list) {
      this.#codecs.release?.(p.decoder);
      this.#codecs.release?.(p.encoder);
    }
  }

  toJSON() {
    return { ...this.#stats };
  }
}
