import { describe, expect, it } from 'vitest';
import { SlotStream } from '../../src/media/slot-stream.ts';
import { readAudioLevel, readMarker, readSequenceNumber, readSsrc, readTimestamp, rtpPayloadOffset } from '../../src/media/rtp.ts';
import {
  BAD_PADDING,
  OPUS_TWO_BYTE_EXT,
  OPUS_WITH_LEVEL,
  OPUS_WITH_LEVEL_NEXT,
  RTCP_RR,
  TRUNCATED_CSRC,
  TRUNCATED_EXTENSION,
  TRUNCATED_HEADER,
  WITH_CSRC_AND_PADDING,
  WRONG_VERSION,
  rtp,
} from './fixtures/rtp.ts';

const SLOT_SSRC = 0x11223344;

/** Feeds packets and returns what left the slot: [seq, ts, marker] per forwarded packet. */
function run(stream: SlotStream, packets: { pkt: Uint8Array; at: number }[]): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  for (const { pkt, at } of packets) {
    const copy = pkt.slice();
    if (stream.rewrite(copy, at) !== null) out.push([readSequenceNumber(copy), readTimestamp(copy), readMarker(copy)]);
  }
  return out;
}

describe('RTP parsing on fixtures', () => {
  it('finds payload offsets and audio levels in well-formed packets', () => {
    expect(rtpPayloadOffset(OPUS_WITH_LEVEL)).toBe(20);
    expect(readAudioLevel(OPUS_WITH_LEVEL, 1)).toBe(30);
    expect(readAudioLevel(OPUS_WITH_LEVEL_NEXT, 1)).toBe(40);
    expect(readAudioLevel(OPUS_WITH_LEVEL, 2)).toBe(-1);
    expect(readAudioLevel(OPUS_TWO_BYTE_EXT, 1)).toBe(50);
    expect(rtpPayloadOffset(WITH_CSRC_AND_PADDING)).toBe(20);
    expect(readSsrc(OPUS_WITH_LEVEL)).toBe(0xdeadbeef);
  });

  it('rejects truncated, wrong-version, RTCP and bad-padding packets', () => {
    for (const bad of [TRUNCATED_HEADER, TRUNCATED_EXTENSION, TRUNCATED_CSRC, WRONG_VERSION, RTCP_RR, BAD_PADDING, new Uint8Array(0)]) {
      expect(rtpPayloadOffset(bad)).toBe(-1);
    }
  });
});

