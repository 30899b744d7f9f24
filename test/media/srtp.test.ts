import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RtpHeader, SrtcpSession, SrtpSession } from 'werift';
import { runAllocProbe } from '../fixtures/run-alloc-probe.ts';
import { Aes128 } from '../../src/media/srtp/aes.ts';
import { deriveKey, deriveSessionKeys } from '../../src/media/srtp/kdf.ts';
import {
  REPLAY_WINDOW,
  SrtpContext,
  adaptivePrimitives,
  SrtpError,
  SrtpProfile,
  createSrtpContexts,
  splitKeyingMaterial,
  srtpErrorName,
} from '../../src/media/srtp/index.ts';

const here = dirname(fileURLToPath(import.meta.url));
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

// RFC 3711 Appendix B.3 master key and salt; reused as the session master key below.
const MASTER_KEY = hex('E1F97A0D3E018BE0D64FA32C06DE4139');
const MASTER_SALT = hex('0EC675AD498AFEEBB6960B3AABE6');
const P80 = SrtpProfile.AES128_CM_HMAC_SHA1_80;
const P32 = SrtpProfile.AES128_CM_HMAC_SHA1_32;

function context(profile: SrtpProfile = P80): SrtpContext {
  return new SrtpContext({ profile, masterKey: MASTER_KEY, masterSalt: MASTER_SALT });
}
function weriftRtp(): SrtpSession {
  const keys = { localMasterKey: MASTER_KEY, localMasterSalt: MASTER_SALT, remoteMasterKey: MASTER_KEY, remoteMasterSalt: MASTER_SALT };
  return new SrtpSession({ keys, profile: 1 });
}
function weriftRtcp(): SrtcpSession {
  const keys = { localMasterKey: MASTER_KEY, localMasterSalt: MASTER_SALT, remoteMasterKey: MASTER_KEY, remoteMasterSalt: MASTER_SALT };
  return new SrtcpSession({ keys, profile: 1 });
}

const SSRC = 0xcafe0001;
/** An Opus-like RTP packet (with the RFC 6464 audio-level extension) in a buffer with room for the tag. */
function rtpPacket(seq: number, payloadBytes = 60, ssrc = SSRC): { buf: Buffer; len: number; plain: Buffer } {
  const header = new RtpHeader({ payloadType: 111, sequenceNumber: seq, timestamp: 960 * seq, ssrc, extension: true, extensionProfile: 0xbede, extensions: [{ id: 1, payload: Buffer.from([0x9f]) }] });
  const payload = Buffer.alloc(payloadBytes);
  for (let i = 0; i < payloadBytes; i++) payload[i] = (seq + i * 13) & 0xff;
  const plain = Buffer.concat([header.serialize(header.serializeSize), payload]);
  const buf = Buffer.alloc(plain.length + 64);
  plain.copy(buf);
  return { buf, len: plain.length, plain };
}
/** Protects packet `seq` with tx and returns a standalone copy of the SRTP bytes. */
function protect(tx: SrtpContext, seq: number, payloadBytes = 60): { srtp: Buffer; plain: Buffer } {
  const { buf, len, plain } = rtpPacket(seq, payloadBytes);
  const n = tx.protectRtp(buf, len);
  expect(n).toBe(len + tx.rtpOverhead);
  return { srtp: Buffer.from(buf.subarray(0, n)), plain };
}
/** Unprotects a copy of srtp with rx; returns the result code and the bytes. */
function unprotect(rx: SrtpContext, srtp: Buffer): { n: number; out: Buffer } {
  const buf = Buffer.alloc(srtp.length + 16);
  srtp.copy(buf);
  const n = rx.unprotectRtp(buf, srtp.length);
  return { n, out: buf.subarray(0, n > 0 ? n : srtp.length) };
}
/** A sender report (28 bytes) plus an SDES chunk: a compound RTCP packet. */
function rtcpPacket(ssrc = SSRC): Buffer {
  const sr = Buffer.alloc(28);
  sr.writeUInt8(0x80, 0);
  sr.writeUInt8(200, 1);
  sr.writeUInt16BE(6, 2);
  sr.writeUInt32BE(ssrc, 4);
  sr.writeUInt32BE(0x11223344, 8);
  sr.writeUInt32BE(0x55667788, 12);
  sr.writeUInt32BE(12345, 16);
  sr.writeUInt32BE(42, 20);
  sr.writeUInt32BE(4200, 24);
  const sdes = hex('81ca0003' + ssrc.toString(16).padStart(8, '0') + '01037678 6c000000'); // CNAME "vxl"
  return Buffer.concat([sr, sdes]);
}

