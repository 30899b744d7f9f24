import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import type { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { sharedPortUnknownSourceTotal } from '../../src/media/shared-port.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';
import { powerAt } from '../codec/signal.ts';
import { RoomHarness, portRange, sleep, waitFor } from './harness.ts';

/**
 * Garbage on the room's UDP ports, end to end: werift hands every non-STUN datagram to DTLS/SRTP
 * whatever its source address, so junk from a stranger reaches the same parsers as the peers' media.
 */
const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };
const PRESENT = 0.01;
const ABSENT = 0.0005;
const PER_PORT = 3000;

/** One malformed datagram; `i` picks the shape so every kind is sent many times. */
function garbage(i: number): Buffer {
  const r = (n: number): Buffer => randomBytes(n);
  const rand = (n: number): number => Math.floor(Math.random() * n);
  switch (i % 13) {
    case 0: // random bytes, any length (first byte 24..63: a DTLS record of unknown type)
      return r(rand(1501));
    case 1: // zero-length
      return Buffer.alloc(0);
    case 2: // 1500 bytes of RTP-looking noise
      return Buffer.concat([Buffer.from([0x80, 111]), r(1498)]);
    case 3: // truncated RTP header (1..11 bytes)
      return Buffer.concat([Buffer.from([0x80 | rand(16), 0x6f]), r(rand(10))]).subarray(0, 1 + rand(11));
    case 4: {
      // CSRC count 15 but only a few bytes follow
      const b = Buffer.concat([Buffer.from([0x8f, 111]), r(10 + rand(20))]);
      return b;
    }
    case 5: {
      // extension bit with a 0xffff-word extension length (werift parsed it quadratically: a ~30 min stall) in a short packet, padding bit with absurd pad count
      const b = r(20 + rand(40));
      b[0] = 0x80 | 0x10 | 0x20;
      b[1] = 111;
      b.writeUInt16BE(0xbede, 12);
      b.writeUInt16BE(0xffff, 14);
      b[b.length - 1] = 0xff;
      return b;
    }
    case 6: {
      // RTCP-looking (PT 200..206) with a lying length
      const b = r(8 + rand(60));
      b[0] = 0x80 | rand(32);
      b[1] = 200 + rand(7);
      b.writeUInt16BE(0xffff, 2);
      return b;
    }
    case 7: {
      // STUN binding request header with a huge length and random attributes
      const b = r(20 + rand(200));
      b.writeUInt16BE(0x0001, 0);
      b.writeUInt16BE(rand(2) === 0 ? 0xfffc : (b.length - 20) & ~3, 2);
      b.writeUInt32BE(0x2112a442, 4);
      return b;
    }
    case 8: {
      // STUN with a USERNAME / MESSAGE-INTEGRITY / FINGERPRINT whose lengths overrun the packet
      const attrs = Buffer.from([0x00, 0x06, 0x01, 0x00, 0x61, 0x3a, 0x62, 0x00, 0x00, 0x08, 0x00, 0x14, 0x80, 0x28, 0x00, 0x04]);
      const h = Buffer.alloc(20);
      h.writeUInt16BE([0x0001, 0x0101, 0x0111, 0x0011][rand(4)]!, 0);
      h.writeUInt16BE(attrs.length, 2);
      h.writeUInt32BE(0x2112a442, 4);
      r(12).copy(h, 8);
      return Buffer.concat([h, attrs]);
    }
    case 9: {
      // DTLS record: handshake / application data / alert / ccs, epoch 0..1, lying length
      const b = r(13 + rand(300));
      b[0] = [20, 21, 22, 23][rand(4)]!;
      b.writeUInt16BE(0xfefd, 1);
      b.writeUInt16BE(rand(2), 3);
      b.writeUInt16BE(rand(2) === 0 ? 0xffff : b.length - 13, 11);
      return b;
    }
    case 10: {
      // DTLS ClientHello-looking handshake with a truncated body
      const b = r(25 + rand(100));
      b[0] = 22;
      b.writeUInt16BE(0xfeff, 1);
      b.writeUInt16BE(0, 3);
      b.writeUInt16BE(b.length - 13, 11);
      b[13] = 1; // client_hello
      return b;
    }
    case 12: // a forged plaintext warning alert (close_notify etc.), epoch 0 or 1
      return Buffer.from([21, 0xfe, 0xfd, 0, rand(2), 0, 0, 0, 0, 0, rand(256), 0, 2, 1, [0, 10, 20, 40, 90][rand(5)]!]);
    default: // RTP with random header bits and a short payload
      return Buffer.concat([Buffer.from([0x80 | rand(64), rand(256)]), r(10 + rand(200))]);
  }
}

/** The server's host candidate ports in an offer SDP. */
function candidatePorts(sdp: string): number[] {
  const ports = new Set<number>();
  for (const m of sdp.matchAll(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/gim)) ports.add(Number(m[1]));
  return [...ports];
}

/** The client's nominated ICE socket (werift 0.24 internals, test side only): garbage from a peer's own address passes the shared port's demux. */
function clientSocket(c: NodeMediaClient): Socket {
  return (c.pc.iceTransports[0]!.connection as unknown as { nominated: { protocol: { transport: { socket: Socket } } } }).nominated.protocol.transport.socket;
}

