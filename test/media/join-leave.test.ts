import { afterAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { powerAt } from '../codec/signal.ts';
import { RoomHarness, portRange, sleep, stallMonitor, waitFor } from './harness.ts';

const SR = 48_000;
const JOINERS = 20;

describe('participants joining and leaving an active room', () => {
  const h = new RoomHarness({ roomId: 'churn', slots: 3, ...portRange(41600, 300) });

  afterAll(async () => {
    await h.close();
  });

  it('never renegotiates those already in it, and their audio never stops', async () => {
    const a = await h.join('a');
    const b = await h.join('b');
    const listener = await h.join('listener');
    await Promise.all([a.connected(), b.connected(), listener.connected()]);
    a.publish(new ToneSource(440));
    b.publish(new ToneSource(660));
    await waitFor(() => listener.heard().length === 2, 5000, 'listener to hear a and b');

    // Longest silence on each of the listener's slots while the room churns.
    const last = [performance.now(), performance.now(), performance.now()];
    let longestGapMs = 0;
    listener.on('rtp', (p) => {
      longestGapMs = Math.max(longestGapMs, p.arrivalMs - last[p.slot]);
      last[p.slot] = p.arrivalMs;
    });
    const slotsBefore = [...listener.slotMap.slots];
    const stalls = stallMonitor();

    const ids = Array.from({ length: JOINERS }, (_, i) => `j${i}`);
    for (let i = 0; i < ids.length; i += 5) {
      const batch = ids.slice(i, i + 5);
      const clients = await Promise.all(batch.map((id) => h.join(id, undefined, { decode: false })));
      await Promise.all(clients.map((c) => c.connected(15_000)));
    }
    // Every joiner got one offer, its slot map, and audio from both speakers.
    for (const id of ids) {
      const c = h.clients.get(id)!;
      // One offer each; a media reconnect (a peer failing on a starved box) re-offers, but that is
      // not a renegotiation caused by the churn.
      expect(c.offersReceived - c.restartOffers, id).toBe(1);
      expect(c.slotMap.slots.filter((s) => s !== null).sort()).toEqual(['a', 'b']);
    }
    const joiner = h.clients.get('j7')!;
    const seen = new Set<string>();
    joiner.on('rtp', (p) => p.participantId && seen.add(p.participantId));
    await waitFor(() => seen.size === 2, 5000, 'a joiner to receive a and b');
    expect(h.room.stats().participants).toBe(JOINERS + 3);

    for (let i = 0; i < ids.length; i += 5) await Promise.all(ids.slice(i, i + 5).map((id) => h.leave(id)));
    listener.clearRecordings();
    await sleep(800);

    // The ones who were there: one offer each, ever; same slots; audio still flowing, gaps short.
    for (const c of [a, b, listener]) {
      expect(c.offersReceived - c.restartOffers).toBe(1);
      expect(c.restartOffers).toBe(0);
    }
    const stats = h.room.stats();
    expect(stats.offers - stats.reconnects).toBe(JOINERS + 3);
    expect([...listener.slotMap.slots]).toEqual(slotsBefore);
    const end = performance.now();
    for (const slot of [listener.slotMap.slotOf('a'), listener.slotMap.slotOf('b')]) {
      longestGapMs = Math.max(longestGapMs, end - last[slot]);
    }
    stalls.stop();
    // DTLS handshakes of 20 joiners run in this process too; a gap may be as long as our own
    // longest stall, plus a second, but not more.
    expect(longestGapMs).toBeLessThan(1000 + stalls.maxMs());
    expect(powerAt(listener.audioFrom('a', 0.5), SR, 440)).toBeGreaterThan(0.01);
    expect(powerAt(listener.audioFrom('b', 0.5), SR, 660)).toBeGreaterThan(0.01);
    expect(listener.slotStats(0)!.timestampRegressions + listener.slotStats(1)!.timestampRegressions).toBe(0);
    expect(h.room.stats().participants).toBe(3);
  }, 90_000);
});