describe('RFC 3711 Appendix B vectors', () => {
  it('B.2: AES-CM keystream for SSRC 0, index 0, including the end of the 65282-block segment', () => {
    const aes = new Aes128(hex('2B7E151628AED2A6ABF7158809CF4F3C'));
    // IV = salt F0F1..FCFD shifted by 16 bits; SSRC and index are zero.
    const iv = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000');
    const words = [0, 4, 8, 12].map((o) => iv.readInt32BE(o)) as [number, number, number, number];
    const segment = new Uint8Array(1044512);
    aes.xorKeystream(...words, segment, 0, segment.length);
    expect(toHex(segment.subarray(0, 48))).toBe('E03EAD0935C95E80E166B16DD92B4EB4' + 'D23513162B02D0F72A43A2FE4A5F97AB' + '41E95B3BB0A2E8DD477901E4FCA894C0');
    expect(toHex(segment.subarray(segment.length - 48))).toBe('EC8CDF7398607CB0F2D21675EA9EA1E4' + '362B7C3C6773516318A077D7FC5073AE' + '6A2CC3787889374FBEB4C81B17BA6C44');
  });

  it('B.3: session encryption key, salt and authentication key', () => {
    const { rtp } = deriveSessionKeys(MASTER_KEY, MASTER_SALT);
    expect(toHex(rtp.encryptionKey)).toBe('C61E7A93744F39EE10734AFE3FF7A087');
    expect(toHex(rtp.salt)).toBe('30CBBC08863D8C85D49DB34A9AE1');
    expect(toHex(rtp.authKey)).toBe('CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4');
    // The appendix runs the auth-key PRF out to 94 octets: the counter must keep advancing.
    expect(toHex(deriveKey(new Aes128(MASTER_KEY), MASTER_SALT, 0x01, 94))).toBe(
      'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE' +
        'E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25' +
        '6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2',
    );
  });

  it('AES-128 agrees with FIPS 197 C.1', () => {
    const out = new Uint8Array(16);
    new Aes128(hex('000102030405060708090a0b0c0d0e0f')).encryptBlock(hex('00112233445566778899aabbccddeeff'), 0, out, 0);
    expect(toHex(out)).toBe('69C4E0D86A7B0430D8CDB78070B4C55A');
  });
});

