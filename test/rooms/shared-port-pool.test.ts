import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import type { ServerMediaMessage } from '../../src/rooms/media-types.ts';
import { powerAt } from '../codec/signal.ts';

/**
 * One UDP port per worker (config `media.udpPort`) through the real pool: two worker threads, a
 * room on each, every peer of a thread on that thread's port (base or base + 1), unknown sources
 * counted in the pool's /metrics, and after a worker dies its rooms come back on the survivor's port.
 */
const SR = 48_000;
const BASE = 50450;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880, d: 990 };
const ROOMS: Record<string, string[]> = { left: ['a', 'b'], right: ['c', 'd'] };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function candidatePort(sdp: string): number {
  return Number(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/m.exec(sdp)![1]);
}

describe('one UDP port per worker thread, through the pool', () => {
  let plane: PooledMediaPlane;
  const clients = new Map<string, NodeMediaClient>();
  /** The host candidate port of each participant's latest offer. */
  const offeredPort = new Map<string, number>();
  const errors: unknown[] = [];

  afterAll(async () => {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await plane?.close();
  });

  const roomOf = (id: string): string => Object.keys(ROOMS).find((r) => ROOMS[r]!.includes(id))!;
  const hears = (id: string): boolean =>
    ROOMS[roomOf(id)]!.filter((o) => o !== id).every((o) => {
      const pcm = clients.get(id)!.audioFrom(o, 0.5);
      return pcm.length >= 0.25 * SR && powerAt(pcm, SR, TONES[o]!) > 0.01;
    });
  const unknownSource = async (): Promise<number> => {
    const text = await plane.pool.metrics.registry.metrics();
    return Number(/voxlink_srtp_rejected_total\{reason="unknown_source"\} (\d+)/.exec(text)?.[1] ?? 0);
  };

  it('each thread serves its rooms on its own port; strangers are counted; a dead thread’s rooms return on the survivor’s port', async () => {
    plane = createMediaPlane({
      room: { slots: 2, announcedIp: '127.0.0.1', rtcMinPort: 50460, rtcMaxPort: 50479, mode: 'sfu', udpPort: { base: BASE, count: 2 } },
      // Batched sends (config media.udpBatch, opt-in, with udpPort): every thread's sends queue
      // and go out with sendmmsg; the tones below are heard through them.
      pool: { workers: 2, statsIntervalMs: 250, udpBatch: true },
    });
    const deliver = (participantId: string, message: ServerMediaMessage): void => {
      if (message.op === 'media' && message.kind === 'offer' && message.sdp !== undefined) offeredPort.set(participantId, candidatePort(message.sdp));
      clients.get(participantId)?.handle(message).catch((error: unknown) => errors.push(error));
    };
    plane.attach({
      toParticipant: (_room, participantId, message) => deliver(participantId, message),
      toRoom: (room, message) => {
        for (const id of ROOMS[room] ?? []) deliver(id, message);
      },
    });
    await plane.pool.ready();
    const grants = { publish: true, subscribe: true, record: false, admin: false };
    for (const [room, ids] of Object.entries(ROOMS)) {
      for (const id of ids) {
        const client = new NodeMediaClient({
          room,
          signal: { send: (m) => void plane.signal(room, id, m).catch((error: unknown) => errors.push(error)) },
        });
        clients.set(id, client);
        await plane.join({ roomId: room, participantId: id, name: id, grants });
        await client.connected();
        client.publish(new ToneSource(TONES[id]!));
      }
    }
    await waitFor(() => [...clients.keys()].every(hears), 20_000, 'everyone hears their room');
    expect(plane.pool.execArgv).toContain('--test-udp-no-try-send');
    await waitFor(() => plane.pool.loads().filter((l) => l.udpBatch === true).length === 2, 5_000, 'both threads report batched sends');

    // Every peer of a room is on its thread's port; two threads, two ports.
    const threadPort = new Map<number, number>();
    for (const [room, ids] of Object.entries(ROOMS)) {
      const ports = new Set(ids.map((id) => offeredPort.get(id)));
      expect(ports.size, `${room}: one port for its peers`).toBe(1);
      const port = [...ports][0]!;
      expect([BASE, BASE + 1]).toContain(port);
      const thread = plane.workerOf(room)!;
      if (threadPort.has(thread)) expect(threadPort.get(thread)).toBe(port);
      threadPort.set(thread, port);
    }
    if (plane.workerOf('left') !== plane.workerOf('right')) expect(offeredPort.get('a')).not.toBe(offeredPort.get('c'));

    // A stranger's datagrams to both ports: dropped by the demux, counted in the pool's /metrics.
    const before = await unknownSource();
    const stranger = createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', r));
    for (let i = 0; i < 100; i++) {
      for (const port of [BASE, BASE + 1]) await new Promise<void>((r) => stranger.send(randomBytes(60), port, '127.0.0.1', () => r()));
    }
    stranger.close();
    // Only ports a thread holds count (a thread without rooms may hold none).
    const held = new Set(offeredPort.values()).size;
    await waitFor(async () => (await unknownSource()) - before >= 100 * held, 10_000, 'unknown sources in /metrics');
    expect((await unknownSource()) - before).toBe(100 * held);

    // Kill the thread of the left room: it comes back on the other thread, on that thread's port.
    const doomed = plane.workerOf('left')!;
    const survivorPort = [...threadPort].find(([t]) => t !== doomed)?.[1];
    await plane.pool.threads.find((t) => t.threadId === doomed)!.terminate();
    for (const c of clients.values()) c.clearRecordings();
    await waitFor(() => [...clients.keys()].every(hears), 30_000, 'everyone hears their room again');
    expect(plane.workerOf('left')).not.toBe(doomed);
    if (survivorPort !== undefined && plane.workerOf('left') === plane.workerOf('right')) {
      expect(offeredPort.get('a')).toBe(survivorPort);
      expect(offeredPort.get('b')).toBe(survivorPort);
    }
    expect(errors).toEqual([]);
  }, 90_000);
});
