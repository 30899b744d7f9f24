import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';

/**
 * A deliberately independent, minimal STUN/TURN client for tests: it checks coturn against the
 * RFCs rather than against werift's own TURN client. UDP only, one request at a time.
 *
 * RFC 5389 §6 message header:
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |0 0|     STUN Message Type     |         Message Length        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                         Magic Cookie                          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                     Transaction ID (96 bits)                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * followed by type-length-value attributes padded to 4 bytes (§15).
 */
const HEADER_BYTES = 20;
const MAGIC_COOKIE = 0x2112a442;

/** Methods (RFC 5389 §18.1, RFC 5766 §13) and the class bits C1/C0 of the type field (§6). */
export const METHOD_BINDING = 0x001;
export const METHOD_ALLOCATE = 0x003;
export const METHOD_REFRESH = 0x004;
export const METHOD_CREATE_PERMISSION = 0x008;
const CLASS_SUCCESS = 0x100;
const CLASS_ERROR = 0x110;

/** Attribute types (RFC 5389 §18.2, RFC 5766 §14). */
const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_ERROR_CODE = 0x0009;
const ATTR_LIFETIME = 0x000d;
const ATTR_XOR_PEER_ADDRESS = 0x0012;
const ATTR_REALM = 0x0014;
const ATTR_NONCE = 0x0015;
const ATTR_XOR_RELAYED_ADDRESS = 0x0016;
const ATTR_REQUESTED_TRANSPORT = 0x0019;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
/** IANA protocol number for UDP in REQUESTED-TRANSPORT (RFC 5766 §14.7). */
const PROTOCOL_UDP = 17;
const MESSAGE_INTEGRITY_BYTES = 4 + 20;

export interface StunResponse {
  /** 'success' or 'error' class (RFC 5389 §6). */
  kind: 'success' | 'error';
  /** ERROR-CODE class*100 + number (RFC 5389 §15.6), 0 on success. */
  errorCode: number;
  reason: string;
  realm?: string;
  nonce?: string;
  lifetime?: number;
  relayed?: [string, number];
  mapped?: [string, number];
  /** MESSAGE-INTEGRITY present and valid under the request's key; undefined if the response had none. */
  integrityOk?: boolean;
  raw: Buffer;
}

