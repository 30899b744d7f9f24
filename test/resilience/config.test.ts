import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config.ts';
import { mediaPlaneOptionsFromConfig } from '../../src/rooms/media-plane.ts';

describe('config media.resilience', () => {
  it('defaults: RED by loss and from publishers, audio NACK on, and they reach the rooms', () => {
    const config = loadConfig({ env: {} });
    expect(config.media.resilience).toEqual({
      red: { enabled: true, publisher: false, always: false, lossOnPct: 2, lossDistance2Pct: 8, holdMs: 4000 },
      nack: { enabled: true, capacity: 32, maxRttMs: 100, maxAgeMs: 200 },
    });
    const plane = mediaPlaneOptionsFromConfig({ ...config.media, mode: 'sfu' });
    expect(plane.room.resilience).toEqual(config.media.resilience);
  });

  it('refuses thresholds out of order and out of range with the key in the message', () => {
    expect(() => parseConfig({ media: { resilience: { red: { lossOnPct: 20, lossDistance2Pct: 5 } } } })).toThrow(/media\.resilience\.red: lossOnPct must be ≤ lossDistance2Pct/);
    expect(() => parseConfig({ media: { resilience: { nack: { capacity: 0 } } } })).toThrow(/media\.resilience\.nack\.capacity/);
    expect(() => parseConfig({ media: { resilience: { red: { lossOnPct: 120 } } } })).toThrow(/media\.resilience\.red\.lossOnPct/);
  });
});
