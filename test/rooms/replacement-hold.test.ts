import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { RoomMetrics } from '../../src/rooms/metrics.ts';
import type { MediaParticipant, ServerMediaMessage } from '../../src/rooms/media-types.ts';
import { FULL_GRANTS, waitFor } from '../media/harness.ts';

/**
 * A thread piscina starts in place of a dead one holds back its media code (workers/room.ts, the
 * real entry) while a surviving thread is up, so its start does not compete with the dead thread's
 * rooms being re-placed (about a core-second of module loading and DTLS key generation, at the
 * moment the re-joins' handshakes need the CPU). And no room goes to a thread that is still
 * starting while another is up.
 */
const participant = (roomId: string, participantId: string): MediaParticipant => ({ roomId, participantId, name: participantId, grants: FULL_GRANTS });

function plane(workers: number, replacementHoldMs: number, ports: number, roomWorkerCapacity = 0): PooledMediaPlane {
  return new PooledMediaPlane({
    room: { slots: 3, announcedIp: '127.0.0.1', bindIp: '127.0.0.1', rtcMinPort: ports, rtcMaxPort: ports + 49, mode: 'sfu' },
    pool: { workers, statsIntervalMs: 100, replacementHoldMs, metrics: new RoomMetrics(new Registry()) },
    roomWorkerCapacity,
  });
}

let current: PooledMediaPlane | null = null;
afterEach(async () => {
  await current?.close();
  current = null;
});

describe('a replacement media thread (real worker entry)', () => {
  it('waits out the hold before loading, and rooms opened meanwhile go to the surviving thread', { timeout: 60_000 }, async () => {
    const HOLD = 2500;
    const p = (current = plane(2, HOLD, 46500));
    p.attach({ toParticipant: () => {}, toRoom: () => {} });
    await p.pool.ready(30_000);
    await p.join(participant('first', 'a'));
    const doomed = p.workerOf('first')!;
    const survivor = p.pool.loads().find((l) => l.threadId !== doomed)!.threadId;
    const reportsFrom = new Map<number, number>();
    p.pool.on('load', (load) => {
      if (!reportsFrom.has(load.threadId)) reportsFrom.set(load.threadId, performance.now());
    });

    const killedAt = performance.now();
    await p.pool.threads.find((t) => t.threadId === doomed)!.terminate();
    await waitFor(() => p.pool.workerCount === 2, 10_000, 'the replacement thread');
    const replacement = p.pool.loads().find((l) => l.threadId !== survivor)!.threadId;
    expect(replacement).not.toBe(doomed);

    // A new room right now: the replacement has the lower load (none) but is not up; the survivor is.
    const offers: ServerMediaMessage[] = [];
    p.attach({ toParticipant: (_room, _id, m) => void offers.push(m), toRoom: () => {} });
    await p.join(participant('second', 'b'));
    expect(p.workerOf('second')).toBe(survivor);
    expect(p.workerOf('first')).toBe(survivor); // the dead thread's room was re-placed there too
    await waitFor(() => offers.some((m) => m.op === 'media' && m.kind === 'offer'), 10_000, 'the new room’s offer');

    // The replacement reports (is up) only after the hold.
    await p.pool.ready(30_000);
    const upAfterMs = reportsFrom.get(replacement)! - killedAt;
    expect(upAfterMs).toBeGreaterThanOrEqual(HOLD - 50);
  });

  it('lifts the hold when only the held thread can take a room (a spilled room’s next worker)', { timeout: 60_000 }, async () => {
    const p = (current = plane(2, 30_000, 46740, 1)); // one peer per worker: the second participant spills
    p.attach({ toParticipant: () => {}, toRoom: () => {} });
    await p.pool.ready(30_000);
    await p.join(participant('stage', 'a'));
    const home = p.workerOf('stage')!;
    const other = p.pool.loads().find((l) => l.threadId !== home)!.threadId;
    await p.pool.threads.find((t) => t.threadId === other)!.terminate(); // not the room's: nothing to re-place
    await waitFor(() => p.pool.workerCount === 2, 10_000, 'the replacement thread');
    const replacement = p.pool.loads().find((l) => l.threadId !== home)!.threadId;
    const joinedAt = performance.now();
    await p.join(participant('stage', 'b'));
    // Far below the 30 s hold: the spill needed the replacement, and the pool let it load.
    expect(performance.now() - joinedAt).toBeLessThan(20_000);
    expect(p.workerOfParticipant('stage', 'b')).toBe(replacement);
    expect(p.workerOfParticipant('stage', 'a')).toBe(home);
  });

  it('does not hold when no other thread is up: the dead thread’s rooms wait for the replacement', { timeout: 60_000 }, async () => {
    const p = (current = plane(1, 30_000, 46560));
    p.attach({ toParticipant: () => {}, toRoom: () => {} });
    await p.pool.ready(30_000);
    await p.join(participant('only', 'a'));
    const doomed = p.workerOf('only')!;
    const killedAt = performance.now();
    await p.pool.threads.find((t) => t.threadId === doomed)!.terminate();
    await waitFor(() => p.workerOf('only') !== undefined && p.workerOf('only') !== doomed, 20_000, 'the room on the replacement');
    await p.pool.ready(20_000);
    // Far below the 30 s hold this pool was given: the replacement loaded at once.
    expect(performance.now() - killedAt).toBeLessThan(20_000);
  });
});
