import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { powerAt } from '../codec/signal.ts';
import { FULL_GRANTS, RoomHarness, portRange, waitFor } from './harness.ts';

const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };

describe('shared UDP port: werift clients', () => {
  let h: RoomHarness;
  const offers = new Map<string, string>();

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'shared', slots: 3, udpPort: { base: 50300, count: 1 }, ...portRange(50310, 10) });
    for (const id of Object.keys(TONES)) {
      h.sinks.set(id, (m) => {
        if (m.op === 'media' && m.kind === 'offer' && m.sdp !== undefined) offers.set(id, m.sdp);
      });
      await h.join(id, FULL_GRANTS);
    }
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]!));
    await waitFor(
      () => [...h.clients].every(([id, c]) => Object.keys(TONES).filter((p) => p !== id).every((p) => c.audioFrom(p, 1).length >= SR)),
      20_000,
      'audio from every speaker at every client',
    );
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('every peer is on the one port and hears the others', () => {
    for (const [id, c] of h.clients) {
      for (const other of Object.keys(TONES).filter((p) => p !== id)) {
        expect(powerAt(c.audioFrom(other, 0.4), SR, TONES[other]!), `${id} hears ${other}`).toBeGreaterThan(0.01);
      }
    }
    console.log([...offers.values()].map((sdp) => sdp.match(/a=candidate:.*/g)));
  });
});
