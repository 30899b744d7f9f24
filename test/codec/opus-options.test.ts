import { describe, expect, it } from 'vitest';
import {
  OpusApplication,
  OpusBandwidth,
  OpusDecoder,
  OpusEncoder,
  OpusFrameDuration,
  OpusSignal,
  getOpusPacketInfo,
  opusVersion,
} from '../../src/codec/index.ts';
import { toneFloat32 } from './signal.ts';

describe('Opus options', () => {
  it('every encoder option given at construction reads back through OPUS_GET_*', () => {
    const encoder = new OpusEncoder({
      sampleRate: 48000,
      channels: 2,
      application: OpusApplication.AUDIO,
      bitrate: 64000,
      vbr: false,
      vbrConstraint: false,
      complexity: 7,
      maxBandwidth: OpusBandwidth.SUPERWIDEBAND,
      bandwidth: OpusBandwidth.WIDEBAND,
      signal: OpusSignal.MUSIC,
      inbandFec: 2,
      packetLossPercent: 15,
      dtx: true,
      dredDuration: 50,
      lsbDepth: 16,
      predictionDisabled: true,
      phaseInversionDisabled: true,
      forceChannels: 1,
      expertFrameDuration: OpusFrameDuration.MS_10,
    });
    // OPUS_GET_BANDWIDTH reports the bandwidth actually coded, known after the first frame.
    encoder.encode(toneFloat32(440, 48000, 480, { channels: 2 }));
    expect({
      application: encoder.application,
      bitrate: encoder.bitrate,
      vbr: encoder.vbr,
      vbrConstraint: encoder.vbrConstraint,
      complexity: encoder.complexity,
      maxBandwidth: encoder.maxBandwidth,
      bandwidth: encoder.bandwidth,
      signal: encoder.signal,
      inbandFec: encoder.inbandFec,
      packetLossPercent: encoder.packetLossPercent,
      dtx: encoder.dtx,
      dredDuration: encoder.dredDuration,
      lsbDepth: encoder.lsbDepth,
      predictionDisabled: encoder.predictionDisabled,
      phaseInversionDisabled: encoder.phaseInversionDisabled,
      forceChannels: encoder.forceChannels,
      expertFrameDuration: encoder.expertFrameDuration,
    }).toEqual({
      application: OpusApplication.AUDIO,
      bitrate: 64000,
      vbr: false,
      vbrConstraint: false,
      complexity: 7,
      maxBandwidth: OpusBandwidth.SUPERWIDEBAND,
      bandwidth: OpusBandwidth.WIDEBAND,
      signal: OpusSignal.MUSIC,
      inbandFec: 2,
      packetLossPercent: 15,
      dtx: true,
      dredDuration: 50,
      lsbDepth: 16,
      predictionDisabled: true,
      phaseInversionDisabled: true,
      forceChannels: 1,
      expertFrameDuration: OpusFrameDuration.MS_10,
    });
    encoder.close();
  });

  it('setters round-trip across the documented ranges', () => {
    // Stereo: libopus caps the bitrate at 300 kb/s per channel.
    const encoder = new OpusEncoder({ channels: 2 });
    for (const bitrate of [6000, 16000, 32000, 128000, 510000]) {
      encoder.bitrate = bitrate;
      expect(encoder.bitrate).toBe(bitrate);
    }
    encoder.bitrate = 'max';
    expect(encoder.bitrate).toBeGreaterThan(510000);
    encoder.bitrate = 'auto';
    expect(encoder.bitrate).toBeGreaterThan(0);
    for (let complexity = 0; complexity <= 10; complexity++) {
      encoder.complexity = complexity;
      expect(encoder.complexity).toBe(complexity);
    }
    for (const bw of [OpusBandwidth.NARROWBAND, OpusBandwidth.MEDIUMBAND, OpusBandwidth.WIDEBAND, OpusBandwidth.FULLBAND]) {
      encoder.maxBandwidth = bw;
      expect(encoder.maxBandwidth).toBe(bw);
    }
    for (const signal of [OpusSignal.AUTO, OpusSignal.VOICE, OpusSignal.MUSIC]) {
      encoder.signal = signal;
      expect(encoder.signal).toBe(signal);
    }
    for (const fec of [true, false] as const) {
      encoder.inbandFec = fec;
      expect(encoder.inbandFec).toBe(fec ? 1 : 0);
    }
    encoder.vbr = true;
    encoder.vbrConstraint = true;
    expect([encoder.vbr, encoder.vbrConstraint]).toEqual([true, true]);
    encoder.forceChannels = 'auto';
    expect(encoder.forceChannels).toBe('auto');
    encoder.dredDuration = 104;
    expect(encoder.dredDuration).toBe(104);
    encoder.frameDurationMs = 40;
    expect(encoder.frameSize).toBe(1920);
    expect(encoder.pcmIn.length).toBe(1920 * 2);
    encoder.close();
  });

  it('a restricted bandwidth shows in the packets the encoder produces', () => {
    const encoder = new OpusEncoder({ sampleRate: 48000, bitrate: 24000, maxBandwidth: OpusBandwidth.WIDEBAND });
    let packet = new Uint8Array();
    const tone = toneFloat32(300, 48000, 960 * 20);
    for (let i = 0; i < 20; i++) packet = encoder.encode(tone.subarray(i * 960, (i + 1) * 960)).slice();
    const info = getOpusPacketInfo(packet);
    expect(info).toEqual({ samples: 960, frames: 1, channels: 1, bandwidth: OpusBandwidth.WIDEBAND });
    expect(encoder.bandwidth).toBe(OpusBandwidth.WIDEBAND);
    encoder.close();
  });

  it('lookahead, DTX state and version are reported', () => {
    const voip = new OpusEncoder({ sampleRate: 48000, application: OpusApplication.VOIP, dtx: true });
    const lowDelay = new OpusEncoder({ sampleRate: 48000, application: OpusApplication.RESTRICTED_LOWDELAY });
    // RESTRICTED_LOWDELAY drops the 4 ms SILK/delay compensation: 2.5 ms vs 6.5 ms at 48 kHz.
    expect(voip.lookahead).toBe(312);
    expect(lowDelay.lookahead).toBe(120);
    const silence = new Float32Array(960);
    const sizes: number[] = [];
    for (let i = 0; i < 50; i++) sizes.push(voip.encode(silence).length);
    expect(voip.inDtx).toBe(true);
    expect(Math.min(...sizes.slice(20))).toBeLessThanOrEqual(2);
    expect(opusVersion()).toBe('libopus 1.5.2');
    voip.close();
    lowDelay.close();
  });

  it('decoder options and getters: gain, complexity, pitch, last packet duration', () => {
    const decoder = new OpusDecoder({ sampleRate: 48000, gain: -256, complexity: 6, phaseInversionDisabled: true });
    expect([decoder.gain, decoder.complexity, decoder.phaseInversionDisabled]).toEqual([-256, 6, true]);
    const reference = new OpusDecoder({ sampleRate: 48000 });
    const encoder = new OpusEncoder({ sampleRate: 48000, bitrate: 32000, frameDurationMs: 40 });
    const tone = toneFloat32(200, 48000, 1920 * 10);
    let quieter = 0;
    let louder = 0;
    for (let i = 0; i < 10; i++) {
      const packet = encoder.encode(tone.subarray(i * 1920, (i + 1) * 1920)).slice();
      const a = decoder.decode(packet).slice();
      const b = reference.decode(packet);
      if (i < 3) continue;
      for (let k = 0; k < a.length; k++) {
        quieter += a[k] * a[k];
        louder += b[k] * b[k];
      }
    }
    // -256 Q8 dB = -1 dB = power × 0.794.
    expect(quieter / louder).toBeCloseTo(10 ** -0.1, 1);
    expect(decoder.lastPacketDuration).toBe(1920);
    // 200 Hz voiced tone: pitch period 240 samples at 48 kHz.
    expect(Math.abs(reference.pitch - 240)).toBeLessThan(10);
    reference.reset();
    expect(reference.lastPacketDuration).toBe(0);
    decoder.close();
    reference.close();
    encoder.close();
  });
});
