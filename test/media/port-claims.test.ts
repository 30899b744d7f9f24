import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createPortClaims, releaseClaimsOf } from '../../src/media/port-allocator.ts';

// Regression: two media threads gathering at once probed the same UDP port; werift's rebind then
// failed with an unhandled EADDRINUSE that killed the thread. Threads now claim ports in one table.
function claimIn(claims: SharedArrayBuffer, count: number): Promise<{ threadId: number; ports: number[] }> {
  const worker = new Worker(new URL('./fixtures/port-claimer.mjs', import.meta.url), {
    workerData: { claims, min: 46000, max: 46099, count },
  });
  return new Promise((resolve, reject) => {
    worker.once('message', (m: { threadId: number; ports: number[] }) => {
      void worker.terminate();
      resolve(m);
    });
    worker.once('error', reject);
  });
}

describe('UDP port claims shared by media threads', () => {
  it('never hands the same port to two threads gathering at once, and frees a dead thread’s ports', async () => {
    const claims = createPortClaims();
    const [a, b] = await Promise.all([claimIn(claims, 20), claimIn(claims, 20)]);
    const all = [...a.ports, ...b.ports];
    expect(new Set(all).size).toBe(40);
    for (const port of all) expect(port >= 46000 && port <= 46098).toBe(true);
    expect(releaseClaimsOf(claims, a.threadId)).toBe(20);
    expect(releaseClaimsOf(claims, a.threadId)).toBe(0);
    expect(releaseClaimsOf(claims, b.threadId)).toBe(20);
  }, 30_000);
});