function attribute(type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/**
 * Long-term credential key, RFC 5389 §15.4: MD5(username ":" realm ":" SASLprep(password)). For
 * TURN REST credentials the "password" is the base64 HMAC the client was handed.
 */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`).digest();
}

/** Encodes a request; with `key`, appends MESSAGE-INTEGRITY computed per RFC 5389 §15.4. */
export function encodeRequest(method: number, transactionId: Buffer, attributes: Buffer[], key?: Buffer): Buffer {
  const body = Buffer.concat(attributes);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(method, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  if (key === undefined) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // The length field must already count the MESSAGE-INTEGRITY attribute when the HMAC is taken.
  header.writeUInt16BE(body.length + MESSAGE_INTEGRITY_BYTES, 2);
  const hmac = createHmac('sha1', key).update(header).update(body).digest();
  return Buffer.concat([header, body, attribute(ATTR_MESSAGE_INTEGRITY, hmac)]);
}

function xorAddress(value: Buffer): [string, number] {
  // RFC 5389 §15.2: family at byte 1, port XOR the cookie's top 16 bits, IPv4 XOR the cookie.
  const port = value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
  const ip = (value.readUInt32BE(4) ^ MAGIC_COOKIE) >>> 0;
  return [`${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`, port];
}

function encodeXorAddress(ip: string, port: number): Buffer {
  const value = Buffer.alloc(8);
  value[1] = 0x01; // IPv4
  value.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 2);
  const octets = ip.split('.').map(Number);
  const addr = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  value.writeUInt32BE((addr ^ MAGIC_COOKIE) >>> 0, 4);
  return value;
}

export function decodeResponse(raw: Buffer, transactionId: Buffer, key?: Buffer): StunResponse | null {
  if (raw.length < HEADER_BYTES || raw.readUInt32BE(4) !== MAGIC_COOKIE) return null;
  if (!raw.subarray(8, 20).equals(transactionId)) return null;
  const type = raw.readUInt16BE(0);
  const cls = type & 0x110;
  if (cls !== CLASS_SUCCESS && cls !== CLASS_ERROR) return null;
  const out: StunResponse = { kind: cls === CLASS_SUCCESS ? 'success' : 'error', errorCode: 0, reason: '', raw };
  const end = HEADER_BYTES + raw.readUInt16BE(2);
  let offset = HEADER_BYTES;
  while (offset + 4 <= end) {
    const attrType = raw.readUInt16BE(offset);
    const length = raw.readUInt16BE(offset + 2);
    const value = raw.subarray(offset + 4, offset + 4 + length);
    switch (attrType) {
      case ATTR_ERROR_CODE:
        out.errorCode = (value[2] & 0x7) * 100 + value[3];
        out.reason = value.subarray(4).toString('utf8');
        break;
      case ATTR_REALM:
        out.realm = value.toString('utf8');
        break;
      case ATTR_NONCE:
        out.nonce = value.toString('utf8');
        break;
      case ATTR_LIFETIME:
        out.lifetime = value.readUInt32BE(0);
        break;
      case ATTR_XOR_RELAYED_ADDRESS:
        out.relayed = xorAddress(value);
        break;
      case ATTR_XOR_MAPPED_ADDRESS:
        out.mapped = xorAddress(value);
        break;
      case ATTR_MESSAGE_INTEGRITY:
        if (key !== undefined) {
          // Recompute over everything before this attribute with the length ending right after it.
          const covered = Buffer.from(raw.subarray(0, offset));
          covered.writeUInt16BE(offset + MESSAGE_INTEGRITY_BYTES - HEADER_BYTES, 2);
          out.integrityOk = createHmac('sha1', key).update(covered).digest().equals(value);
        }
        break;
    }
    offset += 4 + Math.ceil(length / 4) * 4;
  }
  return out;
}

/** One UDP socket talking to one STUN/TURN server; requests are retransmitted (RFC 5389 §7.2.1). */
const usedLocalPorts = new Set<number>();

export class StunClient {
  readonly #socket: Socket;
  readonly #server: { host: string; port: number };
  #pending: { id: Buffer; key?: Buffer; resolve: (r: StunResponse) => void } | null = null;

  private constructor(socket: Socket, server: { host: string; port: number }) {
    this.#socket = socket;
    this.#server = server;
    socket.on('message', (msg) => {
      const p = this.#pending;
      if (p === null) return;
      const res = decodeResponse(msg, p.id, p.key);
      if (res === null) return;
      this.#pending = null;
      p.resolve(res);
    });
  }

  /**
   * Binds a local port this process has not used before. coturn keys an allocation by the UDP
   * 5-tuple, so a socket that happened to get the port of an earlier socket whose allocation was
   * not released (a Refresh lost under load) would draw 437 Allocation Mismatch.
   */
  static async open(host: string, port: number): Promise<StunClient> {
    for (;;) {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, '127.0.0.1', () => resolve());
      });
      const local = socket.address().port;
      if (!usedLocalPorts.has(local)) {
        usedLocalPorts.add(local);
        return new StunClient(socket, { host, port });
      }
      socket.close();
    }
  }

  /** Sends `method` with `attributes` (+ MESSAGE-INTEGRITY under `key`) and waits for the answer. */
  async request(method: number, attributes: Buffer[], key?: Buffer, timeoutMs = 2_000): Promise<StunResponse> {
    const id = randomBytes(12);
    const packet = encodeRequest(method, id, attributes, key);
    return new Promise((resolve, reject) => {
      let rto = 100;
      let timer: NodeJS.Timeout;
      const deadline = Date.now() + timeoutMs;
      const send = (): void => {
        if (Date.now() > deadline) {
          this.#pending = null;
          reject(new Error(`no STUN response from ${this.#server.host}:${this.#server.port} within ${timeoutMs} ms`));
          return;
        }
        this.#socket.send(packet, this.#server.port, this.#server.host);
        timer = setTimeout(send, rto);
        rto = Math.min(rto * 2, 800);
      };
      this.#pending = {
        id,
        key,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      send();
    });
  }

  /** Sends a packet that expects no answer (an indication). */
  sendRaw(packet: Buffer): void {
    this.#socket.send(packet, this.#server.port, this.#server.host);
  }

  close(): void {
    this.#socket.close();
  }
}

/** Send indication (RFC 5766 §10.1): method 0x006, class indication (0x010). */
const SEND_INDICATION = 0x0016;
const ATTR_DATA = 0x0013;

/**
 * One TURN client 5-tuple (RFC 5766 §2.2) with the long-term credential mechanism (RFC 5389
 * §10.2.2): `allocate()` sends an unauthenticated Allocate, which draws 401 with REALM and NONCE,
 * then repeats it with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed with
 * MD5(username:realm:password). Later requests (CreatePermission §9, Refresh §7) are signed alike.
 */