describe('SRTP round trip and interop with werift', () => {
  it('protects in place: header readable, payload encrypted, tag appended; unprotect restores the packet', () => {
    const tx = context();
    const rx = context();
    for (const size of [0, 1, 15, 16, 17, 60, 1000, 1400]) {
      const { buf, len, plain } = rtpPacket(100 + size, size);
      const n = tx.protectRtp(buf, len);
      expect(n).toBe(len + 10);
      expect(buf.subarray(0, 20)).toEqual(plain.subarray(0, 20)); // header + extension in clear
      if (size >= 8) expect(buf.subarray(20, len)).not.toEqual(plain.subarray(20, len));
      expect(rx.unprotectRtp(buf, n)).toBe(len);
      expect(buf.subarray(0, len)).toEqual(plain);
    }
  });

  it('our SRTP decrypts in werift, and werift SRTP in ours (60- and 1000-byte payloads)', () => {
    const ours = context();
    const oursRx = context();
    const theirs = weriftRtp();
    for (let seq = 1; seq <= 50; seq++) {
      const size = seq % 2 ? 60 : 1000;
      const { srtp, plain } = protect(ours, seq, size);
      expect(Buffer.from(theirs.decrypt(srtp))).toEqual(plain);
      // werift protecting the same packet must produce the very same bytes (same keys, same index).
      const header = RtpHeader.deSerialize(plain);
      const theirsSrtp = theirs.encrypt(plain.subarray(header.payloadOffset), header);
      expect(theirsSrtp).toEqual(srtp);
      const { n, out } = unprotect(oursRx, theirsSrtp);
      expect(n).toBe(plain.length);
      expect(out).toEqual(plain);
    }
  });

  it('keeps CSRCs and a two-byte header extension in the clear and authenticated', () => {
    const header = new RtpHeader({
      payloadType: 96,
      sequenceNumber: 777,
      timestamp: 1,
      ssrc: SSRC,
      csrc: [0x01020304, 0x05060708],
      extension: true,
      extensionProfile: 0x1000,
      extensions: [{ id: 3, payload: Buffer.from('twelve bytes') }],
    });
    const plain = Buffer.concat([header.serialize(header.serializeSize), Buffer.from('video payload bytes '.repeat(10))]);
    const hdrLen = header.payloadOffset;
    expect(hdrLen).toBeGreaterThan(12 + 8 + 4);
    const buf = Buffer.alloc(plain.length + 10);
    plain.copy(buf);
    const n = context().protectRtp(buf, plain.length);
    expect(buf.subarray(0, hdrLen)).toEqual(plain.subarray(0, hdrLen));
    expect(Buffer.from(weriftRtp().decrypt(buf.subarray(0, n)))).toEqual(plain);
    // A changed CSRC (header, not payload) breaks the tag.
    const forged = Buffer.from(buf.subarray(0, n));
    forged[13] ^= 1;
    expect(unprotect(context(), forged).n).toBe(SrtpError.BAD_TAG);
    expect(unprotect(context(), Buffer.from(buf.subarray(0, n)))).toEqual({ n: plain.length, out: plain });
  });

  it('adaptivePrimitives (Node AES for large payloads) produce the same bytes as the default, and werift agrees', () => {
    const adaptive = new SrtpContext({ profile: P80, masterKey: MASTER_KEY, masterSalt: MASTER_SALT, primitives: adaptivePrimitives(256) });
    const rx = new SrtpContext({ profile: P80, masterKey: MASTER_KEY, masterSalt: MASTER_SALT, primitives: adaptivePrimitives(256) });
    const reference = context();
    const theirs = weriftRtp();
    // Below, at and above the threshold, and above the 2 KiB the ECB path handles in one call.
    for (const [i, size] of [60, 255, 256, 1000, 3000].entries()) {
      const ours = protect(adaptive, 300 + i, size);
      expect(ours.srtp).toEqual(protect(reference, 300 + i, size).srtp);
      expect(Buffer.from(theirs.decrypt(ours.srtp))).toEqual(ours.plain);
      expect(unprotect(rx, ours.srtp)).toEqual({ n: ours.plain.length, out: ours.plain });
    }
  });

  it('SRTP_AES128_CM_HMAC_SHA1_32: a 4-byte tag that is the _80 tag truncated, and round trips', () => {
    const a = protect(context(P80), 5);
    const b = protect(context(P32), 5);
    expect(b.srtp.length).toBe(a.plain.length + 4);
    expect(b.srtp).toEqual(a.srtp.subarray(0, a.plain.length + 4));
    const rx = context(P32);
    expect(unprotect(rx, b.srtp)).toEqual({ n: b.plain.length, out: b.plain });
    const forged = Buffer.from(protect(context(P32), 6).srtp);
    forged[forged.length - 1] ^= 0x80;
    expect(unprotect(rx, forged).n).toBe(SrtpError.BAD_TAG);
  });

  it('DTLS-SRTP keying material: the client protects with client_write, the server unprotects with it (RFC 5764 §4.2)', () => {
    const material = randomBytes(60);
    const client = splitKeyingMaterial(material, 'client');
    const server = splitKeyingMaterial(material, 'server');
    expect(Buffer.from(client.localMasterKey)).toEqual(material.subarray(0, 16));
    expect(Buffer.from(client.remoteMasterKey)).toEqual(material.subarray(16, 32));
    expect(Buffer.from(client.localMasterSalt)).toEqual(material.subarray(32, 46));
    expect(Buffer.from(client.remoteMasterSalt)).toEqual(material.subarray(46, 60));
    expect(server.localMasterKey).toEqual(client.remoteMasterKey);
    expect(server.remoteMasterSalt).toEqual(client.localMasterSalt);
    const c = createSrtpContexts(client, P80);
    const s = createSrtpContexts(server, P80);
    for (const [from, to] of [[c, s], [s, c]] as const) {
      const { srtp, plain } = protect(from.outbound, 9);
      expect(unprotect(to.inbound, srtp)).toEqual({ n: plain.length, out: plain });
      expect(unprotect(from.inbound, Buffer.from(protect(from.outbound, 10).srtp)).n).toBe(SrtpError.BAD_TAG); // wrong direction
    }
    expect(() => splitKeyingMaterial(material.subarray(0, 59), 'client')).toThrow(/60 bytes/);
  });
});

