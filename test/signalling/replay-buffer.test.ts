import { describe, expect, it } from 'vitest';
import { ReplayBuffer } from '../../src/signalling/replay-buffer.ts';

const frame = (seq: number, size = 10): Uint8Array => new Uint8Array(size).fill(seq & 0xff);

describe('ReplayBuffer', () => {
  it('keeps the newest frames within the count bound, in order, across ring growth and wrap-around', () => {
    const buffer = new ReplayBuffer(100, 1 << 20);
    for (let seq = 1; seq <= 250; seq++) buffer.push(seq, frame(seq));
    expect(buffer.count).toBe(100);
    expect(buffer.firstSeq).toBe(151);
    const replay = buffer.since(200, 250);
    expect(replay?.map((f) => f[0])).toEqual(Array.from({ length: 50 }, (_, i) => (201 + i) & 0xff));
    expect(buffer.since(100, 250)).toBeNull(); // 101…150 are gone: a gap
    expect(buffer.since(250, 250)).toEqual([]);
  });

  it('keeps within the byte bound and frees acked frames', () => {
    const buffer = new ReplayBuffer(1000, 1000);
    for (let seq = 1; seq <= 30; seq++) buffer.push(seq, frame(seq, 100));
    expect(buffer.count).toBe(10);
    expect(buffer.bytes).toBe(1000);
    buffer.ack(25);
    expect(buffer.count).toBe(5);
    expect(buffer.firstSeq).toBe(26);
    expect(buffer.since(25, 30)?.length).toBe(5);
  });
});
