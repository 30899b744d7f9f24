import { describe, expect, it } from 'vitest';
import {
  checkFrame,
  clientOps,
  decodeClientMessage,
  decodeRaw,
  decodeServerMessage,
  encodeMessage,
  encodeRaw,
  serverOps,
  stampSeq,
  type ClientMessage,
  type ServerMessage,
} from '../../src/protocol/index.ts';

const participant = { participantId: 'p1', userId: 'u1', name: 'Ann', muted: false, speaking: true, grants: ['join' as const, 'publish' as const], joinedAt: 1_700_000_000_000 };

const clientSamples: ClientMessage[] = [
  { op: 'hello', ref: 1, token: 'a.b.c', client: { name: 'sdk', version: '1.0', platform: 'node' }, protocol: 1 },
  { op: 'join', ref: 2, room: 'team/standup', options: { muted: true, mode: 'mix' } },
  { op: 'leave', ref: 3, room: 'r1' },
  { op: 'mute', ref: 4, room: 'r1', participantId: 'p2' },
  { op: 'unmute', room: 'r1' },
  { op: 'record', ref: 8, room: 'r1', action: 'start' },
  { op: 'refresh', ref: 9, token: 'eyJhbGciOiJIUzI1NiJ9.e30.sig' },
  { op: 'peer', ref: 9, room: 'r1', kind: 'candidate', to: 'p2', link: 3, candidate: { candidate: 'candidate:1 1 udp 1 10.0.0.1 9 typ host', sdpMid: '0' } },
  { op: 'heartbeat', ack: 42 },
  { op: 'resume', sessionId: 's1', resumeToken: 'rt', lastSeq: 7 },
  { op: 'media', ref: 5, room: 'r1', kind: 'offer', sdp: 'v=0\r\n' },
  { op: 'media', room: 'r1', kind: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host', sdpMid: '0', sdpMLineIndex: 0 } },
  { op: 'media', room: 'r1', kind: 'subscribe_video', participantId: 'p2', options: { quality: 'low' } },
];

const serverSamples: ServerMessage[] = [
  {
    op: 'ready', ref: 1, sessionId: 's', resumeToken: 't', heartbeatIntervalMs: 15000, resumeGraceMs: 30000, userId: 'u1', name: 'Ann',
    server: { version: '0.1.0', protocol: 1, native: true },
    iceServers: [{ urls: ['stun:x'] }, { urls: ['turn:x'], username: '1:u', credential: 'c' }],
  },
  { op: 'joined', seq: 1, ref: 2, room: 'r1', mode: 'sfu', participantId: 'p1', participants: [participant] },
  { op: 'left', seq: 2, room: 'r1' },
  { op: 'participant_joined', seq: 3, room: 'r1', participant },
  { op: 'participant_left', seq: 4, room: 'r1', participantId: 'p1', reason: 'disconnected' },
  { op: 'participant_updated', seq: 5, room: 'r1', participant: { ...participant, muted: true } },
  { op: 'mute_ack', seq: 6, room: 'r1', participantId: 'p1', muted: true },
  { op: 'heartbeat_ack', lastSeq: 6 },
  { op: 'resumed', sessionId: 's', replayed: 3, rooms: ['r1'] },
  { op: 'invalid_session', reason: 'expired' },
  { op: 'error', seq: 7, ref: 9, code: 'ROOM_FULL', message: 'full', room: 'r1', about: 'join' },
  { op: 'media', seq: 8, room: 'r1', kind: 'answer', sdp: 'v=0\r\n', negotiationId: 3 },
  { op: 'slots', seq: 9, room: 'r1', slots: [{ slot: 0, participantId: 'p2' }, { slot: 1, participantId: null }] },
  { op: 'speaking', room: 'r1', participantId: 'p2', speaking: true, level: 0.5 },
  { op: 'media_reconnect', seq: 10, room: 'r1', reason: 'worker_died' },
  { op: 'recording', seq: 11, ref: 8, room: 'r1', recording: true, id: 'mh2x3k-0123456789ab', by: 'p1', startedAt: 1_790_000_000_000 },
  { op: 'recording', seq: 12, room: 'r1', recording: false, id: 'mh2x3k-0123456789ab', by: 'p2', startedAt: 1_790_000_000_000, files: 2 },
  { op: 'room_metadata', seq: 13, room: 'r1', metadata: '{"topic":"standup"}' },
  { op: 'redirect', seq: 14, ref: 3, room: 'r1', url: 'ws://node-b:7880/ws', ticket: 'eyJyIjoicjEifQ.c2ln', reason: 'placed' },
  { op: 'refreshed', ref: 9, tokenExpiresAt: 1_900_000_000_000 },
  { op: 'transcript', seq: 14, room: 'r1', recordingId: 'mi9x2k3a-5f1e0c9b7a2d', tracks: 2, words: 57, failed: 0 },
  { op: 'peer', seq: 14, room: 'r1', kind: 'offer', from: 'p1', link: 3, sdp: 'v=0\r\n' },
  { op: 'transport', seq: 15, room: 'r1', transport: 'direct', link: 3, peer: 'p2', offerer: true },
  { op: 'participant_left', seq: 14, room: 'r1', participantId: 'p2', reason: 'removed' },
];

describe('codec round trip', () => {
  it('covers every op', () => {
    expect(new Set(clientSamples.map((m) => m.op))).toEqual(new Set(clientOps));
    expect(new Set(serverSamples.map((m) => m.op))).toEqual(new Set(serverOps));
  });

  it.each(clientSamples.map((m) => [m.op, m]))('client %s', (_op, message) => {
    const decoded = decodeClientMessage(encodeMessage(message));
    expect(decoded).toEqual({ ok: true, message });
  });

  it.each(serverSamples.map((m) => [m.op, m]))('server %s', (_op, message) => {
    const decoded = decodeServerMessage(encodeMessage(message));
    expect(decoded).toEqual({ ok: true, message });
  });

  it('stampSeq adds a seq without re-encoding, for small and large maps and seqs', () => {
    const many: Record<string, number> = {};
    for (let i = 0; i < 20; i++) many[`k${i}`] = i;
    for (const body of [{ op: 'left', room: 'r1' }, { op: 'left', room: 'r1', ...many }]) {
      for (const seq of [1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
        expect(decodeRaw(stampSeq(encodeRaw(body), seq))).toEqual({ ...body, seq });
      }
    }
  });
});

describe('schemas reject', () => {
  const cases: [string, unknown, string][] = [
    ['missing token', { op: 'hello' }, 'INVALID_MESSAGE'],
    ['token of wrong type', { op: 'hello', token: 5 }, 'INVALID_MESSAGE'],
    ['missing room', { op: 'join' }, 'INVALID_MESSAGE'],
    ['bad room id', { op: 'join', room: 'a b' }, 'INVALID_MESSAGE'],
    ['room too long', { op: 'join', room: 'r'.repeat(129) }, 'INVALID_MESSAGE'],
    ['wrong mode', { op: 'join', room: 'r', options: { mode: 'mesh' } }, 'INVALID_MESSAGE'],
    ['negative ack', { op: 'heartbeat', ack: -1 }, 'INVALID_MESSAGE'],
    ['float ack', { op: 'heartbeat', ack: 1.5 }, 'INVALID_MESSAGE'],
    ['resume without token', { op: 'resume', sessionId: 's', lastSeq: 0 }, 'INVALID_MESSAGE'],
    ['unknown media kind', { op: 'media', room: 'r', kind: 'renegotiate' }, 'INVALID_MESSAGE'],
    ['candidate of wrong type', { op: 'media', room: 'r', kind: 'candidate', candidate: 'x' }, 'INVALID_MESSAGE'],
    ['unknown op', { op: 'shutdown' }, 'UNKNOWN_OP'],
    ['op of wrong type', { op: 1 }, 'MISSING_OP'],
    ['no op', { room: 'r' }, 'MISSING_OP'],
    ['array instead of map', ['hello'], 'INVALID_MESSAGE'],
    ['scalar', 42, 'INVALID_MESSAGE'],
    ['prototype op', { op: 'toString' }, 'UNKNOWN_OP'],
  ];
  it.each(cases)('%s', (_name, value, code) => {
    const decoded = decodeClientMessage(encodeRaw(value));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.code).toBe(code);
  });

  it('keeps the ref of an invalid request so the error can echo it', () => {
    const decoded = decodeClientMessage(encodeRaw({ op: 'join', ref: 77 }));
    expect(decoded).toMatchObject({ ok: false, code: 'INVALID_MESSAGE', ref: 77, op: 'join' });
  });
});

describe('frame check', () => {
  it('rejects every MessagePack extension type, fixext and ext8/16/32', () => {
    const frames = [
      [0xd4, 0x05, 0x01], // fixext 1
      [0xd5, 0x01, 0, 0],
      [0xd6, 0xff, 0, 0, 0, 1], // timestamp 32 → would be a Date
      [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1],
      [0xd8, 0x01, ...new Array(16).fill(0)],
      [0xc7, 0x01, 0x72, 0x00], // ext8 'r' = msgpackr record definition
      [0xc8, 0x00, 0x01, 0x01, 0x00],
      [0xc9, 0, 0, 0, 1, 0x01, 0x00],
      // nested inside a valid map: { op: 'hello', token: <timestamp> }
      [0x82, 0xa2, 0x6f, 0x70, 0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xa5, 0x74, 0x6f, 0x6b, 0x65, 0x6e, 0xd6, 0xff, 0, 0, 0, 1],
    ];
    for (const frame of frames) {
      const decoded = decodeClientMessage(Uint8Array.from(frame));
      expect(decoded).toMatchObject({ ok: false, code: 'UNSUPPORTED_TYPE' });
    }
  });

  it('rejects truncation at every position of a valid message', () => {
    const full = encodeMessage(clientSamples[0]);
    for (let len = 0; len < full.length; len++) {
      const decoded = decodeClientMessage(full.subarray(0, len));
      expect(decoded.ok, `length ${len}`).toBe(false);
      if (!decoded.ok) expect(decoded.code).toBe('BAD_MESSAGE');
    }
  });

  it('rejects trailing bytes, non-string keys, __proto__ keys, 0xc1 and deep nesting', () => {
    const valid = encodeMessage({ op: 'heartbeat', ack: 1 });
    expect(checkFrame(Buffer.concat([valid, Buffer.from([0x01])]))?.code).toBe('BAD_MESSAGE');
    expect(checkFrame(Uint8Array.from([0x81, 0x01, 0x02]))?.code).toBe('BAD_MESSAGE');
    expect(checkFrame(encodeRaw(JSON.parse('{"__proto__": {"x": 1}, "op": "hello"}')))?.code).toBe('BAD_MESSAGE');
    expect(checkFrame(Uint8Array.from([0xc1]))?.code).toBe('BAD_MESSAGE');
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(checkFrame(encodeRaw({ op: 'media', options: deep }))?.message).toMatch(/deep/);
  });

  it('rejects containers claiming more items than the frame holds (no huge allocation)', () => {
    expect(checkFrame(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]))?.code).toBe('BAD_MESSAGE');
    expect(checkFrame(Uint8Array.from([0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1]))?.code).toBe('BAD_MESSAGE');
    expect(checkFrame(Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]))?.code).toBe('BAD_MESSAGE');
  });

  it('never throws on random bytes (seeded fuzz, 20k frames)', () => {
    let state = 0x9e3779b9;
    const rand = (): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32;
    };
    const base = encodeMessage(clientSamples[1]);
    for (let i = 0; i < 20_000; i++) {
      let frame: Uint8Array;
      if (i % 2 === 0) {
        frame = Uint8Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      } else {
        frame = Uint8Array.from(base);
        for (let k = 0; k < 3; k++) frame[Math.floor(rand() * frame.length)] = Math.floor(rand() * 256);
      }
      const decoded = decodeClientMessage(frame);
      if (decoded.ok) expect(typeof decoded.message.op).toBe('string');
      else expect(typeof decoded.code).toBe('string');
    }
  });
});
