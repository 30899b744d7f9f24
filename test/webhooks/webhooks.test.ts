import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { signWebhook, verifyWebhookSignature, WebhookDispatcher, type WebhookOptions } from '../../src/webhooks/index.ts';
import { participant, sleep, startTestServer, until, type RawClient, type TestServer } from '../signalling/harness.ts';
import { WebhookReceiver } from './receiver.ts';

/**
 * Webhooks against a real signalling server and a real local HTTP receiver (node:http): every
 * event once, in order per room, signed so the receiver's check passes over the raw body; a 500
 * is retried and the event arrives; a receiver that hangs slows neither the rooms nor the other
 * rooms' events; a full queue drops, never grows or crashes.
 */

const KEY = 'webhook-test-key-0123456789';
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(options: Partial<WebhookOptions> = {}): Promise<{ t: TestServer; receiver: WebhookReceiver; hooks: WebhookDispatcher }> {
  const receiver = await WebhookReceiver.start(KEY);
  cleanup.push(() => receiver.close());
  const t = await startTestServer();
  cleanup.push(() => t.close());
  const hooks = new WebhookDispatcher({ urls: [receiver.url], key: KEY, retryBaseMs: 50, retryMaxMs: 200, ...options }).attach(t.server.observer);
  cleanup.push(() => hooks.close());
  return { t, receiver, hooks };
}

function client(c: RawClient): RawClient {
  cleanup.push(() => c.close());
  return c;
}

const summary = (e: { event: string; data: unknown }): string => {
  const d = e.data as { userId?: string; reason?: string; mode?: string };
  return [e.event, d.userId ?? d.mode ?? '', d.reason ?? ''].join(' ').trim();
};

