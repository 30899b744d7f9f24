import { afterAll, describe, expect, it } from 'vitest';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';

/**
 * Video across the workers of a spread room (docs/media.md "Rooms over several workers"):
 * capacity 1, so the camera publisher is on the home worker and the subscriber on a spill worker.
 * The subscriber asks for the publisher's video and gets the frames as sent (payload bytes,
 * increasing stamps); the publisher gets a key-frame request through the link; unsubscribing
 * stops the flow.
 */

const ROOM = 'screening';
const GRANTS = { publish: true, subscribe: true, record: false, admin: false };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('video in a room spread over two workers', () => {
  let plane: PooledMediaPlane;
  const clients = new Map<string, NodeMediaClient>();
  const errors: unknown[] = [];

  afterAll(async () => {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await plane?.close();
  });

  it('a subscriber on the spill worker receives the home publisher’s video, with a key-frame request upstream', async () => {
    plane = createMediaPlane({
      room: { slots: 1, announcedIp: '127.0.0.1', rtcMinPort: 56800, rtcMaxPort: 56899, mode: 'sfu' },
      pool: { workers: 2 },
      roomWorkerCapacity: 1,
    });
    plane.attach({
      toParticipant: (_room, id, message) => void clients.get(id)?.handle(message).catch((e: unknown) => errors.push(e)),
      toRoom: (_room, message) => {
        for (const c of clients.values()) void c.handle(message).catch((e: unknown) => errors.push(e));
      },
    });
    await plane.pool.ready();
    const client = (id: string, publishVideo: boolean): NodeMediaClient => {
      const c = new NodeMediaClient({
        room: ROOM,
        publishVideo,
        decode: false,
        signal: { send: (m) => void plane.signal(ROOM, id, m).catch((e: unknown) => errors.push(e)) },
      });
      clients.set(id, c);
      return c;
    };
    const pub = client('pub', true);
    await plane.join({ roomId: ROOM, participantId: 'pub', name: 'pub', grants: GRANTS });
    const sub = client('sub', false);
    await plane.join({ roomId: ROOM, participantId: 'sub', name: 'sub', grants: GRANTS });
    await Promise.all([pub.connected(), sub.connected()]);
    expect(plane.workerOfParticipant(ROOM, 'pub')).not.toBe(plane.workerOfParticipant(ROOM, 'sub'));

    let keyframeRequests = 0;
    pub.on('keyframeRequest', () => keyframeRequests++);
    const frame = Buffer.alloc(1000, 0x42);
    let ts = 0;
    const camera = setInterval(() => {
      ts += 3000;
      frame.writeUInt32BE(ts, 0);
      pub.sendVideoPacket(frame, ts, true);
    }, 33);
    try {
      const received: { from: string | null; ts: number; size: number }[] = [];
      sub.on('video', (from, rtp) => received.push({ from, ts: rtp.payload.readUInt32BE(0), size: rtp.payload.length }));
      await sleep(400);
      expect(received).toEqual([]);
      // The publisher's own track start asked for one already; count only what the subscription causes.
      keyframeRequests = 0;

      await plane.signal(ROOM, 'sub', { op: 'media', room: ROOM, kind: 'subscribe_video', participantId: 'pub' });
      await waitFor(() => received.length >= 10, 10_000, 'video at the subscriber on the other worker');
      expect(new Set(received.map((r) => r.from))).toEqual(new Set(['pub']));
      expect(received.every((r) => r.size === 1000)).toBe(true);
      for (let i = 1; i < received.length; i++) expect(received[i]!.ts).toBeGreaterThan(received[i - 1]!.ts);
      await waitFor(() => keyframeRequests > 0, 5000, 'a PLI at the publisher, asked across workers');

      await plane.signal(ROOM, 'sub', { op: 'media', room: ROOM, kind: 'unsubscribe_video', participantId: 'pub' });
      await sleep(800);
      const count = received.length;
      await sleep(600);
      expect(received.length).toBe(count);
      // A publisher nobody has heard of is refused, as in a one-worker room.
      await expect(plane.signal(ROOM, 'sub', { op: 'media', room: ROOM, kind: 'subscribe_video', participantId: 'ghost' })).rejects.toMatchObject({
        code: 'MEDIA_UNKNOWN_PARTICIPANT',
      });
      expect(errors).toEqual([]);
    } finally {
      clearInterval(camera);
    }
  }, 60_000);
});
