/**
 * A protocol-aware generator of hostile signalling frames, shared by the fuzz test
 * (test/fuzz/signalling-fuzz.test.ts) and the soak bench (bench/soak). Deterministic for a seed,
 * so a failing frame can be reproduced from the seed and its index.
 *
 * Kinds of frame, each a MessagePack value unless it says otherwise:
 * - valid: a v1 client op with plausible but random field values (ids, refs, SDP, candidates);
 * - boundary: fields at and just past their schema bounds (0, 1, max, max + 1 chars; int limits);
 * - wrong types: a field of the op with a value of another type, or an extra unknown field;
 * - nested: arrays/maps nested 1 … 40 deep (the decoder's limit is 16);
 * - ext: MessagePack extension types (timestamp −1, msgpackr records 0x72, random types and sizes);
 * - proto: `__proto__`, `constructor`, `prototype` keys at the top and inside fields;
 * - garbage: random bytes, truncated or lying headers (container/string lengths past the end).
 */
import { Packr } from 'msgpackr';
import { clientOps, type ClientOp } from '../../src/protocol/messages.ts';

const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false });

/** xorshift32: fast and deterministic; not for anything but test data. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s / 0x1_0000_0000;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export const frameKinds = ['valid', 'boundary', 'wrongType', 'nested', 'ext', 'proto', 'garbage'] as const;
export type FrameKind = (typeof frameKinds)[number];

export interface FuzzFrame {
  kind: FrameKind;
  bytes: Uint8Array;
}

const ROOM_CHARS = 'abcXYZ019._-:@/~';
const WEIRD_STRINGS = ['', ' ', '\u0000', '\uffff', '\ud800', '💥', '../../etc/passwd', '%s%n', '<script>', 'a'.repeat(300), '*', 'room\n2'];

function randomString(rng: Rng, max: number): string {
  if (rng.chance(0.2)) return rng.pick(WEIRD_STRINGS);
  const n = rng.int(max + 1);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.chance(0.9) ? ROOM_CHARS[rng.int(ROOM_CHARS.length)] : String.fromCharCode(rng.int(0x3000));
  return s;
}

function randomNumber(rng: Rng): number {
  return rng.pick([0, -1, 1, 0.5, -0.0, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, Number.NaN, Infinity, -Infinity, rng.int(1000)]);
}

function randomScalar(rng: Rng): unknown {
  switch (rng.int(7)) {
    case 0: return randomString(rng, 40);
    case 1: return randomNumber(rng);
    case 2: return rng.chance(0.5);
    case 3: return null;
    case 4: return Uint8Array.from({ length: rng.int(16) }, () => rng.int(256));
    case 5: return [randomString(rng, 8), rng.int(10)];
    default: return { k: randomString(rng, 8) };
  }
}

const MEDIA_KINDS = ['offer', 'answer', 'candidate', 'ice_restart', 'subscribe_video', 'unsubscribe_video'];

/** A plausible message for `op` (most pass the schema; semantics are random: rooms not joined, etc.). */
function validOp(rng: Rng, op: ClientOp, rooms: readonly string[]): Record<string, unknown> {
  const room = rng.chance(0.7) ? rng.pick(rooms) : randomString(rng, 20) || 'r';
  const ref = rng.chance(0.8) ? rng.int(1_000_000) : undefined;
  switch (op) {
    case 'hello': return { op, ref, token: rng.chance(0.5) ? 'eyJhbGciOiJIUzI1NiJ9.' + randomString(rng, 60) + '.sig' : randomString(rng, 200) || 'x' };
    case 'resume': return { op, ref, sessionId: randomString(rng, 20) || 's', resumeToken: randomString(rng, 40) || 't', lastSeq: rng.int(100) };
    case 'refresh': return { op, ref, token: randomString(rng, 300) || 'x' };
    case 'heartbeat': return { op, ref, ack: rng.int(1000) };
    case 'join': return { op, ref, room, options: rng.chance(0.5) ? { muted: rng.chance(0.5), mode: rng.pick(['sfu', 'mix', 'hybrid', 'p2p', 'auto']), ticket: rng.chance(0.2) ? randomString(rng, 80) : undefined } : undefined };
    case 'leave': return { op, ref, room };
    case 'mute':
    case 'unmute': return { op, ref, room, participantId: rng.chance(0.5) ? randomString(rng, 10) || 'p' : undefined };
    case 'record': return { op, ref, room, action: rng.pick(['start', 'stop']) };
    case 'media': {
      const kind = rng.pick(MEDIA_KINDS);
      return {
        op, ref, room, kind,
        sdp: kind === 'offer' || kind === 'answer' ? 'v=0\r\n' + randomString(rng, 200) : undefined,
        candidate: kind === 'candidate' ? { candidate: 'candidate:' + randomString(rng, 60), sdpMid: '0', sdpMLineIndex: rng.int(3) } : undefined,
        participantId: kind.endsWith('video') ? randomString(rng, 10) || 'p' : undefined,
        negotiationId: rng.chance(0.5) ? rng.int(100) : undefined,
      };
    }
    case 'peer': {
      const kind = rng.pick(['offer', 'answer', 'candidate', 'switched']);
      return {
        op, ref, room, kind, link: rng.int(10),
        to: rng.chance(0.7) ? randomString(rng, 10) || 'p' : undefined,
        sdp: kind === 'offer' || kind === 'answer' ? 'v=0\r\n' + randomString(rng, 200) : undefined,
        candidate: kind === 'candidate' ? { candidate: 'candidate:' + randomString(rng, 60), sdpMid: '0' } : undefined,
        transport: kind === 'switched' ? rng.pick(['direct', 'server']) : undefined,
      };
    }
  }
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function boundaryOp(rng: Rng, rooms: readonly string[]): Record<string, unknown> {
  const op = rng.pick(clientOps);
  const msg = stripUndefined(validOp(rng, op, rooms));
  const lengths = [0, 1, 63, 64, 65, 127, 128, 129, 2048, 2049, 8192, 8193];
  const keys = Object.keys(msg).filter((k) => k !== 'op');
  if (keys.length === 0) return msg;
  const key = rng.pick(keys);
  if (typeof msg[key] === 'string') msg[key] = 'a'.repeat(rng.pick(lengths));
  else if (typeof msg[key] === 'number') msg[key] = rng.pick([-1, 0, 2 ** 53 - 1, 2 ** 53, 2 ** 64, -(2 ** 63), 1.5]);
  else msg[key] = randomScalar(rng);
  return msg;
}

function wrongTypeOp(rng: Rng, rooms: readonly string[]): Record<string, unknown> {
  const msg = stripUndefined(validOp(rng, rng.pick(clientOps), rooms));
  const keys = Object.keys(msg);
  const key = rng.pick(keys);
  msg[key] = randomScalar(rng); // may hit `op` itself
  if (rng.chance(0.3)) msg[randomString(rng, 12) || 'x'] = randomScalar(rng);
  return msg;
}

function nested(rng: Rng): unknown {
  const depth = 1 + rng.int(40);
  let v: unknown = rng.chance(0.5) ? 'leaf' : 1;
  for (let i = 0; i < depth; i++) v = rng.chance(0.5) ? [v] : { v };
  return rng.chance(0.5) ? { op: rng.pick(clientOps), room: v, ref: 1 } : v;
}

/** A raw MessagePack map { op: <op>, x: <ext> } with the extension bytes written by hand. */
function extFrame(rng: Rng): Uint8Array {
  const type = rng.pick([-1, 0x72, 0x73, 0x74, 0x78, 0, 1, 127, -128, rng.int(256) - 128]);
  const sizes: [number, number][] = [[0xd4, 1], [0xd5, 2], [0xd6, 4], [0xd7, 8], [0xd8, 16]];
  let ext: number[];
  if (rng.chance(0.6)) {
    const [marker, size] = rng.pick(sizes);
    ext = [marker, type & 0xff, ...Array.from({ length: size }, () => rng.int(256))];
  } else {
    const size = rng.int(40);
    ext = [0xc7, size, type & 0xff, ...Array.from({ length: size }, () => rng.int(256))];
  }
  const op = packr.pack(rng.pick(clientOps));
  // fixmap of 2: "op" → op, "x" → ext; or the ext value alone as the whole frame.
  if (rng.chance(0.2)) return Uint8Array.from(ext);
  return Uint8Array.from([0x82, 0xa2, 0x6f, 0x70, ...op, 0xa1, 0x78, ...ext]);
}

/** Maps with prototype-polluting keys, written by hand (a JS object literal cannot hold `__proto__` as data). */
function protoFrame(rng: Rng, rooms: readonly string[]): Uint8Array {
  const key = rng.pick(['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString']);
  const base = stripUndefined(validOp(rng, rng.pick(clientOps), rooms));
  const body = packr.pack(base);
  const count = Object.keys(base).length;
  const keyBytes = Buffer.from(key);
  const evil = packr.pack(rng.chance(0.5) ? { polluted: true, admin: true } : rng.chance(0.5) ? 'x' : [1]);
  const header = count + 1 <= 15 ? [0x80 | (count + 1)] : [0xde, 0, count + 1];
  const skip = count <= 15 ? 1 : 3;
  const pair = [0xa0 | keyBytes.length, ...keyBytes, ...evil];
  // The evil pair first or last: decoders differ in which wins.
  return rng.chance(0.5)
    ? Uint8Array.from([...header, ...pair, ...body.subarray(skip)])
    : Uint8Array.from([...header, ...body.subarray(skip), ...pair]);
}

function garbage(rng: Rng): Uint8Array {
  switch (rng.int(5)) {
    case 0: return Uint8Array.from({ length: 1 + rng.int(64) }, () => rng.int(256));
    case 1: return Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]); // array of 4 G elements
    case 2: return Uint8Array.from([0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61]); // string of 2 GB
    case 3: {
      const ok = packr.pack({ op: 'heartbeat', ack: 1 });
      return ok.subarray(0, Math.max(1, rng.int(ok.length))); // truncated
    }
    default: {
      const ok = packr.pack({ op: 'heartbeat', ack: 1 });
      return Uint8Array.from([...ok, ...Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))]); // trailing bytes
    }
  }
}

/**
 * Frames for a connection that has a session: `rooms` are rooms the session may be in (so part of
 * the valid ops hit real state). `hello` frames with garbage tokens close the connection with 1008
 * only before a session exists; after it they are ALREADY_AUTHENTICATED errors.
 */
export function* fuzzFrames(seed: number, count: number, rooms: readonly string[]): Generator<FuzzFrame> {
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) {
    const kind = rng.pick(frameKinds);
    let bytes: Uint8Array;
    switch (kind) {
      case 'valid': bytes = packr.pack(stripUndefined(validOp(rng, rng.pick(clientOps), rooms))); break;
      case 'boundary': bytes = packr.pack(boundaryOp(rng, rooms)); break;
      case 'wrongType': bytes = packr.pack(wrongTypeOp(rng, rooms)); break;
      case 'nested': bytes = packr.pack(nested(rng)); break;
      case 'ext': bytes = extFrame(rng); break;
      case 'proto': bytes = protoFrame(rng, rooms); break;
      case 'garbage': bytes = garbage(rng); break;
    }
    yield { kind, bytes };
  }
}
