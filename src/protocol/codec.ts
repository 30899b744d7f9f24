import '../js-only.ts';
import { Packr } from 'msgpackr';
import type { z } from 'zod';
import type { ProtocolErrorCode } from './error-codes.ts';
import {
  clientSchemas,
  serverSchemas,
  type ClientMessage,
  type ClientOp,
  type ServerMessage,
  type ServerOp,
  type UnstampedServerMessage,
} from './messages.ts';

/**
 * MessagePack codec for protocol v1 (msgpackr). Structured clone and records are off: a frame is one
 * plain map, so any MessagePack implementation can speak the protocol. Inbound bytes are first
 * walked by `checkFrame` (spec: github.com/msgpack/msgpack/blob/master/spec.md), which rejects
 * extension types before msgpackr sees them — msgpackr would otherwise turn ext -1 into a Date and
 * ext 0x72 into record definitions that persist in the shared unpacker across sessions.
 */
const packr = new Packr({
  structuredClone: false,
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  bundleStrings: false,
  int64AsType: 'number',
  // bin values must not be views into the transport's receive buffer (uWS neuters it after the call).
  copyBuffers: true,
});

export const MAX_DEPTH = 16;

export interface DecodeFailure {
  ok: false;
  code: ProtocolErrorCode;
  message: string;
  /** The `op` when it could be read (for error replies and metrics). */
  op?: string;
  ref?: number;
}
export type DecodeResult<M> = { ok: true; message: M } | DecodeFailure;

/**
 * Structural check of one MessagePack value spanning exactly `bytes`: well-formed, no extension
 * types, no reserved 0xc1, string map keys only, nesting ≤ MAX_DEPTH, declared lengths within the
 * buffer. Returns null when fine, else the failure. Linear in the frame size, allocates nothing.
 */
export function checkFrame(bytes: Uint8Array): DecodeFailure | null {
  const n = bytes.length;
  if (n === 0) return { ok: false, code: 'BAD_MESSAGE', message: 'empty frame' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  // Explicit stack of "values still to read" per open container; keys count as values.
  const pending: number[] = [1];
  const keyExpected: boolean[] = [false];
  while (pending.length > 0) {
    const top = pending.length - 1;
    if (pending[top] === 0) {
      pending.pop();
      keyExpected.pop();
      continue;
    }
    pending[top]--;
    const isKey = keyExpected[top] && pending[top] % 2 === 1;
    if (pos >= n) return truncated();
    const b = bytes[pos++];
    let len = -1; // string/bin payload length to skip
    let container = -1; // number of child values
    let isMap = false;
    let isString = false;
    if (b <= 0x7f || b >= 0xe0) {
      // positive / negative fixint
    } else if (b <= 0x8f) {
      container = (b & 0x0f) * 2;
      isMap = true;
    } else if (b <= 0x9f) {
      container = b & 0x0f;
    } else if (b <= 0xbf) {
      len = b & 0x1f;
      isString = true;
    } else {
      switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break; // nil, false, true
        case 0xc1: return bad('reserved byte 0xc1');
        case 0xc4: if (pos + 1 > n) return truncated(); len = bytes[pos]; pos += 1; break;
        case 0xc5: if (pos + 2 > n) return truncated(); len = view.getUint16(pos); pos += 2; break;
        case 0xc6: if (pos + 4 > n) return truncated(); len = view.getUint32(pos); pos += 4; break;
        case 0xc7: case 0xc8: case 0xc9:
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
          return { ok: false, code: 'UNSUPPORTED_TYPE', message: 'MessagePack extension types are not accepted' };
        case 0xca: case 0xcc: case 0xd0: len = b === 0xca ? 4 : 1; break;
        case 0xcb: case 0xcf: case 0xd3: len = 8; break;
        case 0xcd: case 0xd1: len = 2; break;
        case 0xce: case 0xd2: len = 4; break;
        case 0xd9: if (pos + 1 > n) return truncated(); len = bytes[pos]; pos += 1; isString = true; break;
        case 0xda: if (pos + 2 > n) return truncated(); len = view.getUint16(pos); pos += 2; isString = true; break;
        case 0xdb: if (pos + 4 > n) return truncated(); len = view.getUint32(pos); pos += 4; isString = true; break;
        case 0xdc: if (pos + 2 > n) return truncated(); container = view.getUint16(pos); pos += 2; break;
        case 0xdd: if (pos + 4 > n) return truncated(); container = view.getUint32(pos); pos += 4; break;
        case 0xde: if (pos + 2 > n) return truncated(); container = view.getUint16(pos) * 2; pos += 2; isMap = true; break;
        case 0xdf: if (pos + 4 > n) return truncated(); container = view.getUint32(pos) * 2; pos += 4; isMap = true; break;
        default: return bad(`unexpected byte 0x${b.toString(16)}`);
      }
    }
    if (isKey && !isString) return bad('map keys must be strings');
    if (len >= 0) {
      if (pos + len > n) return truncated();
      if (isKey && len === 9 && isProtoKey(bytes, pos)) return bad('forbidden key');
      pos += len;
    }
    if (container >= 0) {
      // Every child needs at least one byte: a claimed size beyond the frame is a lie.
      if (container > n - pos) return truncated();
      if (pending.length >= MAX_DEPTH) return bad('nesting too deep');
      pending.push(container);
      keyExpected.push(isMap);
    }
  }
  if (pos !== n) return bad('trailing bytes after the message');
  return null;
}

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"
function isProtoKey(bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < 9; i++) if (bytes[at + i] !== PROTO[i]) return false;
  return true;
}
function truncated(): DecodeFailure {
  return { ok: false, code: 'BAD_MESSAGE', message: 'truncated MessagePack' };
}
function bad(message: string): DecodeFailure {
  return { ok: false, code: 'BAD_MESSAGE', message };
}

