/**
 * Shared fixtures for the client SDK tests: the real signalling server (src/signalling's
 * startServer on port 0), token minting, and a `ws` WebSocket subclass that remembers its
 * instances so a test can cut the underlying TCP socket the way a network drop would.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { mintToken } from '../../src/auth/index.ts';
import { parseConfig, type VoxConfigInput } from '../../src/config.ts';
import { startServer, type VoxServer } from '../../src/signalling/index.ts';
import type { VoxClient, VoxClientOptions, WebSocketConstructor, ReconnectPolicy } from '../../src/client/index.ts';
import { createNodeClient } from '../../src/client/node.ts';

export const SECRET = 'client-sdk-test-secret-0123456789abcdef';

export interface TestServer {
  server: VoxServer;
  url: string;
  /**
   * The server closes the session's connection with `code` (SignallingCore.disconnect): with a
   * resumable code the session waits for `resume`, the way a server-side drop looks to a client.
   */
  drop(sessionId: string, code: number, reason: string): void;
  token(userId: string, rooms?: { room: string; grants: Array<'join' | 'publish' | 'subscribe' | 'admin'> }[]): Promise<string>;
  close(): Promise<void>;
}

export async function startTestServer(signalling: NonNullable<VoxConfigInput['signalling']> = {}): Promise<TestServer> {
  const config = parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    dataDir: mkdtempSync(join(tmpdir(), 'voxlink-client-')),
    auth: { hs256Secret: SECRET },
    signalling,
    metrics: { enabled: false, defaultMetrics: false },
  });
  const server = await startServer(config);
  return {
    server,
    url: `ws://127.0.0.1:${server.port}/ws`,
    drop(sessionId, code, reason) {
      if (!server.core.disconnect(sessionId, code, reason)) throw new Error(`session ${sessionId} has no connection to drop`);
    },
    token: (userId, rooms) => mintToken({ key: SECRET, userId, rooms: rooms ?? [{ room: '*', grants: ['join', 'publish', 'subscribe'] }] }),
    close: () => server.close(),
  };
}

/**
 * `ws` with a registry of instances, injected through VoxClientOptions.WebSocket. While `gate.closed`
 * is set, new sockets are pointed at a port nobody listens on, so reconnect attempts fail fast and
 * the client stays away exactly as long as the test wants (no timing assumptions on a busy host).
 */
export function trackedWebSocket(): { WebSocket: WebSocketConstructor; sockets: WebSocket[]; gate: { closed: boolean } } {
  const sockets: WebSocket[] = [];
  const gate = { closed: false };
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(gate.closed ? 'ws://127.0.0.1:1/ws' : url, protocols);
      sockets.push(this);
    }
  }
  return { WebSocket: Tracked as unknown as WebSocketConstructor, sockets, gate };
}

export function fixedDelayPolicy(delayMs: number, maxRetries = 20): ReconnectPolicy {
  return { nextRetryDelayMs: ({ retryCount }) => (retryCount < maxRetries ? delayMs : null) };
}

/** Through the Node entry (node.ts), which supplies `ws` unless a test injects its own class. */
export function newClient(options: VoxClientOptions = {}): VoxClient {
  return createNodeClient({ requestTimeoutMs: 5_000, ...options });
}

export function waitFor<T>(what: string, predicate: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const value = predicate();
      if (value) return resolve(value);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}

export function nextState(client: VoxClient, state: string, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for state ${state} (now ${client.state})`)), timeoutMs);
    const listener = (s: string) => {
      if (s !== state) return;
      clearTimeout(timer);
      client.off('state', listener);
      resolve();
    };
    client.on('state', listener);
  });
}

/** Participant ids and mute flags, sorted: what "the same room" means in assertions. */
export function presence(list: Iterable<{ participantId: string; userId: string; muted: boolean }>): string[] {
  return [...list].map((p) => `${p.userId}:${p.muted ? 'muted' : 'live'}`).sort();
}

/**
 * A loopback TCP proxy in front of the server whose existing connections can be frozen: bytes stop
 * flowing both ways but neither side sees a close, i.e. a half-open connection (NAT timeout, a
 * laptop lid). Only heartbeats can detect that.
 */
export async function freezableProxy(targetPort: number): Promise<{ url: string; freeze(): void; close(): Promise<void> }> {
  const { createServer, connect } = await import('node:net');
  const pairs: Array<[import('node:net').Socket, import('node:net').Socket]> = [];
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    freeze() {
      for (const [client, upstream] of pairs.splice(0)) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        frozen.push(client, upstream);
      }
    },
    close: async () => {
      for (const s of frozen.splice(0)) s.destroy();
      for (const [a, b] of pairs.splice(0)) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
const frozen: import('node:net').Socket[] = [];
