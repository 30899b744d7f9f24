import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { RoomMetrics } from '../../src/rooms/metrics.ts';
import type { MediaParticipant, MediaSink, ServerMediaMessage } from '../../src/rooms/media-types.ts';
import type { WorkerLoad } from '../../src/rooms/placement.ts';

const fixture = new URL('./fixtures/fake-room-worker.ts', import.meta.url).pathname;

function createPlane(workers: number): PooledMediaPlane {
  return new PooledMediaPlane({
    room: { slots: 3, announcedIp: '127.0.0.1', rtcMinPort: 46300, rtcMaxPort: 46399, mode: 'sfu' },
    pool: { workers, filename: fixture, statsIntervalMs: 100, opusModule: null, metrics: new RoomMetrics(new Registry()) },
  });
}

/** A sink that records what each participant was sent. */
function recordingSink(): MediaSink & { sent: Map<string, ServerMediaMessage[]> } {
  const sent = new Map<string, ServerMediaMessage[]>();
  const push = (key: string, message: ServerMediaMessage): void => {
    const list = sent.get(key) ?? [];
    list.push(message);
    sent.set(key, list);
  };
  return {
    sent,
    toParticipant: (_room, participantId, message) => push(participantId, message),
    toRoom: (room, message) => push(`room:${room}`, message),
  };
}

const participant = (roomId: string, participantId: string): MediaParticipant => ({
  roomId,
  participantId,
  name: participantId,
  grants: { publish: true, subscribe: true, record: false, admin: false },
});

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The next load report from every live thread, taken after this call. */
async function freshLoads(plane: PooledMediaPlane): Promise<WorkerLoad[]> {
  const seen = new Map<number, WorkerLoad>();
  const listener = (load: WorkerLoad): void => void seen.set(load.threadId, load);
  plane.pool.on('load', listener);
  try {
    await until(() => plane.pool.loads().every((l) => seen.has(l.threadId)));
  } finally {
    plane.pool.off('load', listener);
  }
  return [...seen.values()];
}

/** The first load report from now on that matches. */
async function nextLoad(plane: PooledMediaPlane, matches: (load: WorkerLoad) => boolean, timeoutMs = 5000): Promise<WorkerLoad> {
  let found: WorkerLoad | null = null;
  const listener = (load: WorkerLoad): void => {
    if (found === null && matches(load)) found = load;
  };
  plane.pool.on('load', listener);
  try {
    await until(() => found !== null, timeoutMs);
  } finally {
    plane.pool.off('load', listener);
  }
  return found!;
}

let plane: PooledMediaPlane | null = null;
afterEach(async () => {
  await plane?.close();
  plane = null;
});

