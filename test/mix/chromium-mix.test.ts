import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { openChromiumPeer, type ChromiumPeer } from '../media/chromium-peer.ts';
import { RoomHarness, portRange } from '../media/harness.ts';

describe('a headless Chromium in a mix room', () => {
  let h: RoomHarness;
  let chrome: ChromiumPeer;

  beforeAll(async () => {
    h = new RoomHarness({ roomId: 'chrome-mix', mode: 'mix', ...portRange(43400) });
    chrome = await openChromiumPeer(h, 'chrome');

    const speaker = await h.join('speaker');
    await h.room.join({
      roomId: 'chrome-mix',
      participantId: 'chrome',
      name: 'Chromium',
      grants: { publish: true, subscribe: true, record: false, admin: false },
    });
    await speaker.connected();
    speaker.publish(new ToneSource(440));
  }, 60_000);

  afterAll(async () => {
    await chrome?.close();
    await h?.close();
  });

  it('hears the werift speaker’s tone on its one remote audio track', async () => {
    expect(await chrome.receiving(20_000)).toBeGreaterThanOrEqual(20_000);
    expect(await chrome.call((api) => api.analysers.length, null)).toBe(1);
    const [levels] = await chrome.call((api, f) => api.measure(f), [440, 1500, 2500]);
    // The 440 Hz tone stands well above bins where nothing (but Chromium's own beep, never sent back) plays.
    expect(levels![0]).toBeGreaterThan(-60);
    expect(levels![0]! - levels![1]!).toBeGreaterThan(20);
    expect(levels![0]! - levels![2]!).toBeGreaterThan(20);
    // And the werift speaker hears Chromium's fake microphone through the mix (its own tone removed).
    const heard = h.clients.get('speaker')!.audioOfSlot(0, 1);
    let energy = 0;
    for (const x of heard) energy += x * x;
    expect(energy / heard.length).toBeGreaterThan(1e-5);
    expect(h.errors).toEqual([]);
  });
});
