import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config.ts';
import { mediaPlaneOptionsFromConfig } from '../../src/rooms/media-plane.ts';

describe('config media.resilience', () => {
  it('defaults: RED by loss and from publishers, audio NACK on, and they reach the rooms', () => {
    const config = loadConfig({ env: {} });
    expect(config.media.resilience).toEqual({
      red: { enabled: true, publisher: false, always: false, lossOnPct: 2, lossDistance2Pct: 8, holdMs: 4000 },
      nack: { enabled: true, capacity: 32, maxRttMs: 100, maxAgeMs: 200 },
      dred: { enabled: true, lossOnPct: 5, lossOffPct: 2, minOnMs: 10_000 },
    });
    const plane = mediaPlaneOptionsFromConfig({ ...config.media, mode: 'sfu' });
    expect(plane.room.resilience).toEqual(config.media.resilience);
  });

  it('refuses thresholds out of order and out of range with the key in the message', () => {
    expect(() => parseConfig({ media: { resilience: { red: { lossOnPct: 20, lossDistance2Pct: 5 } } } })).toThrow(/media\.resilience\.red: lossOnPct must be ≤ lossDistance2Pct/);
    expect(() => parseConfig({ media: { resilience: { nack: { capacity: 0 } } } })).toThrow(/media\.resilience\.nack\.capacity/);
    expect(() => parseConfig({ media: { resilience: { red: { lossOnPct: 120 } } } })).toThrow(/media\.resilience\.red\.lossOnPct/);
    expect(() => parseConfig({ media: { resilience: { dred: { lossOnPct: 1, lossOffPct: 3 } } } })).toThrow(/media\.resilience\.dred: lossOffPct must be ≤ lossOnPct/);
  });

  it('DRED from the environment (VOXLINK_DRED*) reaches the rooms', () => {
    const config = loadConfig({ env: { VOXLINK_DRED: 'false', VOXLINK_DRED_LOSS_ON_PCT: '8', VOXLINK_DRED_LOSS_OFF_PCT: '3', VOXLINK_DRED_MIN_ON_MS: '5000' } });
    expect(config.media.resilience.dred).toEqual({ enabled: false, lossOnPct: 8, lossOffPct: 3, minOnMs: 5000 });
    expect(mediaPlaneOptionsFromConfig({ ...config.media, mode: 'sfu' }).room.resilience?.dred).toEqual(config.media.resilience.dred);
  });
});
