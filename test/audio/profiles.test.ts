import { describe, expect, it } from 'vitest';
import { OpusFrameEncoder } from '../../src/codec/frame-codecs.ts';
import { OPUS_PROFILES, ProfilePicker } from '../../src/codec/profiles.ts';
import { speechLikeFloat32 } from '../codec/signal.ts';

describe('Opus profiles', () => {
  it('low (16 kbps, FEC, 10 % expected loss) spends within ±20 % of its target on speech', () => {
    const seconds = 6;
    const speech = speechLikeFloat32(48_000, seconds);
    const enc = new OpusFrameEncoder(OPUS_PROFILES.low);
    let bytes = 0;
    for (let f = 0; (f + 1) * 960 <= speech.length; f++) bytes += enc.encode(speech.subarray(f * 960, (f + 1) * 960)).length;
    enc.close();
    const bps = (bytes * 8) / seconds;
    // Measured: ≈ 13.4 kbps (payload bytes only, no RTP/UDP headers).
    expect(bps).toBeGreaterThan(16_000 * 0.8);
    expect(bps).toBeLessThan(16_000 * 1.2);
    expect(enc.opus.closed).toBe(true);
  });

  it('the encoder carries each profile setting', () => {
    const enc = new OpusFrameEncoder(OPUS_PROFILES.low);
    expect(enc.opus.bitrate).toBe(16_000);
    expect(enc.opus.inbandFec).toBe(1);
    expect(enc.opus.packetLossPercent).toBe(10);
    expect(enc.opus.dtx).toBe(true);
    enc.applyProfile(OPUS_PROFILES.normal);
    expect(enc.opus.bitrate).toBe(32_000);
    expect(enc.opus.dtx).toBe(false);
    enc.close();
  });
});

describe('ProfilePicker', () => {
  it('steps down at once on loss and back up only after a quiet period (hysteresis)', () => {
    const picker = new ProfilePicker({ ceiling: 'high', upgradeAfterMs: 10_000 });
    expect(picker.profile.name).toBe('high');
    // RTCP RR fraction lost 20 % (51/256) for a few reports: straight to low.
    for (let t = 0; t < 3; t++) picker.update({ fractionLost: 51 / 256, nowMs: t * 1000 });
    expect(picker.profile.name).toBe('low');
    // Loss stops: the smoothed loss decays, but nothing changes for 10 s.
    let t = 3000;
    for (; t < 12_000; t += 1000) expect(picker.update({ fractionLost: 0, nowMs: t }).name).toBe('low');
    for (; t < 40_000 && picker.profile.name === 'low'; t += 1000) picker.update({ fractionLost: 0, nowMs: t });
    expect(picker.profile.name).toBe('normal');
    // Loss hovering at 3 % (between up and down thresholds) neither upgrades nor downgrades.
    for (let i = 0; i < 30; i++, t += 1000) picker.update({ fractionLost: 0.03, nowMs: t });
    expect(picker.profile.name).toBe('normal');
    // high → normal (first report) → low (second) → normal.
    expect(picker.toJSON().changes).toBe(3);
  });

  it('keeps the bitrate under the bandwidth estimate (REMB/TWCC)', () => {
    const picker = new ProfilePicker({ ceiling: 'high' });
    expect(picker.update({ bandwidthBps: 60_000, nowMs: 0 }).name).toBe('normal');
    expect(picker.update({ bandwidthBps: 30_000, nowMs: 1 }).name).toBe('low');
    expect(picker.update({ bandwidthBps: 10_000, nowMs: 2 }).name).toBe('low');
  });
});
