import { describe, expect, it } from 'vitest';
import { DredPolicy } from '../../src/media/dred-policy.ts';

/** RFC 3550 §6.4.1 fraction lost (8-bit fixed point) for a loss percentage. */
const fraction = (pct: number): number => Math.round((pct / 100) * 256);

describe('DredPolicy (per listener, from RTCP receiver reports)', () => {
  it('turns on at ≥ 5 % loss, stays on between 2 and 5 %, and turns off below 2 % only after 10 s on', () => {
    const p = new DredPolicy();
    p.report(fraction(3), 250, 0);
    expect(p.active).toBe(false); // below the on threshold
    p.report(fraction(6), 250, 1000);
    expect(p.active).toBe(true);
    expect(p.changes).toBe(1);
    p.report(fraction(3), 250, 2000);
    expect(p.active).toBe(true); // hysteresis: 3 % is above the off threshold
    p.report(fraction(0), 250, 5000);
    expect(p.lossPct).toBe(0);
    expect(p.active).toBe(true); // loss gone, but on for only 4 s
    p.report(fraction(0), 250, 10_999);
    expect(p.active).toBe(true);
    p.report(fraction(0), 250, 11_000);
    expect(p.active).toBe(false); // 10 s after it went on
    expect(p.changes).toBe(2);
  });

  it('weighs a report by the packets it covers, and ignores empty ones (an idle slot)', () => {
    const p = new DredPolicy();
    p.report(255, 0, 0);
    expect(p.reports).toBe(0);
    p.report(fraction(20), 10, 0); // 10 packets: a tenth of a full-weight report
    expect(p.lossPct).toBeCloseTo(2, 0);
    expect(p.active).toBe(false);
    p.report(fraction(20), 100, 100);
    expect(p.lossPct).toBeCloseTo(19.9, 0);
    expect(p.active).toBe(true);
  });

  it('does nothing when disabled, and honours configured thresholds', () => {
    const off = new DredPolicy({ enabled: false });
    off.report(fraction(50), 250, 0);
    expect(off.active).toBe(false);
    expect(off.reports).toBe(0);
    const p = new DredPolicy({ lossOnPct: 10, lossOffPct: 8, minOnMs: 0 });
    p.report(fraction(9), 250, 0);
    expect(p.active).toBe(false);
    p.report(fraction(12), 250, 1);
    expect(p.active).toBe(true);
    p.report(fraction(7), 250, 2);
    expect(p.active).toBe(false);
  });

  it('refuses thresholds the wrong way round with a clear error', () => {
    expect(() => new DredPolicy({ lossOnPct: 1, lossOffPct: 3 })).toThrow(/lossOffPct ≤ lossOnPct/);
    expect(() => new DredPolicy({ minOnMs: -1 })).toThrow(/minOnMs/);
  });
});
