/**
 * Drives whole signals through an OpusEncoder/OpusDecoder pair frame by frame, with optional
 * packet loss and a recovery strategy, the way a receiver with one packet of lookahead would.
 */
import type { OpusDecoder, OpusEncoder } from '../../src/codec/index.ts';

/** Encode `pcm` (interleaved) in frames of `encoder.frameSize`; returns copies of the packets. */
export function encodeAll(encoder: OpusEncoder, pcm: Float32Array): Uint8Array[] {
  const step = encoder.frameSize * encoder.channels;
  const packets: Uint8Array[] = [];
  for (let i = 0; i + step <= pcm.length; i += step) {
    encoder.pcmIn.set(pcm.subarray(i, i + step));
    packets.push(encoder.encodeFrame().slice());
  }
  return packets;
}

export type Recovery = 'plc' | 'fec' | 'dred';

/**
 * Decode `packets`, treating `lost[i]` as lost. Lost frames are concealed by PLC, or rebuilt from
 * the next received packet's in-band FEC ('fec') or DRED ('dred'), falling back to PLC.
 */
export function decodeAll(
  decoder: OpusDecoder,
  packets: Uint8Array[],
  lost: boolean[] = [],
  recovery: Recovery = 'plc',
): Float32Array {
  const frames: Float32Array[] = [];
  let i = 0;
  while (i < packets.length) {
    if (!lost[i]) {
      frames.push(decoder.decode(packets[i]).slice());
      i++;
      continue;
    }
    let next = i;
    while (next < packets.length && lost[next]) next++;
    const frameSize = decoder.lastPacketDuration || (decoder.sampleRate / 50);
    if (next === packets.length) {
      for (; i < next; i++) frames.push(decoder.decode(null).slice());
      continue;
    }
    if (recovery === 'fec') {
      for (; i < next - 1; i++) frames.push(decoder.decodePlc(frameSize).slice());
      frames.push(decoder.decodeFec(packets[next], frameSize).slice());
      i = next;
    } else if (recovery === 'dred') {
      const available = decoder.parseDred(packets[next]);
      for (; i < next; i++) {
        const offset = (next - i) * frameSize;
        frames.push((offset <= available ? decoder.decodeDred(offset, frameSize) : decoder.decodePlc(frameSize)).slice());
      }
    } else {
      for (; i < next; i++) frames.push(decoder.decodePlc(frameSize).slice());
    }
  }
  const out = new Float32Array(frames.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const f of frames) {
    out.set(f, offset);
    offset += f.length;
  }
  return out;
}

/** Deterministic loss pattern: each packet lost with probability `rate` (never the first `guard`). */
export function lossPattern(count: number, rate: number, seed = 3, guard = 5): boolean[] {
  let s = seed;
  const lost: boolean[] = [];
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    lost.push(i >= guard && s / 0x100000000 < rate);
  }
  return lost;
}
