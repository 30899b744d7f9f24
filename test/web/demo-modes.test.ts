import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAuthKeys, type AuthKeys } from '../../src/auth/keys.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import type { ServerMessage } from '../../src/protocol/index.ts';
import { parseConfig, recordingDirOf } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { startServer, type VoxServer } from '../../src/signalling/index.ts';
import { buildWebAssets } from '../../src/web/assets.ts';
import { webRoutes } from '../../src/web/routes.ts';
import { launchChromium } from '../media/chromium-peer.ts';
import { RawClient } from '../signalling/harness.ts';
import { fakeMicrophoneWav, joined, shown, until } from './page-harness.ts';

/**
 * The demo page in a `mix` room, recording, and a closed tab: two Chromium pages joined through
 * the UI. The page must describe the room for what it is (a mixed track, not slots), show levels
 * for people it hears through the mix, show everyone when the room is recorded, and leave the
 * room when the tab goes away instead of leaving a ghost for the resume grace period.
 */
describe('demo page: mix room, recording indicator, closing a tab', () => {
  let server: VoxServer;
  let plane: PooledMediaPlane;
  let browser: Browser;
  let keys: AuthKeys;
  const pages: Record<string, Page> = {};

  async function openAndJoin(name: string): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/?room=mixed`);
    await expect.poll(() => page.locator('#mic option').count()).toBeGreaterThan(0);
    await page.fill('#name', name);
    await page.click('#join-button');
    await joined(page);
    await until(`${name} media`, () => page.getAttribute('#media-state', 'data-state'), (s) => s === 'connected', 20_000);
    pages[name] = page;
    return page;
  }

  beforeAll(async () => {
    const config = parseConfig({
      server: { host: '127.0.0.1', port: 0 },
      dataDir: mkdtempSync(join(tmpdir(), 'voxlink-web-modes-')),
      auth: { devMode: true },
      metrics: { enabled: false, defaultMetrics: false },
      signalling: { defaultRoomMode: 'mix' },
      // A 60 s grace period: only an explicit leave can make a closed tab disappear within the test.
      media: { workers: 1, rtcMinPort: 47900, rtcMaxPort: 47999 },
    });
    config.signalling.resumeGraceMs = 60_000;
    keys = resolveAuthKeys(config);
    plane = createMediaPlane(mediaPlaneOptionsFromConfig({ ...config.media, mode: 'mix', recordingDir: recordingDirOf(config) }));
    server = await startServer(config, { keys, mediaPlane: plane, routes: webRoutes(config, keys, { assets: buildWebAssets() }) });
    browser = await launchChromium([`--use-file-for-fake-audio-capture=${fakeMicrophoneWav()}`]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await plane?.close();
  });

  it('a mix room is shown as one mixed track, and people heard through it get level bars', async () => {
    const alice = await openAndJoin('Alice');
    await openAndJoin('Bob');
    expect(await alice.textContent('#room-mode')).toBe('Mode: mix');
    expect(await alice.textContent('#slots-title')).toBe('Room mix');
    const slotItems = await alice.$$eval('#slots li', (items) => items.map((li) => ({ text: li.textContent, mix: (li as HTMLElement).dataset.mix })));
    expect(slotItems).toHaveLength(1);
    expect(slotItems[0].mix).toBe('true');
    expect(slotItems[0].text).not.toMatch(/No audio slots/);
    // Bob's fake microphone speaks: Alice sees him speaking in the mix, with a moving level bar.
    const seen = await until('Bob speaking with a level on Alice’s page', () => shown(alice), (s) => s.Bob?.speaking && s.Bob.level > 5, 15_000);
    expect(seen.Bob.level).toBeGreaterThan(5);
    expect(await alice.textContent('#slots li[data-mix="true"]')).toMatch(/^Mix: .*Bob/);
    expect(await alice.locator('#participants li .tag.mixed:not([hidden])').count()).toBe(1);
  }, 60_000);

  it('recording: the record control starts it and both pages show the indicator; stopping hides it', async () => {
    const { Alice: alice, Bob: bob } = pages;
    expect(await alice.isHidden('#recording')).toBe(true);
    expect(await alice.isVisible('#record-button')).toBe(true);
    await alice.click('#record-button');
    for (const page of [alice, bob]) {
      await until('the recording indicator', () => page.isVisible('#recording'), (v) => v, 10_000);
      expect(await page.textContent('#recording')).toMatch(/Recording/);
    }
    expect(await alice.textContent('#record-button')).toBe('Stop recording');
    await bob.click('#record-button');
    for (const page of [alice, bob]) await until('the indicator gone', () => page.isHidden('#recording'), (v) => v, 10_000);
  }, 30_000);

  it('a participant whose connection dropped shows as reconnecting during the grace period, and recovers', async () => {
    const alice = pages.Alice;
    const dana = await RawClient.connect(server.url.replace(/^http/, 'ws') + '/ws');
    await dana.hello(await mintToken({ key: keys.hs256Secret!, userId: 'dana', name: 'Dana', room: 'mixed' }));
    await dana.join('mixed');
    await until('Dana on Alice’s page', () => shown(alice), (s) => s.Dana !== undefined);
    const tag = alice.locator('#participants li:has(.name:text-is("Dana")) .tag.reconnecting');
    expect(await tag.isHidden()).toBe(true);
    const ready = dana.received.find((m) => m.op === 'ready') as Extract<ServerMessage, { op: 'ready' }>;
    const lastSeq = dana.lastSeq();
    dana.drop();
    await until('Dana reconnecting on Alice’s page', () => tag.isVisible(), (v) => v);
    expect(await tag.textContent()).toBe('reconnecting…');
    expect(await alice.getAttribute('#participants li:has(.name:text-is("Dana"))', 'data-state')).toBe('reconnecting');
    const back = await RawClient.connect(server.url.replace(/^http/, 'ws') + '/ws');
    back.send({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq });
    await back.waitOp('resumed');
    await until('Dana connected again on Alice’s page', () => tag.isHidden(), (v) => v);
    back.close(1000);
    await until('Dana gone', () => shown(alice), (s) => s.Dana === undefined);
  }, 30_000);

  it('closing a tab leaves the room at once (pagehide), not after the grace period', async () => {
    const { Alice: alice, Bob: bob } = pages;
    await bob.close({ runBeforeUnload: true });
    const started = Date.now();
    await until('Bob gone from Alice’s page', () => shown(alice), (s) => s.Bob === undefined, 10_000);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 20_000);
});
