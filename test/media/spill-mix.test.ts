import { afterAll, describe, expect, it } from 'vitest';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { powerAt } from '../codec/signal.ts';

/**
 * A `mix` room spread over two workers (docs/media.md "Rooms over several workers"): capacity 2,
 * so a and b are on the home worker, c and d on a spill worker. a (440 Hz, home) and c (880 Hz,
 * spill) speak. Each worker mixes for its own listeners from every publisher's packets: the
 * listeners b and d hear both tones in their one mix track, and each speaker hears the other
 * speaker but not themself (N−1).
 */

const SR = 48_000;
const ROOM = 'choir';
const TONES: Record<string, number> = { a: 440, c: 880 };
const PRESENT = 0.01;
const ABSENT = 0.002;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Median power of `freq` over 100 ms windows of the last second of the mix track. */
function power(c: NodeMediaClient, freq: number): number {
  const pcm = c.audioOfSlot(c.mixSlot ?? 0, 1);
  const w = SR / 10;
  const powers: number[] = [];
  for (let i = 0; i + w <= pcm.length; i += w) powers.push(powerAt(pcm.subarray(i, i + w), SR, freq));
  powers.sort((x, y) => x - y);
  return powers[Math.floor(powers.length / 2)] ?? 0;
}

describe('a mix room spread over two workers (capacity 2)', () => {
  let plane: PooledMediaPlane;
  const clients = new Map<string, NodeMediaClient>();
  const errors: unknown[] = [];

  afterAll(async () => {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await plane?.close();
  });

  it('listeners on both workers hear both speakers in their mix; speakers hear the other, not themself', async () => {
    plane = createMediaPlane({
      room: { slots: 3, announcedIp: '127.0.0.1', rtcMinPort: 57000, rtcMaxPort: 57099, mode: 'mix' },
      pool: { workers: 2 },
      roomWorkerCapacity: 2,
    });
    plane.attach({
      toParticipant: (_room, id, message) => void clients.get(id)?.handle(message).catch((e: unknown) => errors.push(e)),
      toRoom: (_room, message) => {
        for (const c of clients.values()) void c.handle(message).catch((e: unknown) => errors.push(e));
      },
    });
    await plane.pool.ready();
    for (const id of ['a', 'b', 'c', 'd']) {
      const c = new NodeMediaClient({ room: ROOM, signal: { send: (m) => void plane.signal(ROOM, id, m).catch((e: unknown) => errors.push(e)) } });
      clients.set(id, c);
      await plane.join({ roomId: ROOM, participantId: id, name: id, grants: { publish: true, subscribe: true, record: false, admin: false } });
      await c.connected();
    }
    expect(plane.shardsOf(ROOM).map((s) => s.participants)).toEqual([2, 2]);
    clients.get('a')!.publish(new ToneSource(TONES.a!));
    clients.get('c')!.publish(new ToneSource(TONES.c!));
    const expected: Record<string, { hears: string[]; not: string[] }> = {
      a: { hears: ['c'], not: ['a'] },
      b: { hears: ['a', 'c'], not: [] },
      c: { hears: ['a'], not: ['c'] },
      d: { hears: ['a', 'c'], not: [] },
    };
    const ok = (id: string): boolean => {
      const c = clients.get(id)!;
      return expected[id]!.hears.every((o) => power(c, TONES[o]!) > PRESENT) && expected[id]!.not.every((o) => power(c, TONES[o]!) < ABSENT);
    };
    const end = Date.now() + 20_000;
    while (!['a', 'b', 'c', 'd'].every(ok)) {
      if (Date.now() > end) {
        const state = [...clients.entries()].map(([id, c]) => [id, power(c, 440).toFixed(4), power(c, 880).toFixed(4)]);
        throw new Error(`mixes not as expected: ${JSON.stringify(state)}`);
      }
      await sleep(200);
    }
    expect(errors).toEqual([]);
  }, 60_000);
});