async function blast(sock: Socket, ports: number[], perPort: number): Promise<number> {
  let sent = 0;
  // Batches with a yield between them: the peers' real media keeps flowing through the blast.
  for (let i = 0; i < perPort; i += 50) {
    await Promise.all(
      ports.flatMap((port) =>
        Array.from({ length: 50 }, (_, j) =>
          new Promise<void>((res) =>
            sock.send(garbage(i + j), port, '127.0.0.1', () => {
              sent++;
              res();
            }),
          ),
        ),
      ),
    );
    await sleep(5);
  }
  return sent;
}

for (const variant of [
  { name: 'a port per peer', options: portRange(44600), shared: undefined },
  { name: 'one shared UDP port (media.udpPort)', options: { ...portRange(50330, 10), udpPort: { base: 50320, count: 1 } }, shared: 50320 },
]) {
  describe(`a live media room with garbage on its UDP ports: ${variant.name}`, () => {
    let h: RoomHarness;
    const offers = new Map<string, string>();
    const processErrors: unknown[] = [];
    const onProcessError = (e: unknown): void => {
      processErrors.push(e);
    };

    beforeAll(async () => {
      process.on('uncaughtException', onProcessError);
      process.on('unhandledRejection', onProcessError);
      h = new RoomHarness({ roomId: 'garbage', slots: 3, ...variant.options });
      for (const id of ['a', 'b', 'c']) {
        h.sinks.set(id, (m: ServerMediaMessage) => {
          if (m.op === 'media' && m.kind === 'offer' && m.sdp !== undefined) offers.set(id, m.sdp);
        });
        await h.join(id);
      }
      await Promise.all([...h.clients.values()].map((c) => c.connected()));
      for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]!));
      await waitFor(
        () => [...h.clients].every(([id, c]) => Object.keys(TONES).filter((p) => p !== id).every((p) => c.audioFrom(p, 0.5).length >= SR / 2)),
        15_000,
        'audio from every speaker at every client',
      );
    }, 30_000);

    afterAll(async () => {
      await h?.close();
      process.off('uncaughtException', onProcessError);
      process.off('unhandledRejection', onProcessError);
    });

    it('survives thousands of malformed datagrams per port and every client still hears the others', async () => {
      const ports = [...offers.values()].flatMap(candidatePorts);
      expect(ports.length).toBe(3);
      if (variant.shared !== undefined) expect(ports).toEqual([variant.shared, variant.shared, variant.shared]);
      else for (const p of ports) expect(p).toBeGreaterThanOrEqual(variant.options.rtcMinPort);

      const before = h.room.stats();
      const unknownBefore = sharedPortUnknownSourceTotal();
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      let sent = 0;
      try {
        sent = await blast(sock, ports, PER_PORT);
      } finally {
        sock.close();
      }
      expect(sent).toBe(PER_PORT * ports.length);
      if (variant.shared !== undefined) {
        // A stranger's datagrams never pass the demux: every one is counted, none reaches werift.
        // (The send callbacks ran; the port may still be working through its receive queue.)
        await waitFor(() => sharedPortUnknownSourceTotal() - unknownBefore >= sent, 5000, 'every stranger datagram counted');
        expect(sharedPortUnknownSourceTotal() - unknownBefore).toBe(sent);
        // The same garbage from a participant's own address does reach that peer's STUN, DTLS and SRTP parsers.
        expect(await blast(clientSocket(h.clients.get('a')!), [variant.shared], PER_PORT)).toBe(PER_PORT);
      }

      // The room still answers, nobody left, and no garbage was counted as media.
      await sleep(300);
      const after = h.room.stats();
      expect(after.participants).toBe(3);
      const dt = (after.packetsIn - before.packetsIn) / 3;
      expect(dt).toBeLessThan(PER_PORT / 10); // ~50 packets/s per publisher, not thousands
      expect(after.packetsIn).toBeGreaterThan(before.packetsIn);

      // Every client still hears the other two, cleanly, from audio received after the blast.
      for (const c of h.clients.values()) c.clearRecordings();
      await waitFor(
        () => [...h.clients].every(([id, c]) => Object.keys(TONES).filter((p) => p !== id).every((p) => c.audioFrom(p).length >= SR / 2)),
        8000,
        'half a second of audio from every speaker after the blast',
      );
      for (const [id, c] of h.clients) {
        for (const other of Object.keys(TONES).filter((p) => p !== id)) {
          const pcm = c.audioFrom(other, 0.4);
          expect(powerAt(pcm, SR, TONES[other]!), `${id} hears ${other}`).toBeGreaterThan(PRESENT);
          for (const [p, f] of Object.entries(TONES)) {
            if (p !== other) expect(powerAt(pcm, SR, f), `${id}: ${other}'s audio carries ${p}`).toBeLessThan(ABSENT);
          }
        }
      }
      expect(h.errors).toEqual([]);
      expect(processErrors).toEqual([]);
    }, 30_000);
  });
}
