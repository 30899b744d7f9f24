import { afterEach, describe, expect, it } from 'vitest';
import type { SignallingError } from '../../src/client/index.ts';
import { fixedDelayPolicy, freezableProxy, newClient, nextState, startTestServer, trackedWebSocket, waitFor } from './harness.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('terminal close codes are never retried', () => {
  it('a bad token rejects connect() with close code 1008 and opens no second socket', async () => {
    const ts = await startTestServer();
    cleanup.push(() => ts.close());
    const tracked = trackedWebSocket();
    const client = newClient({ WebSocket: tracked.WebSocket, reconnectPolicy: fixedDelayPolicy(0) });
    const err = (await client.connect(ts.url, 'not-a-jwt').catch((e: unknown) => e)) as SignallingError;
    expect(err).toMatchObject({ code: 'CLIENT_TERMINAL_CLOSE', closeCode: 1008, closeName: 'POLICY_VIOLATION' });
    expect(client.state).toBe('failed');
    await sleep(300);
    expect(tracked.sockets).toHaveLength(1);
  });

  it('a session replaced by the same user elsewhere (4001) surfaces as an error event, not a reconnect', async () => {
    const ts = await startTestServer();
    cleanup.push(() => ts.close());
    const tracked = trackedWebSocket();
    const first = newClient({ WebSocket: tracked.WebSocket, reconnectPolicy: fixedDelayPolicy(0) });
    const second = newClient();
    cleanup.push(() => first.disconnect(), () => second.disconnect());
    await first.connect(ts.url, await ts.token('dana'));
    await first.join('r');
    const errors: SignallingError[] = [];
    first.on('error', (e) => errors.push(e));
    const failed = nextState(first, 'failed');
    await second.connect(ts.url, await ts.token('dana'));
    await second.join('r');
    await failed;
    expect(errors.map((e) => [e.code, e.closeCode])).toEqual([['CLIENT_TERMINAL_CLOSE', 4001]]);
    expect(first.rooms.size).toBe(0);
    await sleep(300);
    expect(tracked.sockets).toHaveLength(1);
    expect(second.state).toBe('connected');
  });

  it('a join without the grant (server closes 1008) rejects the pending join with that code', async () => {
    const ts = await startTestServer();
    cleanup.push(() => ts.close());
    const client = newClient({ reconnectPolicy: fixedDelayPolicy(0) });
    await client.connect(ts.url, await ts.token('erin', [{ room: 'lobby', grants: ['join'] }]));
    await client.join('lobby');
    const err = await client.join('vip').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CLIENT_TERMINAL_CLOSE', closeCode: 1008 });
    expect(client.state).toBe('failed');
  });

  it('gives up with CLIENT_RECONNECT_FAILED when the policy says so', async () => {
    const ts = await startTestServer();
    const client = newClient({ reconnectPolicy: fixedDelayPolicy(20, 3) });
    await client.connect(ts.url, await ts.token('fred'));
    const errors: SignallingError[] = [];
    client.on('error', (e) => errors.push(e));
    const failed = nextState(client, 'failed');
    await ts.close(); // server gone for good: 1001, then nothing listens
    await failed;
    expect(errors.map((e) => e.code)).toEqual(['CLIENT_RECONNECT_FAILED']);
  });
});

describe('dead connection detection', () => {
  it('a half-open connection is detected by unanswered heartbeats, then resumed', async () => {
    const ts = await startTestServer({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 10_000 });
    cleanup.push(() => ts.close());
    const proxy = await freezableProxy(ts.server.port);
    cleanup.push(() => proxy.close());
    const alice = newClient({ reconnectPolicy: fixedDelayPolicy(50) });
    const bob = newClient();
    cleanup.push(() => alice.disconnect(), () => bob.disconnect());
    await alice.connect(proxy.url, () => ts.token('alice'));
    expect(alice.session!.heartbeatIntervalMs).toBe(100);
    await alice.join('r');
    await bob.connect(ts.url, await ts.token('bob'));
    await bob.join('r');
    await waitFor('alice sees bob', () => alice.room('r')!.participants.size === 2);

    const frozenAt = Date.now();
    proxy.freeze();
    await bob.mute('r'); // sent into the frozen connection: must come back via replay
    await nextState(alice, 'resumed', 8_000);
    // Two missed heartbeats at 100 ms plus a 50 ms retry: well below the server's 10 s timeout
    // (generous bound: timers run late on a loaded host).
    expect(Date.now() - frozenAt).toBeLessThan(5_000);
    await waitFor('replayed mute', () => [...alice.room('r')!.participants.values()].some((p) => p.userId === 'bob' && p.muted));
  });
});
