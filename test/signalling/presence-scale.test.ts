import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { participant, presenceFrom, sleep, startTestServer, type RawClient, type TestServer } from './harness.ts';

const CLIENTS = 1000;
const ROOMS = 50;

describe('presence at scale (1000 raw clients, 50 rooms)', () => {
  let t: TestServer;
  const clients: RawClient[] = [];
  beforeAll(async () => {
    // 1000 clients from one loopback address: above the default per-IP cap (500), which this test is not about.
    t = await startTestServer({ signalling: { resumeGraceMs: 300 }, limits: { maxConnectionsPerIp: 0 } });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await t.close();
  });

  it('every room ends exactly right after joins, leaves, goodbyes and expired drops', { timeout: 30_000 }, async () => {
    for (let start = 0; start < CLIENTS; start += 100) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, (_, k) => participant(t, `u${start + k}`, `room-${(start + k) % ROOMS}`)),
      );
      clients.push(...batch);
    }
    expect(t.server.core.registry.participantCount).toBe(CLIENTS);

    const expected = new Map<string, Set<string>>();
    for (let r = 0; r < ROOMS; r++) expected.set(`room-${r}`, new Set());
    const remaining: RawClient[] = [];
    clients.forEach((c, i) => {
      const room = `room-${i % ROOMS}`;
      if (i % 5 === 0) c.send({ op: 'leave', room }); // leaves the room, keeps the session
      else if (i % 7 === 0) c.close(1000); // goodbye
      else if (i % 11 === 0) c.drop(); // drop; leaves when the 300 ms grace expires
      else {
        expected.get(room)?.add(`u${i}`);
        remaining.push(c);
      }
    });

    const deadline = Date.now() + 15_000;
    const viewOk = (c: RawClient, i: number): boolean => {
      const room = `room-${i % ROOMS}`;
      const view = [...presenceFrom(c, room).values()].map((p) => p.userId).sort();
      return JSON.stringify(view) === JSON.stringify([...(expected.get(room) ?? [])].sort());
    };
    const indexOf = new Map(clients.map((c, i) => [c, i]));
    while (Date.now() < deadline) {
      if (remaining.every((c) => viewOk(c, indexOf.get(c) ?? -1))) break;
      await sleep(100);
    }
    for (const [room, users] of expected) {
      expect(t.server.core.registry.snapshot(room).map((p) => p.userId).sort(), room).toEqual([...users].sort());
    }
    const wrong = remaining.filter((c) => !viewOk(c, indexOf.get(c) ?? -1)).length;
    expect(wrong).toBe(0);
    expect(t.server.core.stats()).toMatchObject({ participants: [...expected.values()].reduce((n, s) => n + s.size, 0) });
  });
});