describe('SRTP rollover counter (RFC 3711 §3.3.1)', () => {
  it('increments the ROC at the sequence wrap, in step with werift both ways', () => {
    const tx = context();
    const rx = context();
    const theirs = weriftRtp();
    const theirsTx = weriftRtp();
    const oursRx = context();
    for (let i = 0; i < 200; i++) {
      const seq = (65_436 + i) & 0xffff; // 100 packets before the wrap, 100 after
      const { srtp, plain } = protect(tx, seq);
      expect(unprotect(rx, srtp)).toEqual({ n: plain.length, out: plain });
      expect(Buffer.from(theirs.decrypt(srtp))).toEqual(plain);
      const header = RtpHeader.deSerialize(plain);
      expect(unprotect(oursRx, theirsTx.encrypt(plain.subarray(header.payloadOffset), header))).toEqual({ n: plain.length, out: plain });
    }
    // After the wrap the sender's ROC is 1: the same seq protected again differs from ROC 0's.
    expect(protect(tx, 100).srtp).not.toEqual(protect(context(), 100).srtp);
  });

  it('a packet from just before the wrap that arrives after it still authenticates (ROC - 1)', () => {
    const tx = context();
    const rx = context();
    const sent = [65533, 65534, 65535, 0, 1, 2].map((seq) => ({ seq, ...protect(tx, seq) }));
    const order = [65533, 0, 65535, 1, 65534, 2];
    for (const seq of order) {
      const p = sent.find((s) => s.seq === seq)!;
      expect(unprotect(rx, p.srtp), `seq ${seq}`).toEqual({ n: p.plain.length, out: p.plain });
    }
    // ...and is still a replay afterwards.
    expect(unprotect(rx, sent[2].srtp).n).toBe(SrtpError.REPLAY);
  });

  it('a retransmission from before the wrap is protected by the sender with the old ROC', () => {
    const tx = context();
    protect(tx, 65535);
    protect(tx, 3); // ROC is now 1
    const resent = protect(tx, 65535).srtp;
    expect(resent).toEqual(protect(context(), 65535).srtp); // ROC 0, like the first time
  });
});

describe('SRTP replay protection (RFC 3711 §3.3.2)', () => {
  it('rejects a duplicate, accepts a reordered packet inside the window once, rejects one older than the window', () => {
    const tx = context();
    const rx = context();
    const sent = new Map<number, Buffer>();
    for (let seq = 1000; seq <= 1300; seq++) sent.set(seq, protect(tx, seq).srtp);
    const held = new Set([1100, 1290]);
    for (const [seq, srtp] of sent) if (!held.has(seq)) expect(unprotect(rx, srtp).n).toBeGreaterThan(0);
    // Duplicate of the newest and of an older packet.
    expect(unprotect(rx, sent.get(1300)!).n).toBe(SrtpError.REPLAY);
    expect(unprotect(rx, sent.get(1250)!).n).toBe(SrtpError.REPLAY);
    // 1290 is 10 behind the top: inside the window, accepted once.
    expect(unprotect(rx, sent.get(1290)!).n).toBeGreaterThan(0);
    expect(unprotect(rx, sent.get(1290)!).n).toBe(SrtpError.REPLAY);
    // 1100 is 200 behind: outside the 128-packet window.
    expect(1300 - 1100).toBeGreaterThan(REPLAY_WINDOW);
    const old = unprotect(rx, sent.get(1100)!);
    expect(old.n).toBe(SrtpError.REPLAY);
    expect(old.out).toEqual(sent.get(1100)); // untouched
  });

  it('keeps a window of at least 64 packets across a jump of more than the window', () => {
    const tx = context();
    const rx = context();
    const a = protect(tx, 10).srtp;
    const b = protect(tx, 10 + REPLAY_WINDOW - 1).srtp;
    const c = protect(tx, 5000).srtp;
    expect(unprotect(rx, b).n).toBeGreaterThan(0);
    expect(unprotect(rx, a).n).toBeGreaterThan(0); // exactly at the window's edge
    expect(unprotect(rx, c).n).toBeGreaterThan(0);
    expect(unprotect(rx, b).n).toBe(SrtpError.REPLAY);
  });
});