describe('SlotStream', () => {
  it('rewrites SSRC, sequence number and timestamp in place, keeping the payload', () => {
    const s = new SlotStream({ ssrc: SLOT_SSRC, initialSequence: 500, initialTimestamp: 1000 });
    s.setSource('alice');
    const a = OPUS_WITH_LEVEL.slice();
    const b = OPUS_WITH_LEVEL_NEXT.slice();
    expect(s.rewrite(a, 0)).not.toBeNull();
    expect(s.rewrite(b, 20)).not.toBeNull();
    expect(readSsrc(a)).toBe(SLOT_SSRC);
    expect([readSequenceNumber(a), readSequenceNumber(b)]).toEqual([500, 501]);
    expect([readTimestamp(a), readTimestamp(b)]).toEqual([1000, 1960]);
    expect(readAudioLevel(b, 1)).toBe(40); // extensions untouched
    expect(Buffer.from(b.subarray(20)).toString('hex')).toBe('780102030405');
  });

  it('drops truncated and garbage packets without throwing, and counts them', () => {
    const s = new SlotStream({ ssrc: SLOT_SSRC });
    s.setSource('alice');
    const garbage = [TRUNCATED_HEADER, TRUNCATED_EXTENSION, TRUNCATED_CSRC, WRONG_VERSION, RTCP_RR, BAD_PADDING];
    for (const g of garbage) expect(s.rewrite(g.slice(), 0)).toBeNull();
    // Random bytes: never a crash, and every accepted one is a structurally valid RTP packet.
    let seed = 12345;
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const len = i % 64;
      const buf = new Uint8Array(len);
      for (let j = 0; j < len; j++) buf[j] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
      const before = rtpPayloadOffset(buf);
      const h = s.rewrite(buf, i);
      if (h !== null) {
        accepted++;
        expect(before).toBeGreaterThanOrEqual(12);
      }
    }
    const stats = s.toJSON();
    expect(stats.droppedMalformed).toBeGreaterThanOrEqual(garbage.length);
    expect(stats.droppedMalformed + accepted + stats.droppedLate + stats.droppedDuplicate).toBe(garbage.length + 5000);
  });

  it('keeps sequence numbers gapless and timestamps continuous across a speaker switch', () => {
    const s = new SlotStream({ ssrc: SLOT_SSRC, initialSequence: 65534, initialTimestamp: 0xffffff00 });
    s.setSource('alice');
    const packets: { pkt: Uint8Array; at: number }[] = [];
    for (let i = 0; i < 5; i++) packets.push({ pkt: rtp(100 + i, 5000 + i * 960, 0xaaaa), at: i * 20 });
    const first = run(s, packets);
    s.setSource('bob');
    // Bob's clock and numbering are unrelated; he starts 30 ms after Alice's last packet.
    const bob = run(s, [
      { pkt: rtp(40000, 9_000_000, 0xbbbb), at: 110 },
      { pkt: rtp(40001, 9_000_960, 0xbbbb), at: 130 },
    ]);
    const all = [...first, ...bob];
    for (let i = 1; i < all.length; i++) {
      expect((all[i][0] - all[i - 1][0]) & 0xffff).toBe(1);
      const dts = (all[i][1] - all[i - 1][1]) >>> 0;
      expect(dts).toBeGreaterThan(0);
      expect(dts).toBeLessThan(0x80000000);
    }
    // The switch advanced the clock by the 30 ms of wall time (1440 samples at 48 kHz), marked M=1.
    expect((bob[0][1] - first[4][1]) >>> 0).toBe(1440);
    expect(bob[0][2]).toBe(true);
    expect(s.toJSON().switches).toBe(1);
  });

  it('counts a switch gap in its own clock after setClock (G.711 slots: 8 kHz, 160 per frame)', () => {
    const s = new SlotStream({ ssrc: SLOT_SSRC });
    s.setClock(8000, 160);
    s.setSource('a');
    const a = run(s, [
      { pkt: rtp(1, 100, 1), at: 0 },
      { pkt: rtp(2, 260, 1), at: 20 },
    ]);
    expect((a[1][1] - a[0][1]) >>> 0).toBe(160);
    s.setSource('b');
    // 100 ms after a's last packet: 800 samples at 8 kHz (it was 4800, six times too many).
    const b = run(s, [{ pkt: rtp(7, 777, 2), at: 120 }]);
    expect((b[0][1] - a[1][1]) >>> 0).toBe(800);
    s.setSource('c');
    // At once: one 20 ms frame of the 8 kHz clock.
    const c = run(s, [{ pkt: rtp(9, 5, 3), at: 120 }]);
    expect((c[0][1] - b[0][1]) >>> 0).toBe(160);
  });

  it('advances at least one frame when the next speaker arrives at once', () => {
    const s = new SlotStream({ ssrc: SLOT_SSRC });
    s.setSource('a');
    const a = run(s, [{ pkt: rtp(1, 100, 1), at: 0 }]);
    s.setSource('b');
    const b = run(s, [{ pkt: rtp(7, 777, 2), at: 0 }]);
    expect((b[0][1] - a[0][1]) >>> 0).toBe(960);
  });

  it('passes reordering and upstream loss through, drops duplicates and pre-switch stragglers', () => {
    const s = new SlotStream({ ssrc: SLOT_SSRC, initialSequence: 10 });
    s.setSource('a');
    const out = run(s, [
      { pkt: rtp(1, 0, 1), at: 0 },
      { pkt: rtp(3, 1920, 1), at: 40 }, // 2 lost or late
      { pkt: rtp(2, 960, 1), at: 41 }, // late: fills its own gap
      { pkt: rtp(3, 1920, 1), at: 42 }, // duplicate
      { pkt: rtp(5, 3840, 1), at: 80 }, // 4 lost upstream: the gap stays visible
    ]);
    expect(out.map((o) => o[0])).toEqual([10, 12, 11, 14]);
    s.setSource('b');
    const after = run(s, [
      { pkt: rtp(50, 0, 2), at: 100 },
      { pkt: rtp(49, 0, 2), at: 101 }, // older than b's first packet after the switch
    ]);
    expect(after.map((o) => o[0])).toEqual([15]);
    expect(s.toJSON()).toMatchObject({ droppedDuplicate: 1, droppedLate: 1 });
  });

  it('re-anchors when the source restarts its sequence (SSRC change or big jump)', () => {
    const s = new SlotStream({ ssrc: SLOT_SSRC, initialSequence: 0 });
    s.setSource('a');
    const out = run(s, [
      { pkt: rtp(1, 0, 1), at: 0 },
      { pkt: rtp(2, 960, 1), at: 20 },
      { pkt: rtp(30000, 123, 1), at: 40 }, // jump: sender restarted
      { pkt: rtp(7, 55, 9), at: 60 }, // new SSRC from the same participant
    ]);
    expect(out.map((o) => o[0])).toEqual([0, 1, 2, 3]);
    for (let i = 1; i < out.length; i++) expect((out[i][1] - out[i - 1][1]) >>> 0).toBeLessThan(0x80000000);
  });
});
