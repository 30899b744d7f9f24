import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { copyPrefix } from '../../src/media/bytes.ts';
import { createSpillRing, RingReceiver, RingSender } from '../../src/media/spill-ring.ts';
import { runAllocProbe } from '../fixtures/run-alloc-probe.ts';

const probe = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'hot-path-alloc-probe.ts');
const run = (...args: string[]) => runAllocProbe<{ bytesPerPacket: number; gcs: number; failures: number }>(probe, ...args);

describe('copyPrefix', () => {
  it('copies a prefix on every branch and refuses what does not fit', () => {
    const src = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    for (const len of [0, 1, 31, 32, 33, 200, 300]) {
      const dst = Buffer.alloc(310, 0xee);
      copyPrefix(src, len, dst, 5);
      expect([...dst.subarray(5, 5 + len)]).toEqual([...src.subarray(0, len)]);
      expect(dst[4]).toBe(0xee);
      expect(dst[5 + len]).toBe(0xee); // nothing past the prefix (Buffer#fill would repeat src)
    }
    expect(() => copyPrefix(src, 301, Buffer.alloc(400), 0)).toThrow(RangeError);
    expect(() => copyPrefix(src, 100, Buffer.alloc(120), 30)).toThrow(RangeError);
  });
});

describe('spill ring scratch', () => {
  it('hands each payload on with its own length and bytes, and refuses a range outside the ring', () => {
    const sab = createSpillRing(4096);
    const sender = new RingSender(sab);
    const seen: number[][] = [];
    let outside: unknown = null;
    const receiver = new RingReceiver(sab, (buf, at, len, copy) => {
      seen.push([...copy(at + 4, len - 4)]);
      try {
        copy(at, 1 << 20);
      } catch (error) {
        outside = error;
      }
    });
    const record = Buffer.alloc(64);
    for (let n = 0; n < 200; n++) {
      const len = 8 + 4 * (n % 14);
      record.writeUInt16LE(len, 0);
      record[2] = 1;
      for (let k = 4; k < len; k++) record[k] = (n + k) & 0xff;
      expect(sender.write(record, len)).toBe(true);
      receiver.drain();
      expect(seen.at(-1)).toEqual([...record.subarray(4, len)]);
    }
    expect(seen).toHaveLength(200);
    expect(outside).toBeInstanceOf(RangeError);
    receiver.close();
    sender.close();
  });
});

describe('media hot paths allocate nothing per packet (measured in a child process)', () => {
  for (const part of ['copy', 'nack', 'ring', 'udp']) {
    it(part, () => {
      const control = run(part, '--control');
      // The probe sees one Node 20 partial Buffer#copy per packet (a view, ~96 bytes).
      expect(control.gcs).toBe(0);
      expect(control.failures).toBe(0);
      expect(control.bytesPerPacket).toBeGreaterThan(16);
      const result = run(part);
      expect(result.failures).toBe(0);
      expect(result.gcs).toBe(0);
      // No heap object is smaller than 8 bytes: below 1 byte per packet means none per packet.
      expect(result.bytesPerPacket).toBeLessThan(1);
    }, 60_000);
  }
});