describe('hostile SRTP input', () => {
  it('rejects a forged tag or payload with BAD_TAG and leaves the buffer untouched', () => {
    const tx = context();
    const rx = context();
    const { srtp } = protect(tx, 42);
    for (const at of [srtp.length - 1, srtp.length - 10, 25, 3, 8]) {
      const forged = Buffer.from(srtp);
      forged[at] ^= 0x01;
      const buf = Buffer.alloc(forged.length + 8);
      forged.copy(buf);
      const code = rx.unprotectRtp(buf, forged.length);
      expect(code, `byte ${at}`).toBeLessThan(0);
      expect(buf.subarray(0, forged.length)).toEqual(forged);
    }
    // A forged packet does not poison the state: the genuine one still goes through.
    expect(unprotect(rx, srtp).n).toBe(srtp.length - 10);
  });

  it('rejects every truncation of a valid packet without throwing, and survives random garbage', () => {
    const rx = context();
    const { srtp } = protect(context(), 7);
    for (let len = 0; len < srtp.length; len++) {
      const buf = Buffer.from(srtp.subarray(0, len));
      const code = rx.unprotectRtp(buf, len);
      expect(code, `length ${len}`).toBeLessThan(0);
      expect(code === SrtpError.TOO_SHORT || code === SrtpError.BAD_HEADER || code === SrtpError.BAD_TAG).toBe(true);
    }
    const srtcp = Buffer.alloc(100);
    const rtcp = rtcpPacket();
    rtcp.copy(srtcp);
    const n = context().protectRtcp(srtcp, rtcp.length);
    for (let len = 0; len < n; len++) expect(rx.unprotectRtcp(Buffer.from(srtcp.subarray(0, len)), len)).toBeLessThan(0);
    for (let i = 0; i < 5000; i++) {
      const junk = randomBytes(1 + (i % 300));
      if (i % 2) junk[0] = 0x80 | (junk[0] & 0x3f); // version 2 half the time, so parsing goes deeper
      expect(rx.unprotectRtp(junk, junk.length)).toBeLessThan(0);
      expect(rx.unprotectRtcp(junk, junk.length)).toBeLessThan(0);
    }
    expect(srtpErrorName(SrtpError.BAD_TAG)).toBe('BAD_TAG');
  });

  it('refuses to protect into a buffer without room for the tag, and a header that runs past the packet', () => {
    const tx = context();
    const { plain } = rtpPacket(1);
    const exact = Buffer.from(plain);
    expect(tx.protectRtp(exact, exact.length)).toBe(SrtpError.BUFFER_TOO_SMALL);
    expect(exact).toEqual(plain);
    const bad = Buffer.alloc(64);
    plain.copy(bad);
    expect(tx.protectRtp(bad, 14)).toBe(SrtpError.BAD_HEADER); // extension header cut off
    bad[0] = 0x40; // version 1
    expect(tx.protectRtp(bad, plain.length)).toBe(SrtpError.BAD_HEADER);
  });

  it('does not create state for unauthenticated SSRCs, and caps the number of streams', () => {
    const small = new SrtpContext({ profile: P80, masterKey: MASTER_KEY, masterSalt: MASTER_SALT, maxStreams: 2 });
    const tx = context();
    for (let i = 0; i < 100; i++) {
      const { buf, len } = rtpPacket(1, 60, 0x1000 + i);
      const n = tx.protectRtp(buf, len);
      buf[n - 1] ^= 1; // forged
      expect(small.unprotectRtp(buf, n)).toBe(SrtpError.BAD_TAG);
    }
    for (const ssrc of [1, 2, 3]) {
      const { buf, len } = rtpPacket(1, 60, ssrc);
      const n = tx.protectRtp(buf, len);
      expect(small.unprotectRtp(buf, n)).toBe(ssrc === 3 ? SrtpError.TOO_MANY_STREAMS : len);
    }
  });
});

