import { describe, expect, it } from 'vitest';
import { isVoxError } from '../../src/errors.ts';
import { OpusDecoder, OpusEncoder, OpusError, getOpusRuntime } from '../../src/codec/index.ts';
import { bestDelay, dominantFrequency, snrDb, toneFloat32 } from './signal.ts';
import { decodeAll, encodeAll } from './stream.ts';
import { thrown } from './thrown.ts';

function expectCode(fn: () => unknown, code: string, opusCode?: number): void {
  const error = thrown(fn);
  expect(isVoxError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  if (opusCode !== undefined) {
    expect(error).toBeInstanceOf(OpusError);
    expect((error as OpusError).opusCode).toBe(opusCode);
    expect((error as OpusError).opusMessage.length).toBeGreaterThan(0);
  }
}

/** A decoder still produces the right tone after whatever was done to it. */
function expectStillDecodes(decoder: OpusDecoder): void {
  const encoder = new OpusEncoder({ sampleRate: 48000, bitrate: 48000 });
  const tone = toneFloat32(750, 48000, 24000);
  const out = decodeAll(decoder, encodeAll(encoder, tone));
  expect(dominantFrequency(out, 48000)).toBeCloseTo(750, -1);
  const delay = bestDelay(tone, out, 280, 330);
  expect(snrDb(tone, out, delay, 9600)).toBeGreaterThan(12);
  encoder.close();
}

describe('Opus bad input', () => {
  it('rejects bad sample rates, channel counts and frame sizes before calling wasm', () => {
    expectCode(() => new OpusEncoder({ sampleRate: 44100 as 48000 }), 'CODEC_BAD_ARGUMENT');
    expectCode(() => new OpusDecoder({ sampleRate: 22050 as 48000 }), 'CODEC_BAD_ARGUMENT');
    expectCode(() => new OpusEncoder({ channels: 3 as 1 }), 'CODEC_BAD_ARGUMENT');
    expectCode(() => new OpusEncoder({ application: 1234 as 2048 }), 'CODEC_BAD_ARGUMENT');
    expectCode(() => new OpusEncoder({ frameDurationMs: 30 as 20 }), 'CODEC_BAD_ARGUMENT');
    const encoder = new OpusEncoder({ sampleRate: 48000, channels: 2 });
    expectCode(() => encoder.encode(new Float32Array(959 * 2)), 'CODEC_BAD_ARGUMENT');
    expectCode(() => encoder.encode(new Float32Array(961)), 'CODEC_BAD_ARGUMENT'); // odd for stereo
    expectCode(() => encoder.encode(new Int16Array(0)), 'CODEC_BAD_ARGUMENT');
    expectCode(() => encoder.encode(new Float32Array(5760 * 2 + 1920)), 'CODEC_BAD_ARGUMENT'); // > 120 ms
    expectCode(() => (encoder.bitrate = 32000.5), 'CODEC_BAD_ARGUMENT');
    expect(encoder.encode(new Float32Array(1920)).length).toBeGreaterThan(0);
    encoder.close();
  });

  it('out-of-range settings come back as OPUS_ERROR with libopus code -1 (bad argument)', () => {
    const encoder = new OpusEncoder();
    expectCode(() => (encoder.complexity = 11), 'OPUS_ERROR', -1);
    expectCode(() => (encoder.packetLossPercent = 101), 'OPUS_ERROR', -1);
    expectCode(() => (encoder.lsbDepth = 7), 'OPUS_ERROR', -1);
    expectCode(() => (encoder.dredDuration = 105), 'OPUS_ERROR', -1);
    expect(encoder.complexity).not.toBe(11);
    const decoder = new OpusDecoder();
    expectCode(() => (decoder.gain = 40000), 'OPUS_ERROR', -1);
    const error = thrown(() => (encoder.complexity = -3)) as OpusError;
    expect(error.message).toContain('invalid argument');
    encoder.close();
    decoder.close();
  });

  it('empty, truncated and corrupt packets give typed errors and the decoder keeps working', () => {
    const decoder = new OpusDecoder({ sampleRate: 48000 });
    expectCode(() => decoder.decode(new Uint8Array(0)), 'CODEC_BAD_ARGUMENT');
    // TOC code 3 (arbitrary frame count) with no count byte: truncated (RFC 6716 section 3.2.5).
    expectCode(() => decoder.decode(Uint8Array.of(0x03)), 'OPUS_ERROR', -4);
    // Code 3 with 0 frames is invalid (R5: M must be at least 1).
    expectCode(() => decoder.decode(Uint8Array.of(0x0b, 0x00)), 'OPUS_ERROR', -4);
    // Code 2 (two frames, first length coded) whose first length exceeds the packet.
    expectCode(() => decoder.decode(Uint8Array.of(0x02, 0xfb, 1, 2, 3)), 'OPUS_ERROR', -4);
    // Code 1 (two equal frames) with an odd payload (R3).
    expectCode(() => decoder.decode(Uint8Array.of(0x01, 1, 2, 3)), 'OPUS_ERROR', -4);
    // A packet longer than 120 ms: code 3 with 7 × 20 ms frames (R5).
    expectCode(() => decoder.decode(Uint8Array.of(0x7b, 0x07, ...new Array<number>(70).fill(0x55))), 'OPUS_ERROR', -4);
    expectStillDecodes(decoder);
    decoder.close();
  });

  it('survives thousands of random packets without corrupting wasm memory', () => {
    const decoder = new OpusDecoder({ sampleRate: 48000, channels: 2 });
    const rt = getOpusRuntime();
    // A canary block right after the decoder's allocations: any stray write shows up here.
    const canary = rt.malloc(4096);
    rt.u8.fill(0xa5, canary, canary + 4096);
    let seed = 99;
    const random = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const packet = new Uint8Array(1 + (random() % 400));
      for (let k = 0; k < packet.length; k++) packet[k] = random() & 0xff;
      try {
        const pcm = decoder.decode(packet);
        expect(pcm.length % 2).toBe(0);
      } catch (error) {
        expect(error).toBeInstanceOf(OpusError);
        errors++;
      }
      if (i % 500 === 0) decoder.decode(null);
    }
    expect(errors).toBeGreaterThan(0);
    expect(rt.u8.subarray(canary, canary + 4096).every((b) => b === 0xa5)).toBe(true);
    rt.free(canary);
    decoder.reset();
    const mono = new OpusDecoder({ sampleRate: 48000 });
    expectStillDecodes(mono);
    mono.close();
    decoder.close();
  });

  it('use after close gives CODEC_CLOSED; close is idempotent', () => {
    const encoder = new OpusEncoder();
    const decoder = new OpusDecoder();
    const packet = encoder.encode(new Float32Array(960)).slice();
    encoder.close();
    encoder.close();
    decoder.close();
    decoder.close();
    expect(encoder.closed && decoder.closed).toBe(true);
    expectCode(() => encoder.encode(new Float32Array(960)), 'CODEC_CLOSED');
    expectCode(() => encoder.encodeFrame(), 'CODEC_CLOSED');
    expectCode(() => encoder.pcmIn, 'CODEC_CLOSED');
    expectCode(() => encoder.bitrate, 'CODEC_CLOSED');
    expectCode(() => (encoder.bitrate = 20000), 'CODEC_CLOSED');
    expectCode(() => encoder.reset(), 'CODEC_CLOSED');
    expectCode(() => decoder.decode(packet), 'CODEC_CLOSED');
    expectCode(() => decoder.decode(null), 'CODEC_CLOSED');
    expectCode(() => decoder.decodeFec(packet), 'CODEC_CLOSED');
    expectCode(() => decoder.packetIn, 'CODEC_CLOSED');
    expectCode(() => decoder.gain, 'CODEC_CLOSED');
  });

  it('PLC/FEC frame sizes must be multiples of 2.5 ms', () => {
    const decoder = new OpusDecoder({ sampleRate: 16000 });
    expectCode(() => decoder.decodePlc(100), 'CODEC_BAD_ARGUMENT');
    expectCode(() => decoder.decodePlc(16000), 'CODEC_BAD_ARGUMENT');
    expect(decoder.decodePlc(40).length).toBe(40);
    expectCode(() => decoder.decodeDred(320), 'CODEC_BAD_ARGUMENT');
    decoder.close();
  });
});
