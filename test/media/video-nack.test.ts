import type { Socket } from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, waitFor } from './harness.ts';

/**
 * NACK on the fast receive path (docs/media.md "Receive side"): the server's inbound video is
 * unprotected by VoxLink's SRTP and handed to werift's receiver, whose NACK generator must still see
 * every packet. The publisher's socket drops some of its video datagrams once; the server must
 * NACK them (RFC 4585 §6.2.1 Generic NACK), the publisher's werift sender retransmits them, and the
 * subscriber ends up with every packet's payload.
 */
const RTPFB = 205;

function iceSocket(c: NodeMediaClient): Socket {
  return (c.pc.iceTransports[0]!.connection as unknown as { nominated: { protocol: { transport: { socket: Socket } } } }).nominated.protocol.transport.socket;
}

describe('video NACK through the fast receive path', () => {
  for (const variant of [
    { name: 'a port per peer', options: portRange(50540, 20) },
    { name: 'one shared UDP port', options: { ...portRange(50570, 10), udpPort: { base: 50560, count: 1 } } },
  ]) {
    const h = new RoomHarness({ roomId: 'nack', slots: 1, ...variant.options });

    afterAll(async () => {
      await h.close();
    });

    it(`${variant.name}: the server NACKs lost video upstream and the subscriber gets every packet`, async () => {
      const pub = new NodeMediaClient({
        room: 'nack',
        publishVideo: true,
        decode: false,
        signal: { send: (m) => void h.room.signal('pub', m).catch((e: unknown) => h.errors.push(e)) },
      });
      h.clients.set('pub', pub);
      await h.room.join({ roomId: 'nack', participantId: 'pub', name: 'pub', grants: FULL_GRANTS });
      const sub = await h.join('sub', undefined, { decode: false });
      await Promise.all([pub.connected(), sub.connected()]);

      let nacks = 0;
      for (const t of pub.pc.getTransceivers()) {
        const count = (p: { type: number }): void => void (p.type === RTPFB && nacks++);
        t.sender.onRtcp.subscribe(count);
        t.receiver.onRtcp.subscribe(count);
      }
      const received = new Set<number>();
      sub.on('video', (_from, rtp) => received.add(rtp.payload.readUInt32BE(0)));
      await h.room.signal('sub', { op: 'media', room: 'nack', kind: 'subscribe_video', participantId: 'pub' });

      // Drop every 7th video datagram (PT 96, in the clear SRTP header) leaving the publisher, packets 40..120.
      const socket = iceSocket(pub);
      const send = socket.send;
      let videoSent = 0;
      const dropped: number[] = [];
      socket.send = function (this: Socket, ...args: unknown[]) {
        const msg = args[0];
        if (Buffer.isBuffer(msg) && msg.length > 12 && msg[0]! >= 128 && msg[0]! < 192 && (msg[1]! & 0x7f) === 96) {
          const n = videoSent++;
          if (n >= 40 && n < 120 && n % 7 === 0) {
            dropped.push(n);
            return;
          }
        }
        return (send as (...a: unknown[]) => void).apply(this, args);
      } as typeof socket.send;

      const frame = Buffer.alloc(800, 0x42);
      let index = 0;
      const camera = setInterval(() => {
        // One packet per tick; its index in the payload, so the subscriber's copy says which one it is.
        frame.writeUInt32BE(index, 0);
        pub.sendVideoPacket(frame, (index * 3000) >>> 0, true);
        index++;
      }, 20);
      try {
        await waitFor(() => videoSent >= 160, 15_000, 'video sent past the lossy stretch');
        expect(dropped.length).toBeGreaterThan(5);
        // The first packets may predate the subscription; everything from the lossy stretch on must arrive.
        await waitFor(() => dropped.every((n) => received.has(n)), 10_000, `retransmissions of ${dropped.join(',')} at the subscriber`);
      } finally {
        clearInterval(camera);
        socket.send = send;
      }
      expect(nacks).toBeGreaterThan(0);
      const s = h.room.stats();
      expect(s.packetsInFast ?? 0).toBeGreaterThan(100);
      expect(h.errors).toEqual([]);
      await sleep(100);
    }, 40_000);
  }
});
