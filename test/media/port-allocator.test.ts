import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { PortAllocator } from '../../src/media/port-allocator.ts';

describe('PortAllocator', () => {
  it('hands out distinct port pairs to concurrent joins, skips ports taken by others, and runs out cleanly', async () => {
    const busy = createSocket('udp4');
    await new Promise<void>((r) => busy.bind(42702, () => r()));
    try {
      const a = new PortAllocator(42700, 42709); // 5 pairs, one of them blocked by `busy`
      const ports = await Promise.all([a.acquire(), a.acquire(), a.acquire(), a.acquire()]);
      expect(new Set(ports).size).toBe(4);
      expect(ports).not.toContain(42702);
      for (const p of ports) expect((p - 42700) % 2).toBe(0);
      await expect(a.acquire()).rejects.toThrow(RangeError);
      a.release(ports[1]);
      expect(await a.acquire()).toBe(ports[1]);
      expect(a.inUse).toBe(4);
    } finally {
      busy.close();
    }
  });
});