export class TurnSession {
  readonly #client: StunClient;
  #auth: Buffer[] = [];
  #key: Buffer | undefined;
  /** The 401 the unauthenticated Allocate drew. */
  challenge: StunResponse | undefined;

  private constructor(client: StunClient) {
    this.#client = client;
  }

  static async open(host: string, port: number): Promise<TurnSession> {
    return new TurnSession(await StunClient.open(host, port));
  }

  async allocate(username: string, password: string): Promise<StunResponse> {
    const transport = attribute(ATTR_REQUESTED_TRANSPORT, Buffer.from([PROTOCOL_UDP, 0, 0, 0]));
    const challenge = await this.#client.request(METHOD_ALLOCATE, [transport]);
    this.challenge = challenge;
    if (challenge.kind !== 'error' || challenge.errorCode !== 401 || challenge.realm === undefined || challenge.nonce === undefined) {
      throw new Error(`expected a 401 challenge with REALM and NONCE, got ${challenge.kind} ${challenge.errorCode}`);
    }
    this.#key = longTermKey(username, challenge.realm, password);
    this.#auth = [
      attribute(ATTR_USERNAME, Buffer.from(username, 'utf8')),
      attribute(ATTR_REALM, Buffer.from(challenge.realm, 'utf8')),
      attribute(ATTR_NONCE, Buffer.from(challenge.nonce, 'utf8')),
    ];
    return this.#client.request(METHOD_ALLOCATE, [transport, ...this.#auth], this.#key);
  }

  /** CreatePermission for `ip` (RFC 5766 §9.1; the port is ignored by permissions). */
  createPermission(ip: string): Promise<StunResponse> {
    return this.#client.request(METHOD_CREATE_PERMISSION, [attribute(ATTR_XOR_PEER_ADDRESS, encodeXorAddress(ip, 0)), ...this.#auth], this.#key);
  }

  /**
   * `count` Send indications (RFC 5766 §10) of `data` to a peer the allocation has a permission
   * for: coturn relays each from the relayed address. Indications are not authenticated.
   */
  send(ip: string, port: number, data: Buffer, count = 1): void {
    const attrs = [attribute(ATTR_XOR_PEER_ADDRESS, encodeXorAddress(ip, port)), attribute(ATTR_DATA, data)];
    for (let i = 0; i < count; i++) this.#client.sendRaw(encodeRequest(SEND_INDICATION, randomBytes(12), attrs));
  }

  /** Refresh (RFC 5766 §7.1); LIFETIME 0 releases the allocation. */
  refresh(lifetimeSec: number): Promise<StunResponse> {
    const lifetime = Buffer.alloc(4);
    lifetime.writeUInt32BE(lifetimeSec, 0);
    return this.#client.request(METHOD_REFRESH, [attribute(ATTR_LIFETIME, lifetime), ...this.#auth], this.#key);
  }

  close(): void {
    this.#client.close();
  }
}

export type AllocateOutcome =
  | {
      ok: true;
      relayed: [string, number];
      lifetime: number;
      integrityOk: boolean | undefined;
      challenge: StunResponse;
      /** CreatePermission result per requested peer IP: 0 = granted, else the error code. */
      permissions: Record<string, number>;
    }
  | { ok: false; errorCode: number; reason: string; challenge: StunResponse };

/**
 * One-shot: Allocate with these credentials, ask for a permission to each of `peers`, then
 * release the allocation (Refresh with LIFETIME 0) so tests leave coturn empty.
 */
export async function allocate(
  host: string,
  port: number,
  username: string,
  password: string,
  peers: string[] = [],
): Promise<AllocateOutcome> {
  const session = await TurnSession.open(host, port);
  try {
    const res = await session.allocate(username, password);
    const challenge = session.challenge!;
    if (res.kind === 'error' || res.relayed === undefined) {
      return { ok: false, errorCode: res.errorCode, reason: res.reason, challenge };
    }
    const permissions: Record<string, number> = {};
    for (const ip of peers) {
      const permit = await session.createPermission(ip);
      permissions[ip] = permit.kind === 'success' ? 0 : permit.errorCode;
    }
    await session.refresh(0).catch(() => undefined);
    return { ok: true, relayed: res.relayed, lifetime: res.lifetime ?? 0, integrityOk: res.integrityOk, challenge, permissions };
  } finally {
    session.close();
  }
}

/** A STUN Binding round trip (RFC 5389 §7): how a test knows coturn's UDP listener is up. */
export async function bindingWorks(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const client = await StunClient.open(host, port);
  try {
    const res = await client.request(METHOD_BINDING, [], undefined, timeoutMs);
    return res.kind === 'success';
  } catch {
    return false;
  } finally {
    client.close();
  }
}
