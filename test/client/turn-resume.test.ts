import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { WebSocketConstructor } from '../../src/client/index.ts';
import { mintToken } from '../../src/auth/index.ts';
import { decodeServerMessage } from '../../src/protocol/codec.ts';
import type { IceServer } from '../../src/protocol/messages.ts';
import { parseConfig } from '../../src/config.ts';
import { startServer } from '../../src/signalling/index.ts';
import { SECRET, fixedDelayPolicy, newClient, nextState, trackedWebSocket, waitFor } from './harness.ts';

const TURN = {
  urls: ['turn:turn.example.test:3478?transport=udp'],
  stunUrls: ['stun:stun.example.test:3478'],
  secret: 'turn-static-auth-secret',
  ttlSec: 600,
};

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** The test/client harness's server (startTestServer), plus a `turn` section. */
async function startTurnServer() {
  const config = parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    dataDir: mkdtempSync(join(tmpdir(), 'voxlink-client-turn-')),
    auth: { hs256Secret: SECRET },
    turn: TURN,
    metrics: { enabled: false, defaultMetrics: false },
  });
  const server = await startServer(config);
  cleanup.push(() => server.close());
  return {
    url: `ws://127.0.0.1:${server.port}/ws`,
    /** The server closes the session's connection (SignallingCore.disconnect). */
    drop: (sessionId: string, code: number, reason: string) => expect(server.core.disconnect(sessionId, code, reason)).toBe(true),
    token: (userId: string) => mintToken({ key: SECRET, userId, rooms: [{ room: '*', grants: ['join', 'publish', 'subscribe'] }] }),
  };
}

function turnEntry(servers: IceServer[]): Required<IceServer> {
  const turn = servers.find((s) => s.username !== undefined);
  if (turn?.username === undefined || turn.credential === undefined) throw new Error('no TURN entry in iceServers');
  return turn as Required<IceServer>;
}

/** TURN REST username "<expiry unix seconds>:<userId>" (draft-uberti-behave-turn-rest-00 §2.2). */
function expiryOf(servers: IceServer[]): number {
  return Number(turnEntry(servers).username.split(':')[0]);
}

describe('TURN credentials over a session resume', () => {
  it('`resumed` carries freshly minted iceServers (later expiry than `ready`); the client exposes and announces them', async () => {
    const ts = await startTurnServer();
    const tracked = trackedWebSocket();
    // Every raw `resumed` frame alice receives, as the server sent it.
    const rawResumed: Array<{ iceServers?: IceServer[] }> = [];
    class Spy extends (tracked.WebSocket as unknown as typeof WebSocket) {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        this.on('message', (data) => {
          // MessagePack frames (the SDK sets binaryType 'arraybuffer'), as the server encoded them.
          const decoded = decodeServerMessage(new Uint8Array(data as ArrayBuffer));
          if (decoded.ok && decoded.message.op === 'resumed') rawResumed.push(decoded.message);
        });
      }
    }
    const alice = newClient({ WebSocket: Spy as unknown as WebSocketConstructor, reconnectPolicy: fixedDelayPolicy(50, 10_000) });
    cleanup.push(() => alice.disconnect());
    expect(alice.iceServers).toEqual([]);
    const session = await alice.connect(ts.url, () => ts.token('alice'));
    await alice.join('r');

    // From `ready`: STUN, then TURN with REST credentials for this user.
    const fromReady = alice.iceServers;
    expect(session.iceServers).toEqual(fromReady);
    expect(fromReady[0]).toEqual({ urls: TURN.stunUrls });
    const readyTurn = turnEntry(fromReady);
    expect(readyTurn.urls).toEqual(TURN.urls);
    expect(readyTurn.username).toMatch(/^\d+:alice$/);
    const readyExpiry = expiryOf(fromReady);

    const announced: IceServer[][] = [];
    alice.on('ice_servers', (servers) => announced.push(servers));

    // Drop the connection; stay away until the server's clock is in a later second than `ready`'s mint.
    tracked.gate.closed = true;
    ts.drop(session.sessionId, 4000, 'killed by test');
    await waitFor('alice reconnecting', () => alice.state === 'reconnecting');
    const mintedAt = readyExpiry - TURN.ttlSec;
    await new Promise((r) => setTimeout(r, Math.max(0, (mintedAt + 1) * 1000 - Date.now() + 50)));
    const resumed = nextState(alice, 'resumed');
    tracked.gate.closed = false;
    await resumed;
    expect(alice.session!.sessionId).toBe(session.sessionId);

    // On the wire: `resumed` has iceServers, TURN credentials minted now (a later expiry).
    await waitFor('raw resumed', () => rawResumed.length === 1);
    const wire = rawResumed[0].iceServers;
    expect(wire).toBeDefined();
    expect(expiryOf(wire!)).toBeGreaterThan(readyExpiry);
    expect(expiryOf(wire!)).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + TURN.ttlSec - 5);
    const fresh = turnEntry(wire!);
    expect(fresh.username).toMatch(/:alice$/);
    expect(fresh.urls).toEqual(TURN.urls);
    // Valid coturn use-auth-secret credentials: base64(HMAC-SHA1(secret, username)).
    expect(fresh.credential).toBe(createHmac('sha1', TURN.secret).update(fresh.username).digest('base64'));
    expect(fresh.credential).not.toBe(readyTurn.credential);

    // The SDK: `client.iceServers` (and `session.iceServers`) now are the fresh ones, announced once.
    expect(alice.iceServers).toEqual(wire);
    expect(alice.session!.iceServers).toEqual(wire);
    expect(announced).toEqual([wire]);
  });
});
