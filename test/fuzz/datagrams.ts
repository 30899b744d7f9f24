/**
 * Hostile UDP datagrams for the media ports, deterministic for a seed: what a stranger who found a
 * server's ICE/RTP port can send. Used by the soak bench (bench/soak) and test/fuzz/media-fuzz.test.ts.
 * Every shape aims at one parser the media path has: STUN (RFC 8489 §5: lengths, attributes past
 * the end), DTLS records (RFC 6347 §4.1: content types, epochs, lying lengths), RTP (RFC 3550 §5.1:
 * CSRC counts, extension lengths, padding) and RTCP (RFC 3550 §6.4: lying length fields).
 */
import { Rng } from './frames.ts';

export const datagramKinds = ['random', 'empty', 'rtpNoise', 'rtpTruncated', 'rtpCsrc', 'rtpExtension', 'rtcp', 'stunLength', 'stunAttributes', 'dtlsRecord', 'dtlsClientHello', 'dtlsAlert', 'rtpRandom'] as const;
export type DatagramKind = (typeof datagramKinds)[number];

function bytes(rng: Rng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

/** One hostile datagram of `kind`. */
export function hostileDatagram(rng: Rng, kind: DatagramKind): Buffer {
  switch (kind) {
    case 'random':
      return bytes(rng, rng.int(1501));
    case 'empty':
      return Buffer.alloc(0);
    case 'rtpNoise': {
      const b = bytes(rng, 1500);
      b[0] = 0x80;
      b[1] = 111;
      return b;
    }
    case 'rtpTruncated': {
      const b = bytes(rng, 1 + rng.int(11));
      b[0] = 0x80 | rng.int(16);
      return b;
    }
    case 'rtpCsrc': {
      // CSRC count 15 (60 bytes of CSRCs) but only a few bytes follow.
      const b = bytes(rng, 12 + rng.int(20));
      b[0] = 0x8f;
      b[1] = 111;
      return b;
    }
    case 'rtpExtension': {
      // Extension and padding bits, a 0xffff-word one-byte-header extension, an absurd pad count.
      const b = bytes(rng, 20 + rng.int(40));
      b[0] = 0x80 | 0x20 | 0x10;
      b[1] = 111;
      b.writeUInt16BE(0xbede, 12);
      b.writeUInt16BE(0xffff, 14);
      b[b.length - 1] = 0xff;
      return b;
    }
    case 'rtcp': {
      const b = bytes(rng, 8 + rng.int(60));
      b[0] = 0x80 | rng.int(32);
      b[1] = 200 + rng.int(7);
      b.writeUInt16BE(0xffff, 2);
      return b;
    }
    case 'stunLength': {
      const b = bytes(rng, 20 + rng.int(200));
      b.writeUInt16BE(0x0001, 0);
      b.writeUInt16BE(rng.chance(0.5) ? 0xfffc : (b.length - 20) & ~3, 2);
      b.writeUInt32BE(0x2112a442, 4);
      return b;
    }
    case 'stunAttributes': {
      // USERNAME, MESSAGE-INTEGRITY and FINGERPRINT whose lengths overrun the packet.
      const attrs = Buffer.from([0x00, 0x06, 0x01, 0x00, 0x61, 0x3a, 0x62, 0x00, 0x00, 0x08, 0x00, 0x14, 0x80, 0x28, 0x00, 0x04]);
      const h = Buffer.alloc(20);
      h.writeUInt16BE(rng.pick([0x0001, 0x0101, 0x0111, 0x0011]), 0);
      h.writeUInt16BE(attrs.length, 2);
      h.writeUInt32BE(0x2112a442, 4);
      bytes(rng, 12).copy(h, 8);
      return Buffer.concat([h, attrs]);
    }
    case 'dtlsRecord': {
      const b = bytes(rng, 13 + rng.int(300));
      b[0] = rng.pick([20, 21, 22, 23]);
      b.writeUInt16BE(0xfefd, 1);
      b.writeUInt16BE(rng.int(2), 3);
      b.writeUInt16BE(rng.chance(0.5) ? 0xffff : b.length - 13, 11);
      return b;
    }
    case 'dtlsClientHello': {
      const b = bytes(rng, 25 + rng.int(100));
      b[0] = 22;
      b.writeUInt16BE(0xfeff, 1);
      b.writeUInt16BE(0, 3);
      b.writeUInt16BE(b.length - 13, 11);
      b[13] = 1;
      return b;
    }
    case 'dtlsAlert':
      return Buffer.from([21, 0xfe, 0xfd, 0, rng.int(2), 0, 0, 0, 0, 0, rng.int(256), 0, 2, 1, rng.pick([0, 10, 20, 40, 90])]);
    case 'rtpRandom': {
      const b = bytes(rng, 12 + rng.int(200));
      b[0] = 0x80 | rng.int(64);
      return b;
    }
  }
}

/** `count` datagrams, every kind in turn. */
export function* hostileDatagrams(seed: number, count: number): Generator<{ kind: DatagramKind; bytes: Buffer }> {
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    const kind = datagramKinds[i % datagramKinds.length];
    yield { kind, bytes: hostileDatagram(rng, kind) };
  }
}
