import { afterAll, describe, expect, it } from 'vitest';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { isVoxError } from '../../src/errors.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, waitFor } from './harness.ts';

describe('video forwarding', () => {
  const h = new RoomHarness({ roomId: 'video', slots: 1, ...portRange(42400) });

  afterAll(async () => {
    await h.close();
  });

  it('forwards a publisher’s video to a subscriber who asks, with a key-frame request upstream', async () => {
    // The harness makes audio-only clients; the publisher here offers a camera.
    const pub = new NodeMediaClient({
      room: 'video',
      publishVideo: true,
      decode: false,
      signal: { send: (m) => void h.room.signal('pub', m).catch((e: unknown) => h.errors.push(e)) },
    });
    h.clients.set('pub', pub);
    await h.room.join({ roomId: 'video', participantId: 'pub', name: 'pub', grants: FULL_GRANTS });
    const sub = await h.join('sub', undefined, { decode: false });
    await Promise.all([pub.connected(), sub.connected()]);

    let keyframeRequests = 0;
    pub.on('keyframeRequest', () => keyframeRequests++);
    const frame = Buffer.alloc(1000, 0x42);
    let ts = 0;
    const camera = setInterval(() => {
      ts += 3000; // 30 fps on the 90 kHz clock
      frame.writeUInt32BE(ts, 0);
      pub.sendVideoPacket(frame, ts, true);
    }, 33);
    try {
      const received: { from: string | null; ts: number; size: number }[] = [];
      sub.on('video', (from, rtp) => received.push({ from, ts: rtp.payload.readUInt32BE(0), size: rtp.payload.length }));
      await sleep(300);
      expect(received).toEqual([]); // nothing until asked

      await h.room.signal('sub', { op: 'media', room: 'video', kind: 'subscribe_video', participantId: 'pub' });
      await waitFor(() => received.length >= 10, 8000, 'video at the subscriber');
      expect(sub.offersReceived).toBe(2); // video renegotiates; audio never did
      expect(pub.offersReceived).toBe(1);
      expect(new Set(received.map((r) => r.from))).toEqual(new Set(['pub']));
      expect(received.every((r) => r.size === 1000)).toBe(true);
      // Payload bytes arrive as sent: timestamps we wrote into them increase.
      for (let i = 1; i < received.length; i++) expect(received[i].ts).toBeGreaterThan(received[i - 1].ts);
      await waitFor(() => keyframeRequests > 0, 3000, 'a PLI at the publisher');

      await h.room.signal('sub', { op: 'media', room: 'video', kind: 'unsubscribe_video', participantId: 'pub' });
      await waitFor(() => sub.offersReceived === 3, 5000, 'the renegotiation that removes video');
      await sleep(300);
      const count = received.length;
      await sleep(500);
      expect(received.length).toBe(count);
      expect(h.room.stats().packetsIn).toBeGreaterThan(10);
    } finally {
      clearInterval(camera);
    }
    await expect(
      h.room.signal('sub', { op: 'media', room: 'video', kind: 'subscribe_video', participantId: 'ghost' }),
    ).rejects.toSatisfy((e) => isVoxError(e, 'MEDIA_UNKNOWN_PARTICIPANT'));
    expect(h.errors).toEqual([]);
  });
});
