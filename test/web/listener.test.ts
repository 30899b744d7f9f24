import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAuthKeys, type AuthKeys } from '../../src/auth/keys.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import { parseConfig } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { startServer, type VoxServer } from '../../src/signalling/index.ts';
import { buildWebAssets } from '../../src/web/assets.ts';
import { webRoutes } from '../../src/web/routes.ts';
import { launchChromium } from '../media/chromium-peer.ts';
import { fakeMicrophoneWav, joined, PAGE_HZ, remoteAudio, shown, until } from './page-harness.ts';

/**
 * A listen-only participant (a token with join + subscribe, no publish) in Chromium. The server's
 * offer then has an `inactive` microphone m-line first in its BUNDLE group; werift writes it with
 * port 0 ("rejected"), which Chromium refused ("the m= section with mid='1' should be rejected")
 * until the offer kept the bundle tag open (keepBundleTagOpen in src/media/peer-config.ts).
 */
describe('demo page: a listener without the publish grant', () => {
  let server: VoxServer;
  let plane: PooledMediaPlane;
  let browser: Browser;
  let keys: AuthKeys;
  const consoleErrors: string[] = [];

  async function open(query: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await page.goto(`${server.url}/?room=stage&${query}`);
    return page;
  }

  beforeAll(async () => {
    const config = parseConfig({
      server: { host: '127.0.0.1', port: 0 },
      dataDir: mkdtempSync(join(tmpdir(), 'voxlink-web-listener-')),
      auth: { devMode: true },
      metrics: { enabled: false, defaultMetrics: false },
      media: { workers: 1, rtcMinPort: 54000, rtcMaxPort: 54099 },
    });
    keys = resolveAuthKeys(config);
    plane = createMediaPlane(mediaPlaneOptionsFromConfig(config.media));
    server = await startServer(config, { keys, mediaPlane: plane, routes: webRoutes(config, keys, { assets: buildWebAssets() }) });
    browser = await launchChromium([`--use-file-for-fake-audio-capture=${fakeMicrophoneWav()}`]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await plane?.close();
  });

  it('connects its media and hears the speaker; the speaker sees it tagged as a listener', async () => {
    const speaker = await open('name=Alice');
    await expect.poll(() => speaker.locator('#mic option').count()).toBeGreaterThan(0);
    await speaker.click('#join-button');
    await joined(speaker);

    const token = await mintToken({ key: keys.hs256Secret!, userId: 'lis', name: 'Lis', room: 'stage', grants: ['join', 'subscribe'] });
    const listener = await open(`token=${token}`);
    await listener.click('#join-button');
    await joined(listener);
    await until('the listener’s media', () => listener.getAttribute('#media-state', 'data-state'), (s) => s === 'connected', 20_000);

    const audio = await until('Alice’s voice on the listener’s slot', () => remoteAudio(listener, 1000, PAGE_HZ), (a) => (a.Alice?.rms ?? 0) > 0.01, 15_000);
    expect(audio.Alice.toneDb, `${PAGE_HZ} Hz dominates Alice's slot`).toBeGreaterThan(10);
    const onSpeaker = await until('Lis on Alice’s page', () => shown(speaker), (s) => s.Lis !== undefined);
    expect(onSpeaker.Lis.speaking).toBe(false);
    expect(await speaker.locator('#participants li .tag.listen:not([hidden])').count()).toBe(1);
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