function issueText(error: z.ZodError): string {
  const first = error.issues[0];
  if (!first) return 'invalid message';
  const path = first.path.length > 0 ? first.path.join('.') : '(message)';
  return `${path}: ${first.message}`;
}

function decodeWith<Op extends string, M>(
  bytes: Uint8Array,
  schemas: Record<Op, z.ZodType>,
): DecodeResult<M> {
  const failure = checkFrame(bytes);
  if (failure) return failure;
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    return { ok: false, code: 'BAD_MESSAGE', message: `undecodable MessagePack: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, code: 'INVALID_MESSAGE', message: 'a message is a MessagePack map' };
  }
  const record = value as Record<string, unknown>;
  const ref = typeof record.ref === 'number' && Number.isSafeInteger(record.ref) && record.ref >= 0 ? record.ref : undefined;
  const op = record.op;
  if (typeof op !== 'string') return { ok: false, code: 'MISSING_OP', message: 'op is missing or not a string', ref };
  if (!Object.hasOwn(schemas, op)) {
    return { ok: false, code: 'UNKNOWN_OP', message: `unknown op "${op.slice(0, 64)}"`, op: op.slice(0, 64), ref };
  }
  const parsed = schemas[op as Op].safeParse(value);
  if (!parsed.success) return { ok: false, code: 'INVALID_MESSAGE', message: issueText(parsed.error), op, ref };
  return { ok: true, message: parsed.data as M };
}

/** Decode and validate one client→server frame (server side). Never throws. */
export function decodeClientMessage(bytes: Uint8Array): DecodeResult<ClientMessage> {
  return decodeWith<ClientOp, ClientMessage>(bytes, clientSchemas);
}

/** Decode and validate one server→client frame (client SDK side). Never throws. */
export function decodeServerMessage(bytes: Uint8Array): DecodeResult<ServerMessage> {
  return decodeWith<ServerOp, ServerMessage>(bytes, serverSchemas);
}

/**
 * Encode any protocol message. `undefined` fields are dropped (msgpackr would write nil for them,
 * which the schemas reject for optional-but-not-nullable fields).
 */
export function encodeMessage(message: ClientMessage | ServerMessage | UnstampedServerMessage): Uint8Array {
  const clean: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) if (value !== undefined) clean[key] = value;
  return packr.pack(clean);
}

/** Encode arbitrary data with the protocol's settings (tests, fuzzers, custom clients). */
export function encodeRaw(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decode arbitrary data with the protocol's settings, without validation. Throws on bad bytes. */
export function decodeRaw(bytes: Uint8Array): unknown {
  const failure = checkFrame(bytes);
  if (failure) throw new Error(failure.message);
  return packr.unpack(bytes);
}

const SEQ_KEY = [0xa3, 0x73, 0x65, 0x71]; // fixstr "seq"

/** Length of `stampSeq(body, seq)`'s output, without stamping. */
export function stampedLength(body: Uint8Array, seq: number): number {
  const count = mapCount(body);
  const headerLen = body[0] <= 0x8f ? 1 : body[0] === 0xde ? 3 : 5;
  const newCount = count + 1;
  const newHeaderLen = newCount <= 15 ? 1 : newCount <= 0xffff ? 3 : 5;
  return newHeaderLen + SEQ_KEY.length + seqLength(seq) + body.length - headerLen;
}

function mapCount(body: Uint8Array): number {
  const b0 = body[0];
  if (b0 >= 0x80 && b0 <= 0x8f) return b0 & 0x0f;
  if (b0 === 0xde) return (body[1] << 8) | body[2];
  if (b0 === 0xdf) return ((body[1] << 24) >>> 0) + ((body[2] << 16) | (body[3] << 8) | body[4]);
  throw new TypeError('stampSeq: body is not an encoded map');
}

function seqLength(seq: number): number {
  return seq <= 0x7f ? 1 : seq <= 0xff ? 2 : seq <= 0xffff ? 3 : seq <= 0xffffffff ? 5 : 9;
}

/**
 * Add `seq` to an already encoded message map without re-encoding it. The signalling server encodes
 * a room event once and stamps each recipient's own `seq` here (≤ 13 extra bytes, one copy), which
 * keeps fan-out cost O(recipients × copy) instead of O(recipients × encode). The body must be an
 * encoded map without a `seq` key (what `encodeMessage` produces for an unstamped message).
 */
export function stampSeq(body: Uint8Array, seq: number): Uint8Array {
  const out = Buffer.allocUnsafe(stampedLength(body, seq));
  stampSeqInto(body, seq, out);
  return out;
}

/**
 * `stampSeq` into a caller's buffer (≥ `stampedLength(body, seq)` bytes, not overlapping `body`);
 * returns the frame's length. Lets a transport that copies on send (uWS) stamp every recipient's
 * frame into one reused scratch buffer instead of allocating one per recipient.
 */
export function stampSeqInto(body: Uint8Array, seq: number, out: Uint8Array): number {
  const count = mapCount(body);
  const headerLen = body[0] <= 0x8f ? 1 : body[0] === 0xde ? 3 : 5;
  const newCount = count + 1;
  const seqLen = seqLength(seq);
  const prefixLen = (newCount <= 15 ? 1 : newCount <= 0xffff ? 3 : 5) + SEQ_KEY.length + seqLen;
  // Body first (its old header lands inside the prefix, which is written over it next): one copy
  // and no subarray view per frame.
  out.set(body, prefixLen - headerLen);
  let p = 0;
  if (newCount <= 15) out[p++] = 0x80 | newCount;
  else if (newCount <= 0xffff) {
    out[p++] = 0xde;
    out[p++] = newCount >>> 8;
    out[p++] = newCount & 0xff;
  } else {
    out[p++] = 0xdf;
    out[p++] = newCount >>> 24;
    out[p++] = (newCount >>> 16) & 0xff;
    out[p++] = (newCount >>> 8) & 0xff;
    out[p++] = newCount & 0xff;
  }
  out[p++] = SEQ_KEY[0];
  out[p++] = SEQ_KEY[1];
  out[p++] = SEQ_KEY[2];
  out[p++] = SEQ_KEY[3];
  if (seqLen === 1) out[p++] = seq;
  else if (seqLen === 2) {
    out[p++] = 0xcc;
    out[p++] = seq;
  } else if (seqLen === 3) {
    out[p++] = 0xcd;
    out[p++] = seq >>> 8;
    out[p++] = seq & 0xff;
  } else if (seqLen === 5) {
    out[p++] = 0xce;
    out[p++] = seq >>> 24;
    out[p++] = (seq >>> 16) & 0xff;
    out[p++] = (seq >>> 8) & 0xff;
    out[p++] = seq & 0xff;
  } else {
    out[p++] = 0xcf;
    const hi = Math.floor(seq / 0x1_0000_0000);
    const lo = seq >>> 0;
    out[p++] = hi >>> 24;
    out[p++] = (hi >>> 16) & 0xff;
    out[p++] = (hi >>> 8) & 0xff;
    out[p++] = hi & 0xff;
    out[p++] = lo >>> 24;
    out[p++] = (lo >>> 16) & 0xff;
    out[p++] = (lo >>> 8) & 0xff;
    out[p++] = lo & 0xff;
  }
  return prefixLen + body.length - headerLen;
}
