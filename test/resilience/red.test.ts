import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Red } from 'werift';
import { RED_MAX_TS_OFFSET, RedPacketizer, RedReader } from '../../src/media/red.ts';
import { RedPolicy } from '../../src/media/red-policy.ts';
import { RetransmitHistory } from '../../src/media/nack.ts';
import { SlotStream } from '../../src/media/slot-stream.ts';
import { runAllocProbe } from '../fixtures/run-alloc-probe.ts';

const OPUS = 111;

function frame(n: number, length = 40): Buffer {
  return Buffer.alloc(length, n & 0xff);
}

describe('RedPacketizer / RedReader (RFC 2198)', () => {
  it('builds distance-2 RED that werift (and our reader) split into the right frames and timestamps', () => {
    const red = new RedPacketizer();
    const reader = new RedReader();
    let last: Buffer | null = null;
    for (let i = 0; i < 5; i++) last = red.build(frame(i, 30 + i), 1000 + i, 48_000 + 960 * i, OPUS, 2);
    const payload = Buffer.from(last!);
    expect(reader.parse(payload)).toBe(true);
    expect(reader.count).toBe(3);
    expect([...reader.tsOffset.subarray(0, 3)]).toEqual([1920, 960, 0]);
    expect([...reader.length.subarray(0, 3)]).toEqual([32, 33, 34]);
    expect([...reader.payloadType.subarray(0, 3)]).toEqual([OPUS, OPUS, OPUS]);
    expect(payload[reader.primaryStart]).toBe(4);
    // werift's own parser (what its receivers use) agrees.
    const parsed = Red.deSerialize(payload);
    expect(parsed.blocks.map((b) => [b.timestampOffset ?? 0, b.block.length, b.block[0]])).toEqual([
      [1920, 32, 2],
      [960, 33, 3],
      [0, 34, 4],
    ]);
  });

  it('uses only the contiguous run before the primary: a gap upstream leaves older frames out', () => {
    const red = new RedPacketizer();
    const reader = new RedReader();
    red.build(frame(1), 10, 960, OPUS, 2);
    // seq 11 never went out on this output
    red.build(frame(3), 12, 2880, OPUS, 2);
    const p = Buffer.from(red.build(frame(4), 13, 3840, OPUS, 2)!);
    reader.parse(p);
    expect(reader.count).toBe(2); // 12 only; 11 is missing so 10 cannot be placed by sequence number
    expect(reader.tsOffset[0]).toBe(960);
  });

  it('keeps RED valid across a slot switch: offsets come from the slot timeline, a pause beyond 14 bits drops the block', () => {
    const stream = new SlotStream({ ssrc: 5, initialSequence: 100, initialTimestamp: 1_000_000 });
    const red = new RedPacketizer();
    const reader = new RedReader();
    stream.setSource('a');
    for (let i = 0; i < 3; i++) {
      const h = stream.rewriteFields(0xaaaa, 500 + i, 7_000 + 960 * i, false, 20 * i)!;
      red.build(frame(i), h.sequenceNumber, h.timestamp, OPUS, 2);
    }
    // Switch to b right away (same wall time + 20 ms): the slot re-anchors one frame on.
    stream.setSource('b');
    const hb = stream.rewriteFields(0xbbbb, 9, 123_456, false, 60)!;
    const bTs = hb.timestamp; // the header object is reused by the next rewrite
    reader.parse(Buffer.from(red.build(frame(9), hb.sequenceNumber, hb.timestamp, OPUS, 2)!));
    expect(reader.count).toBe(3);
    expect([...reader.tsOffset.subarray(0, 2)]).toEqual([1920, 960]); // a's last two frames, where the slot put them
    // b pauses 1 s: the old frames are more than RED_MAX_TS_OFFSET away and are left out.
    stream.setSource('a');
    const ha = stream.rewriteFields(0xaaaa, 600, 99_000, false, 1060)!;
    expect((ha.timestamp - bTs) >>> 0).toBeGreaterThan(RED_MAX_TS_OFFSET);
    reader.parse(Buffer.from(red.build(frame(10), ha.sequenceNumber, ha.timestamp, OPUS, 2)!));
    expect(reader.count).toBe(1);
  });

  it('refuses malformed RED payloads without throwing', () => {
    const reader = new RedReader();
    expect(reader.parse(Buffer.alloc(0))).toBe(false);
    expect(reader.parse(Buffer.from([0x80 | OPUS, 0, 4]))).toBe(false); // truncated block header
    expect(reader.parse(Buffer.from([0x80 | OPUS, 0, 4 << 2, 200, OPUS, 1, 2]))).toBe(false); // block length past the end
    expect(reader.parse(Buffer.alloc(64, 0xff))).toBe(false); // F bit forever
    expect(reader.parse(Buffer.from([OPUS, 1, 2, 3]))).toBe(true);
    expect(reader.primaryLength).toBe(3);
  });

  it('allocates nothing per packet once warm (build and parse, measured in a child process)', () => {
    const probe = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'red-alloc-probe.ts');
    const run = (...args: string[]) => runAllocProbe<{ bytesPerPacket: number; gcs: number; failures: number }>(probe, ...args);
    const control = run('--control');
    // The probe is sensitive: one small object per packet, on purpose, shows up as > 16 bytes.
    expect(control.gcs).toBe(0);
    expect(control.bytesPerPacket).toBeGreaterThan(16);
    const result = run();
    expect(result.failures).toBe(0);
    expect(result.gcs).toBe(0);
    // No heap object is smaller than 8 bytes: below 1 byte per packet means none per packet.
    expect(result.bytesPerPacket).toBeLessThan(1);
  }, 60_000);
});