describe('SRTCP (RFC 3711 §3.4)', () => {
  it('appends E flag + index, encrypts after the first 8 bytes, and interoperates with werift both ways', () => {
    const tx = context();
    const rx = context();
    const theirs = weriftRtcp();
    const rtcp = rtcpPacket();
    for (let k = 1; k <= 5; k++) {
      const buf = Buffer.alloc(rtcp.length + 14);
      rtcp.copy(buf);
      const n = tx.protectRtcp(buf, rtcp.length);
      expect(n).toBe(rtcp.length + 4 + 10);
      expect(buf.subarray(0, 8)).toEqual(rtcp.subarray(0, 8));
      expect(buf.subarray(8, rtcp.length)).not.toEqual(rtcp.subarray(8));
      const trailer = buf.readUInt32BE(rtcp.length);
      expect(trailer >>> 31).toBe(1); // E
      expect(trailer & 0x7fffffff).toBe(k); // index counts from 1 per SSRC
      expect(Buffer.from(theirs.decrypt(Buffer.from(buf.subarray(0, n))))).toEqual(rtcp);
      const theirsSrtcp = theirs.encrypt(rtcp);
      expect(theirsSrtcp).toEqual(buf.subarray(0, n)); // same keys, same index: same bytes
      const back = Buffer.alloc(theirsSrtcp.length);
      theirsSrtcp.copy(back);
      expect(rx.unprotectRtcp(back, back.length)).toBe(rtcp.length);
      expect(back.subarray(0, rtcp.length)).toEqual(rtcp);
    }
  });

  it('E = 0: sent in the clear but authenticated; werift and we both accept it', () => {
    const rtcp = rtcpPacket();
    const buf = Buffer.alloc(rtcp.length + 14);
    rtcp.copy(buf);
    const n = context().protectRtcp(buf, rtcp.length, false);
    expect(buf.subarray(0, rtcp.length)).toEqual(rtcp);
    expect(buf.readUInt32BE(rtcp.length)).toBe(1); // E clear, index 1
    expect(Buffer.from(weriftRtcp().decrypt(Buffer.from(buf.subarray(0, n))))).toEqual(rtcp);
    const copy = Buffer.from(buf.subarray(0, n));
    expect(context().unprotectRtcp(copy, n)).toBe(rtcp.length);
    // Flipping E (claiming the clear text is encrypted) breaks the tag.
    const flipped = Buffer.from(buf.subarray(0, n));
    flipped[rtcp.length] |= 0x80;
    expect(context().unprotectRtcp(flipped, n)).toBe(SrtpError.BAD_TAG);
  });

  it('has its own replay window: a duplicate SRTCP index is rejected, a reordered one accepted once', () => {
    const tx = context();
    const rx = context();
    const rtcp = rtcpPacket();
    const packets = [1, 2, 3].map(() => {
      const buf = Buffer.alloc(rtcp.length + 14);
      rtcp.copy(buf);
      return Buffer.from(buf.subarray(0, tx.protectRtcp(buf, rtcp.length)));
    });
    const deliver = (p: Buffer): number => rx.unprotectRtcp(Buffer.from(p), p.length);
    expect(deliver(packets[0])).toBe(rtcp.length);
    expect(deliver(packets[2])).toBe(rtcp.length);
    expect(deliver(packets[2])).toBe(SrtpError.REPLAY);
    expect(deliver(packets[1])).toBe(rtcp.length);
    expect(deliver(packets[1])).toBe(SrtpError.REPLAY);
    // SRTP state does not leak into SRTCP: RTP seq 1 from the same SSRC is still fresh.
    expect(unprotect(rx, protect(context(), 1).srtp).n).toBeGreaterThan(0);
  });
});

describe('allocation', () => {
  const probe = join(here, 'fixtures', 'srtp-alloc-probe.ts');
  const run = (...args: string[]) => runAllocProbe<{ bytesPerPacket: number; gcs: number; failures: number }>(probe, ...args);

  it('protect + unprotect of 100k RTP (and 6k RTCP) packets allocates nothing per packet', () => {
    const control = run('--control');
    // The probe is sensitive: one small object per packet, on purpose, shows up as > 16 bytes.
    expect(control.gcs).toBe(0);
    expect(control.bytesPerPacket).toBeGreaterThan(16);
    const result = run();
    expect(result.failures).toBe(0);
    expect(result.gcs).toBe(0);
    // No heap object is smaller than 8 bytes: below 1 byte per packet means none per packet.
    expect(result.bytesPerPacket).toBeLessThan(1);
  }, 180_000); // two child processes of 250k packets each, on a shared 2-core host
});
