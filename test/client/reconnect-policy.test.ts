import { describe, expect, it } from 'vitest';
import { ExponentialBackoffPolicy } from '../../src/client/index.ts';

const ctx = (retryCount: number, elapsedMs = 0) => ({ retryCount, elapsedMs, reason: 'test', url: 'ws://x' });

describe('ExponentialBackoffPolicy', () => {
  it('never waits longer than the cap, however many retries', () => {
    const policy = new ExponentialBackoffPolicy({ initialDelayMs: 250, maxDelayMs: 10_000, random: () => 0.999999 });
    const delays = Array.from({ length: 60 }, (_, n) => policy.nextRetryDelayMs(ctx(n))!);
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000);
    // The window doubles until it hits the cap: 250, 500, 1000, … then stays at 10 s.
    expect(delays.slice(0, 4).map((d) => Math.round(d / 10) * 10)).toEqual([250, 500, 1000, 2000]);
    expect(delays[10]).toBeGreaterThan(9_990);
  });

  it('spreads retries over the whole window (full jitter), so clients do not reconnect in lockstep', () => {
    const policy = new ExponentialBackoffPolicy({ initialDelayMs: 250, maxDelayMs: 10_000 });
    const samples = Array.from({ length: 2_000 }, () => policy.nextRetryDelayMs(ctx(8))!);
    const distinct = new Set(samples).size;
    expect(distinct).toBeGreaterThan(1_000);
    expect(Math.min(...samples)).toBeLessThan(1_000);
    expect(Math.max(...samples)).toBeGreaterThan(9_000);
    for (const s of samples) expect(s).toBeGreaterThanOrEqual(0);
  });

  it('gives up (null) once the connection has been down for maxElapsedMs, and never sleeps past it', () => {
    const policy = new ExponentialBackoffPolicy({ maxElapsedMs: 60_000, random: () => 0.999 });
    expect(policy.nextRetryDelayMs(ctx(3, 59_000))).toBeLessThanOrEqual(1_000);
    expect(policy.nextRetryDelayMs(ctx(3, 60_000))).toBeNull();
    expect(policy.nextRetryDelayMs(ctx(40, 10 * 60_000))).toBeNull();
  });

  it('rejects nonsensical bounds', () => {
    expect(() => new ExponentialBackoffPolicy({ initialDelayMs: 0 })).toThrow(RangeError);
    expect(() => new ExponentialBackoffPolicy({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(RangeError);
  });
});