describe('webhooks', () => {
  it('delivers every event once, in order per room, with a signature the receiver verifies over the raw body', async () => {
    const { t, receiver, hooks } = await setup();
    const alice = client(await participant(t, 'alice', 'r1'));
    const bob = client(await participant(t, 'bob', 'r1'));
    client(await participant(t, 'carol', 'r2'));
    await bob.request({ op: 'leave', room: 'r1' });
    alice.close();
    // What the storage uploader emits once a recording's objects are confirmed.
    t.server.observer.emit('recording_uploaded', { roomId: 'r2', recordingId: 'rec-0001', objects: 3, bytes: 12345 });
    await until(() => receiver.events('r1').length === 6, 5000, 'r1 events');
    expect(await hooks.idle(5000)).toBe(true);

    expect(receiver.events('r1').map(summary)).toEqual([
      'room_started sfu',
      'participant_joined alice',
      'participant_joined bob',
      'participant_left bob left',
      'participant_left alice disconnected',
      'room_finished',
    ]);
    expect(receiver.events('r2').map(summary)).toEqual(['room_started sfu', 'participant_joined carol', 'recording_uploaded']);
    // Once each: no retries happened, so one request per event.
    expect(receiver.received).toHaveLength(9);
    expect(new Set(receiver.received.map((r) => r.payload.id)).size).toBe(9);
    for (const r of receiver.received) {
      expect(r.signature.ok).toBe(true);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['voxlink-event']).toBe(r.payload.event);
      expect(r.headers['voxlink-delivery']).toBe(r.payload.id);
      expect(r.headers['voxlink-attempt']).toBe('1');
      // A tampered body or the wrong key fails the same check.
      expect(verifyWebhookSignature('another-key-0123456789', r.raw, r.headers['voxlink-signature'] as string).ok).toBe(false);
      expect(verifyWebhookSignature(KEY, Buffer.concat([r.raw, Buffer.from(' ')]), r.headers['voxlink-signature'] as string)).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    }
    const joined = receiver.events('r1')[1]!;
    expect(joined).toMatchObject({ event: 'participant_joined', roomId: 'r1', data: { roomId: 'r1', userId: 'alice', name: 'User alice' } });
    expect(joined.data).not.toHaveProperty('sessionId');
    expect(receiver.events('r2')[2]!.data).toEqual({ roomId: 'r2', recordingId: 'rec-0001', objects: 3, bytes: 12345 });
  });

  it('retries a 500 and delivers on the next attempt, same delivery id, freshly signed; a 400 is final', async () => {
    const { t, receiver, hooks } = await setup();
    receiver.responder = (payload, attempt, res) => {
      if (payload.event === 'participant_joined' && attempt === 1) return void res.writeHead(500).end('busy');
      if (payload.event === 'participant_left') return void res.writeHead(400).end('no thanks');
      res.writeHead(200).end('ok');
    };
    const alice = client(await participant(t, 'alice', 'r1'));
    await alice.request({ op: 'leave', room: 'r1' });
    expect(await hooks.idle(5000)).toBe(true);

    const attempts = receiver.received.map((r) => `${r.payload.event} ${r.headers['voxlink-attempt']}`);
    expect(attempts).toEqual(['room_started 1', 'participant_joined 1', 'participant_joined 2', 'participant_left 1', 'room_finished 1']);
    const [first, second] = receiver.received.filter((r) => r.payload.event === 'participant_joined');
    expect(second!.payload.id).toBe(first!.payload.id);
    expect(second!.raw.equals(first!.raw)).toBe(true);
    expect(second!.signature.ok).toBe(true);
    // Order kept: the room's later events waited for the retried one.
    expect(receiver.events('r1').map((e) => e.event)).toEqual(['room_started', 'participant_joined', 'participant_left', 'room_finished']);
  });

  it('a receiver that hangs blocks neither the room nor other rooms; the event times out, is retried, and order holds', async () => {
    // The hook waits 6 s for an answer; r-slow's first request never gets one.
    const { t, receiver, hooks } = await setup({ timeoutMs: 6000, maxAttempts: 2, concurrency: 4 });
    receiver.responder = (payload, attempt, res) => {
      if (payload.roomId === 'r-slow' && attempt === 1 && payload.event === 'room_started') return;
      res.writeHead(204).end();
    };
    const slow = client(await participant(t, 'alice', 'r-slow'));
    const hungAt = Date.now();
    // Signalling does not wait for the receiver: five joins and leaves complete while it hangs...
    for (let i = 0; i < 5; i++) {
      const c = client(await participant(t, `u${i}`, 'r-slow'));
      await c.request({ op: 'leave', room: 'r-slow' });
    }
    client(await participant(t, 'bob', 'r-fast'));
    // ...and another room's events arrive meanwhile.
    await until(() => receiver.events('r-fast').length === 2, 5000, 'r-fast events during the hang');
    expect(Date.now() - hungAt).toBeLessThan(6000);
    expect(receiver.received.filter((r) => r.payload.roomId === 'r-slow')).toHaveLength(1);

    expect(await hooks.idle(20_000)).toBe(true);
    expect(receiver.events('r-slow').map(summary)).toEqual([
      'room_started sfu',
      'participant_joined alice',
      ...[0, 1, 2, 3, 4].flatMap((i) => [`participant_joined u${i}`, `participant_left u${i} left`]),
    ]);
    // room_started was tried twice (timed out, then answered), everything else once.
    const attempts = receiver.received.filter((r) => r.payload.roomId === 'r-slow').map((r) => `${r.payload.event} ${r.headers['voxlink-attempt']}`);
    expect(attempts.slice(0, 2)).toEqual(['room_started 1', 'room_started 2']);
    expect(attempts).toHaveLength(13);
    slow.close();
  }, 40_000);

  it('a full queue drops new events instead of growing; a dead receiver costs bounded memory and no crash', async () => {
    const { t, receiver, hooks } = await setup({ maxQueue: 3, maxAttempts: 1, timeoutMs: 3000 });
    receiver.responder = () => undefined; // never answers
    for (let i = 0; i < 6; i++) client(await participant(t, `u${i}`, 'r1'));
    expect(hooks.queued).toBe(3);
    await hooks.close();
    expect(hooks.queued).toBe(0);
    // After close nothing is sent and nothing throws.
    client(await participant(t, 'late', 'r1'));
    await sleep(100);
    expect(receiver.received.length).toBeLessThanOrEqual(1);
  });

  it('refuses replays: an old timestamp fails the check even with a valid MAC', () => {
    const body = '{"id":"x"}';
    const now = Math.floor(Date.now() / 1000);
    expect(verifyWebhookSignature(KEY, body, signWebhook(KEY, body, now)).ok).toBe(true);
    expect(verifyWebhookSignature(KEY, body, signWebhook(KEY, body, now - 301))).toEqual({ ok: false, reason: 'expired' });
    expect(verifyWebhookSignature(KEY, body, 'v1=deadbeef')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('config: urls need a key; a non-http URL is refused', () => {
    expect(() => loadConfig({ env: { VOXLINK_WEBHOOK_URLS: 'http://127.0.0.1:9/hook' } })).toThrow(/webhooks.key/);
    expect(() => loadConfig({ env: { VOXLINK_WEBHOOK_URLS: 'ftp://x/y', VOXLINK_WEBHOOK_KEY: KEY } })).toThrow(/webhooks.urls/);
    const config = loadConfig({ env: { VOXLINK_WEBHOOK_URLS: 'http://a.example/h, https://b.example/h', VOXLINK_WEBHOOK_KEY: KEY } });
    expect(config.webhooks).toMatchObject({ urls: ['http://a.example/h', 'https://b.example/h'], key: KEY, maxAttempts: 8 });
  });
});
