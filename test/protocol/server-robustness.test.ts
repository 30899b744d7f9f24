import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.ts';
import { participant, presenceFrom, RawClient, startTestServer, type TestServer } from '../signalling/harness.ts';

/** Garbage on one connection never hurts the server or another client. */
describe('server robustness against bad frames', () => {
  let t: TestServer;
  let observer: RawClient;

  beforeAll(async () => {
    t = await startTestServer({ limits: { maxPayloadBytes: 4096 } });
    observer = await participant(t, 'observer', 'lobby');
  });
  afterAll(async () => {
    observer.close();
    await t.close();
  });

  /** The observer is still served: a mute round trip works after whatever happened. */
  async function observerStillWorks(): Promise<void> {
    const reply = await observer.request({ op: 'heartbeat', ack: observer.lastSeq() });
    expect(reply.op).toBe('heartbeat_ack');
  }

  it('answers random bytes, truncated MessagePack, unknown ops and extension types with error codes', async () => {
    const bad = await participant(t, 'fuzzer', 'lobby');
    const frames: [Uint8Array, string][] = [
      [Uint8Array.from([0x13, 0x37, 0xff, 0x00, 0x42]), 'BAD_MESSAGE'],
      [Uint8Array.from([0x82, 0xa2, 0x6f]), 'BAD_MESSAGE'],
      [Uint8Array.from([0xd6, 0xff, 0, 0, 0, 1]), 'UNSUPPORTED_TYPE'],
      [Uint8Array.from([0xc7, 0x01, 0x72, 0x00]), 'UNSUPPORTED_TYPE'],
    ];
    for (const [frame, code] of frames) {
      const from = bad.received.length;
      bad.sendBytes(frame);
      const err = await bad.waitFor((m) => m.op === 'error', 3000, from);
      expect(err).toMatchObject({ op: 'error', code });
    }
    const unknown = await bad.request({ op: 'explode' } as never);
    expect(unknown).toMatchObject({ op: 'error', code: 'UNKNOWN_OP' });
    const invalid = await bad.request({ op: 'join', room: 42 } as never);
    expect(invalid).toMatchObject({ op: 'error', code: 'INVALID_MESSAGE', about: 'join' });
    const notInRoom = await bad.request({ op: 'leave', room: 'elsewhere' });
    expect(notInRoom).toMatchObject({ op: 'error', code: 'NOT_IN_ROOM' });
    // Still a working session afterwards, still in the room.
    expect((await bad.request({ op: 'mute', room: 'lobby' })).op).toBe('mute_ack');
    await observerStillWorks();
    expect([...presenceFrom(observer, 'lobby').values()].map((p) => p.userId).sort()).toEqual(['fuzzer', 'observer']);
    bad.close();
  });

  it('requires hello before anything else', async () => {
    const anon = await RawClient.connect(t.wsUrl);
    expect(await anon.request({ op: 'join', room: 'lobby' })).toMatchObject({ op: 'error', code: 'NOT_AUTHENTICATED' });
    anon.close();
  });

  it('closes a text frame with 1003', async () => {
    const c = await RawClient.connect(t.wsUrl);
    c.sendBytes('{"op":"hello"}');
    expect((await c.closed).code).toBe(CloseCode.UNSUPPORTED_DATA);
    await observerStillWorks();
  });

  it('closes an oversized frame with 1009, and cuts a huge one; the server stays up', async () => {
    const c = await participant(t, 'big');
    c.sendBytes(new Uint8Array(5000));
    expect((await c.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
    const huge = await participant(t, 'huge');
    huge.sendBytes(new Uint8Array(1024 * 1024));
    expect([CloseCode.MESSAGE_TOO_BIG, 1006]).toContain((await huge.closed).code);
    await observerStillWorks();
  });

  it('refuses an upgrade without the voxlink.v1 subprotocol', async () => {
    const c = new RawClient(t.wsUrl, 'chat');
    await expect(c.opened).rejects.toThrow(/400/);
    await observerStillWorks();
  });

  it('a flood of garbage from many clients at once leaves the server serving', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => participant(t, `g${i}`)));
    for (const c of clients) for (let i = 0; i < 20; i++) c.sendBytes(Uint8Array.from({ length: 32 }, (_, k) => (k * 31 + i * 7) & 0xff));
    await Promise.all(clients.map((c) => c.waitFor((m) => m.op === 'error')));
    await observerStillWorks();
    for (const c of clients) c.close();
  });
});
