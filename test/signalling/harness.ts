import WebSocket from 'ws';
import { resolveAuthKeys } from '../../src/auth/keys.ts';
import { ClusterPresence } from '../../src/cluster/presence.ts';
import { mintToken, type MintTokenOptions } from '../../src/auth/tokens.ts';
import { loadConfig, type VoxConfig, type VoxConfigInput } from '../../src/config.ts';
import { decodeServerMessage, encodeMessage, encodeRaw } from '../../src/protocol/codec.ts';
import type { ClientMessage, ServerMessage } from '../../src/protocol/messages.ts';
import { recordingRoutes } from '../../src/recording/routes.ts';
import { startServer, type StartServerOptions, type VoxServer } from '../../src/signalling/server.ts';

/**
 * Test harness: a real uWS server on an ephemeral port (with the recordings routes, as main.ts
 * composes it, unless `options.routes` says otherwise) and raw `ws` protocol clients.
 */
export const SECRET = 'test-secret-0123456789-abcdefghij';

export interface TestServer {
  server: VoxServer;
  config: VoxConfig;
  wsUrl: string;
  token(userId: string, extra?: Partial<MintTokenOptions>): Promise<string>;
  close(): Promise<void>;
}

export async function startTestServer(overrides: VoxConfigInput = {}, options: StartServerOptions = {}): Promise<TestServer> {
  const config = loadConfig({
    env: {},
    overrides: {
      ...overrides,
      server: { host: '127.0.0.1', port: 0, ...overrides.server },
      auth: { hs256Secret: SECRET, ...overrides.auth },
      metrics: { defaultMetrics: false, ...overrides.metrics },
    },
  });
  const keys = options.keys ?? resolveAuthKeys(config);
  // VOXLINK_TEST_PRESENCE=cluster runs a file against the cluster node's presence (docs/architecture.md
  // "Presence and adding a cluster implementation": a new implementation must pass these tests).
  const presence = options.presence ?? (process.env.VOXLINK_TEST_PRESENCE === 'cluster' ? new ClusterPresence() : undefined);
  const server = await startServer(config, { keys, routes: [recordingRoutes(config, keys)], ...options, ...(presence ? { presence } : {}) });
  return {
    server,
    config,
    wsUrl: `ws://127.0.0.1:${server.port}/ws`,
    token: (userId, extra = {}) =>
      mintToken({ key: SECRET, userId, name: extra.name ?? `User ${userId}`, room: '*', grants: ['join', 'publish', 'subscribe'], ...extra }),
    close: () => server.close(),
  };
}

export interface Closed {
  code: number;
  reason: string;
}

/** A raw protocol client: every decoded server message in order, waits by predicate. */
export class RawClient {
  readonly ws: WebSocket;
  readonly received: ServerMessage[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;
  #waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void; from: number }[] = [];
  #ref = 1;

  constructor(url: string, protocols: string | string[] = 'voxlink.v1', options?: WebSocket.ClientOptions) {
    this.ws = new WebSocket(url, protocols, options);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data: Buffer) => {
      const decoded = decodeServerMessage(data);
      if (!decoded.ok) throw new Error(`server sent an invalid message: ${decoded.message}`);
      this.received.push(decoded.message);
      const index = this.received.length - 1;
      this.#waiters = this.#waiters.filter((w) => {
        if (index >= w.from && w.pred(decoded.message)) {
          w.resolve(decoded.message);
          return false;
        }
        return true;
      });
    });
  }

  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<RawClient> {
    const client = new RawClient(url, 'voxlink.v1', options);
    await client.opened;
    return client;
  }

  nextRef(): number {
    return this.#ref++;
  }

  send(message: ClientMessage): void {
    this.ws.send(encodeMessage(message));
  }

  sendRaw(value: unknown): void {
    this.ws.send(encodeRaw(value));
  }

  sendBytes(bytes: Uint8Array | string): void {
    this.ws.send(bytes);
  }

  /** First message (received from index `from` on, default: any so far) matching `pred`. */
  waitFor<M extends ServerMessage = ServerMessage>(pred: (m: ServerMessage) => boolean, timeoutMs = 5000, from = 0): Promise<M> {
    for (let i = from; i < this.received.length; i++) if (pred(this.received[i])) return Promise.resolve(this.received[i] as M);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting; got ${JSON.stringify(this.received.slice(-5).map((m) => m.op))}`)), timeoutMs);
      this.#waiters.push({
        pred,
        from,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as M);
        },
      });
    });
  }

  waitOp<Op extends ServerMessage['op']>(op: Op, extra: (m: Extract<ServerMessage, { op: Op }>) => boolean = () => true, timeoutMs = 5000): Promise<Extract<ServerMessage, { op: Op }>> {
    return this.waitFor((m) => m.op === op && extra(m as Extract<ServerMessage, { op: Op }>), timeoutMs);
  }

  /** Send with a fresh ref and wait for the reply (or error) carrying it. */
  async request(message: ClientMessage, timeoutMs = 5000): Promise<ServerMessage> {
    const ref = this.nextRef();
    this.send({ ...message, ref } as ClientMessage);
    return this.waitFor((m) => m.ref === ref, timeoutMs);
  }

  async hello(token: string): Promise<Extract<ServerMessage, { op: 'ready' }>> {
    const reply = await this.request({ op: 'hello', token });
    if (reply.op !== 'ready') throw new Error(`expected ready, got ${JSON.stringify(reply)}`);
    return reply;
  }

  async join(room: string): Promise<Extract<ServerMessage, { op: 'joined' }>> {
    const reply = await this.request({ op: 'join', room });
    if (reply.op !== 'joined') throw new Error(`expected joined, got ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Highest seq received so far. */
  lastSeq(): number {
    let max = 0;
    for (const m of this.received) if (m.seq !== undefined && m.seq > max) max = m.seq;
    return max;
  }

  close(code = 1000): void {
    this.ws.close(code);
  }

  /** Abrupt drop (no close frame): the server sees 1006 and keeps the session for resume. */
  drop(): void {
    this.ws.terminate();
  }
}

/** Connect, hello, join: a participant in `room`. */
export async function participant(t: TestServer, userId: string, room?: string, extra?: Partial<MintTokenOptions>): Promise<RawClient> {
  const client = await RawClient.connect(t.wsUrl);
  await client.hello(await t.token(userId, extra));
  if (room) await client.join(room);
  return client;
}

/** Current presence of a room as seen from a client's event stream (joined snapshot + events). */
export function presenceFrom(client: RawClient, room: string): Map<string, { name: string; muted: boolean; userId: string }> {
  const view = new Map<string, { name: string; muted: boolean; userId: string }>();
  for (const m of client.received) {
    if (m.op === 'joined' && m.room === room) {
      view.clear();
      for (const p of m.participants) view.set(p.participantId, { name: p.name, muted: p.muted, userId: p.userId });
    } else if ((m.op === 'participant_joined' || m.op === 'participant_updated') && m.room === room) {
      view.set(m.participant.participantId, { name: m.participant.name, muted: m.participant.muted, userId: m.participant.userId });
    } else if (m.op === 'participant_left' && m.room === room) {
      view.delete(m.participantId);
    }
  }
  return view;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns true (for effects with no reply message). */
export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(10);
  }
}
