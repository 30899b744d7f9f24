import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { meanPower, powerAt } from '../codec/signal.ts';
import { openChromiumPeer, type ChromiumPeer } from './chromium-peer.ts';
import { RoomHarness, portRange, sleep, waitFor } from './harness.ts';

const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };
describe('a headless Chromium as the fourth participant', () => {
  let h: RoomHarness;
  let chrome: ChromiumPeer;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'chrome', slots: 3, ...portRange(42000) });
    chrome = await openChromiumPeer(h, 'chrome');

    for (const id of Object.keys(TONES)) await h.join(id);
    await h.room.join({ roomId: 'chrome', participantId: 'chrome', name: 'Chromium', grants: { publish: true, subscribe: true, record: false, admin: false } });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]));
  }, 60_000);

  afterAll(async () => {
    await chrome?.close();
    await h?.close();
  });

  it('Chromium receives the three tones on its slots, as the slot map says', async () => {
    expect(await chrome.receiving(20_000)).toBeGreaterThanOrEqual(20_000);
    const slots = await chrome.call((api) => api.slots(), null);
    expect([...slots].sort()).toEqual(['a', 'b', 'c']);
    const freqs = slots.map((id) => TONES[id!]);
    const levels = (await chrome.call((api, f) => api.measure(f), freqs)) as number[][];
    // Each slot carries its occupant's tone well above the other two (dB, WebAudio analyser).
    slots.forEach((id, slot) => {
      const own = levels[slot][slot];
      expect(own, `slot ${slot} (${id}) level`).toBeGreaterThan(-60);
      levels[slot].forEach((other, j) => {
        if (j !== slot) expect(own - other, `slot ${slot}: ${id} vs ${slots[j]}`).toBeGreaterThan(20);
      });
    });
  });

  it('the werift clients hear Chromium’s fake microphone', async () => {
    await waitFor(() => [...h.clients.values()].every((c) => c.heard().includes('chrome')), 10_000, 'chrome audio at every client');
    await sleep(1500);
    for (const [id, c] of h.clients) {
      const pcm = c.audioFrom('chrome', 2);
      // The fake device beeps; there is energy, and it is not one of the test tones leaking through.
      expect(meanPower(pcm), `${id} hears chrome`).toBeGreaterThan(1e-4);
      for (const f of Object.values(TONES)) expect(powerAt(pcm, SR, f)).toBeLessThan(meanPower(pcm) / 10);
    }
    expect(h.errors).toEqual([]);
  });
});