describe('RedPolicy (downlink loss → distance)', () => {
  it('turns on with loss, goes to distance 2 with more, and steps back down only after the hold', () => {
    const p = new RedPolicy({ lossOnPct: 2, lossDistance2Pct: 8, holdMs: 4000 });
    p.report(0, 50, 0);
    expect(p.distance).toBe(0);
    p.report(Math.round(0.05 * 256), 100, 1000);
    expect(p.distance).toBe(1);
    p.report(Math.round(0.15 * 256), 100, 2000);
    expect(p.distance).toBe(2);
    p.report(0, 100, 3000); // clean again, but within the hold
    expect(p.distance).toBe(2);
    p.report(0, 100, 6500);
    expect(p.distance).toBeLessThan(2);
    p.report(0, 100, 7500);
    expect(p.distance).toBe(0);
  });

  it('ignores reports that cover no packets (an idle slot), and `always` keeps distance 1', () => {
    const p = new RedPolicy();
    p.report(255, 0, 0);
    expect(p.distance).toBe(0);
    expect(new RedPolicy({ always: true }).distance).toBe(1);
    expect(new RedPolicy({ enabled: false, always: true }).distance).toBe(0);
    expect(() => new RedPolicy({ lossOnPct: 10, lossDistance2Pct: 5 })).toThrow(RangeError);
  });
});

describe('RetransmitHistory (audio NACK)', () => {
  it('finds recent packets, refuses old ones and high RTTs, and is bounded', () => {
    const h = new RetransmitHistory({ capacity: 8, maxRttMs: 100, maxAgeMs: 200 });
    const pkt = Buffer.alloc(100, 7);
    for (let s = 0; s < 20; s++) h.store(pkt, 60 + s, s, s * 20);
    expect(h.lookup(19, 400, 10)).toBeGreaterThanOrEqual(0);
    expect(h.packetLength(h.lookup(18, 400, 10))).toBe(78);
    expect(h.lookup(3, 400, 10)).toBe(-1); // overwritten: the history holds 8
    expect(h.lookup(19, 400, 250)).toBe(-1); // RTT too long to arrive in time
    expect(h.lookup(12, 800, 10)).toBe(-1); // too old
    expect(h.stats).toEqual({ requested: 5, resent: 0, missing: 1, tooLate: 2 });
  });
});