describe('room pool and media plane (fixture rooms, real threads)', () => {
  it('places a new room on the thread with the lower measured load, not the fewer rooms', async () => {
    plane = createPlane(2);
    await plane.pool.ready();
    await plane.join(participant('busy-1', 'a'));
    const busyThread = plane.workerOf('busy-1')!;
    // A report made after the join that shows the room's work (not a stale one from before it).
    await nextLoad(plane, (l) => l.threadId === busyThread && l.rooms === 1 && l.pps > 0 && l.elu > 0.3);
    await plane.join(participant('quiet-1', 'b'));
    expect(plane.workerOf('quiet-1')).not.toBe(busyThread);
    // Now each thread hosts one room; task count would call it a tie, measured load does not.
    await freshLoads(plane);
    await plane.join(participant('quiet-2', 'c'));
    expect(plane.workerOf('quiet-2')).not.toBe(busyThread);
    const loads = await freshLoads(plane);
    expect(loads.find((l) => l.threadId === busyThread)?.rooms).toBe(1);
    expect(loads.find((l) => l.threadId !== busyThread)?.rooms).toBe(2);
    const metrics = await plane.pool.metrics.registry.metrics();
    expect(metrics).toMatch(new RegExp(`voxlink_worker_rooms\\{worker="${busyThread}"\\} 1`));
    expect(metrics).toMatch(/voxlink_worker_event_loop_utilization\{worker="\d+"\} 0\.\d+/);
    expect(metrics).toMatch(/voxlink_room_participants\{room="quiet-2"\} 1/);
  });

  it('opens a room task on first join, closes it on last leave, and leaks nothing', async () => {
    const before = process.getActiveResourcesInfo();
    plane = createPlane(2);
    const sink = recordingSink();
    plane.attach(sink);
    await plane.pool.ready();
    for (const room of ['r1', 'r2', 'r3']) {
      await plane.join(participant(room, `${room}-a`));
      await plane.join(participant(room, `${room}-b`));
    }
    expect(plane.stats()).toEqual({ workers: 2, rooms: 3 });
    expect(sink.sent.get('r2-b')?.[0]).toMatchObject({ op: 'media', room: 'r2', kind: 'offer' });
    const busy = await freshLoads(plane);
    expect(busy.reduce((n, l) => n + l.rooms, 0)).toBe(3);
    expect(busy.reduce((n, l) => n + l.participants, 0)).toBe(6);

    for (const room of ['r1', 'r2', 'r3']) {
      await plane.leave(room, `${room}-a`);
      await plane.leave(room, `${room}-a`); // idempotent
      await plane.leave(room, `${room}-b`);
    }
    expect(plane.stats().rooms).toBe(0);
    expect(plane.pool.roomCount).toBe(0);
    // The threads themselves say their rooms are gone (tasks ended, rooms closed).
    const idle = await freshLoads(plane);
    expect(idle.map((l) => [l.rooms, l.participants])).toEqual([[0, 0], [0, 0]]);
    await expect(plane.signal('r1', 'r1-a', { op: 'media', room: 'r1', kind: 'ice_restart' })).rejects.toMatchObject({
      code: 'ROOM_NOT_FOUND',
    });

    await plane.close();
    await plane.close(); // idempotent
    await expect(plane.join(participant('r9', 'x'))).rejects.toMatchObject({ code: 'POOL_CLOSED' });
    plane = null;
    // No handle type (threads' ports, sockets, timers) has more instances than before the plane existed.
    const count = (list: string[]): Record<string, number> =>
      list.reduce<Record<string, number>>((acc, type) => ({ ...acc, [type]: (acc[type] ?? 0) + 1 }), {});
    const grown = (): string[] => {
      const now = count(process.getActiveResourcesInfo());
      const was = count(before);
      return Object.keys(now).filter((type) => now[type] > (was[type] ?? 0));
    };
    await until(() => grown().length === 0, 2000).catch(() => undefined);
    expect(grown()).toEqual([]);
  });

  it('re-places the rooms of a dead worker, re-joins everyone and sends media_reconnect', async () => {
    plane = createPlane(2);
    const sink = recordingSink();
    plane.attach(sink);
    await plane.pool.ready();
    await plane.join(participant('doomed', 'p1'));
    await plane.join(participant('doomed', 'p2'));
    await plane.setMuted('doomed', 'p2', true);
    const deadThread = plane.workerOf('doomed')!;
    const died: number[] = [];
    plane.pool.on('workerdied', (threadId) => died.push(threadId));
    sink.sent.clear();

    const worker = plane.pool.threads.find((t) => t.threadId === deadThread)!;
    const started = performance.now();
    await worker.terminate();

    await until(() => ['p1', 'p2'].every((id) => sink.sent.get(id)?.some((m) => m.op === 'media_reconnect')));
    const recoveredMs = performance.now() - started;
    for (const id of ['p1', 'p2']) {
      expect(sink.sent.get(id)![0]).toEqual({ op: 'media_reconnect', room: 'doomed', reason: 'worker_died' });
    }
    // The re-joins' offers go out at once, marked restart (the clients' peers were with the dead
    // thread), without waiting for the clients to ask.
    await until(() => ['p1', 'p2'].every((id) => sink.sent.get(id)!.some((m) => m.op === 'media')));
    for (const id of ['p1', 'p2']) {
      expect(sink.sent.get(id)).toEqual([
        { op: 'media_reconnect', room: 'doomed', reason: 'worker_died' },
        { op: 'media', room: 'doomed', kind: 'offer', sdp: `v=0 ${id}`, options: { restart: true } },
      ]);
    }
    // The SDK's ice_restart for the media_reconnect is answered by that offer, not by a second
    // fresh peer. A later ice_restart (after the answer) is a new request and gets its own; the
    // channel is ordered, so once that one's offer is here the first was handled without one.
    for (const id of ['p1', 'p2']) {
      await plane.signal('doomed', id, { op: 'media', room: 'doomed', kind: 'ice_restart' });
      await plane.signal('doomed', id, { op: 'media', room: 'doomed', kind: 'answer', sdp: `v=0 ${id} answer` });
      await plane.signal('doomed', id, { op: 'media', room: 'doomed', kind: 'ice_restart' });
    }
    await until(() => ['p1', 'p2'].every((id) => sink.sent.get(id)!.filter((m) => m.op === 'media').length >= 2));
    for (const id of ['p1', 'p2']) {
      expect(sink.sent.get(id)!.filter((m) => m.op === 'media')).toEqual([
        { op: 'media', room: 'doomed', kind: 'offer', sdp: `v=0 ${id}`, options: { restart: true } },
        { op: 'media', room: 'doomed', kind: 'offer', sdp: `v=0 ${id} restart`, options: { restart: true } },
      ]);
    }
    expect(died).toEqual([deadThread]);
    expect(plane.workerOf('doomed')).not.toBe(deadThread);
    expect(recoveredMs).toBeLessThan(3000);
    // Piscina replaced the dead thread, and both participants are in the room on its new thread.
    await until(() => plane!.pool.workerCount === 2, 15_000);
    const loads = await freshLoads(plane);
    expect(loads.reduce((n, l) => n + l.participants, 0)).toBe(2);
    expect(await plane.pool.metrics.registry.getSingleMetricAsString('voxlink_worker_deaths_total')).toMatch(/ 1$/m);
  });

  it('recovers a room when the only thread crashes: it waits for piscina’s replacement thread', async () => {
    plane = createPlane(1);
    const sink = recordingSink();
    plane.attach(sink);
    await plane.pool.ready();
    await plane.join(participant('crash-1', 'solo'));
    const first = plane.workerOf('crash-1')!;
    const died: number[] = [];
    plane.pool.on('workerdied', (threadId) => died.push(threadId));
    sink.sent.clear();
    // The fixture room throws an uncaught exception in the worker thread on any signal.
    await plane.signal('crash-1', 'solo', { op: 'media', room: 'crash-1', kind: 'candidate', candidate: null });
    await until(() => sink.sent.get('solo')?.some((m) => m.op === 'media_reconnect') === true, 15_000);
    expect(sink.sent.get('solo')).toEqual([{ op: 'media_reconnect', room: 'crash-1', reason: 'worker_died' }]);
    expect(died).toEqual([first]);
    expect(plane.workerOf('crash-1')).not.toBe(first);
    await until(() => plane!.pool.workerCount === 1, 15_000);
    expect(plane.stats()).toEqual({ workers: 1, rooms: 1 });
    // The replacement thread reports the re-placed room and its participant (its first report
    // may predate the task, which piscina queued until the thread was up).
    await until(() => plane!.pool.loads().some((l) => l.rooms === 1 && l.participants === 1), 5000);
  }, 30_000);

  it('fails the join with the room’s own error when the room cannot be created, without re-placing it', async () => {
    plane = createPlane(1);
    await plane.pool.ready();
    const died: number[] = [];
    plane.pool.on('workerdied', (threadId) => died.push(threadId));
    await expect(plane.join(participant('broken-1', 'x'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(plane.stats()).toEqual({ workers: 1, rooms: 0 });
    // The thread is fine and keeps serving other rooms.
    await plane.join(participant('fine-1', 'y'));
    expect(died).toEqual([]);
    expect(await plane.pool.metrics.registry.getSingleMetricAsString('voxlink_room_recoveries_total')).toMatch(/ 0$/m);
  });
});
