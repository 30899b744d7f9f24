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
import { fakeMicrophoneWav, joined, PAGE_HZ, remoteAudio, shown, TONE_HZ, until } from '../web/page-harness.ts';
import { ToneParticipant } from './node-harness.ts';

/**
 * A Node SDK client (werift) and a Chromium page (the demo, fake microphone at 660 Hz) in an
 * `auto` room connect directly to each other: each hears the other's tone while the server
 * forwards nothing. The speaking events both see come from level reports (the page's from its
 * sender's media-source stats), and a moderator's mute of the page stops its direct audio.
 */

const ROOM = 'node-page';

describe('a Node client and a Chromium page, directly', () => {
  let server: VoxServer;
  let plane: PooledMediaPlane;
  let browser: Browser;
  let keys: AuthKeys;
  let page: Page;
  let bot: ToneParticipant;
  const consoleErrors: string[] = [];

  async function metric(prefix: string): Promise<string[]> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return text.split('\n').filter((line) => line.startsWith(prefix));
  }

  beforeAll(async () => {
    const config = parseConfig({
      server: { host: '127.0.0.1', port: 0 },
      dataDir: mkdtempSync(join(tmpdir(), 'voxlink-p2p-node-page-')),
      auth: { devMode: true },
      metrics: { enabled: true, defaultMetrics: false },
      signalling: { defaultRoomMode: 'auto' },
      media: { workers: 1, rtcMinPort: 55900, rtcMaxPort: 55999 },
    });
    keys = resolveAuthKeys(config);
    plane = createMediaPlane(mediaPlaneOptionsFromConfig(config.media));
    server = await startServer(config, { keys, mediaPlane: plane, routes: [webRoutes(config, keys, { assets: buildWebAssets() })] });
    browser = await launchChromium([`--use-file-for-fake-audio-capture=${fakeMicrophoneWav()}`]);
  }, 60_000);

  afterAll(async () => {
    await bot?.leave(ROOM).catch(() => undefined);
    await browser?.close();
    await server?.close();
    await plane?.close();
  });

  function pageId(): string {
    const alice = [...(bot.client.room(ROOM)?.participants.values() ?? [])].find((p) => p.name === 'Alice');
    if (!alice) throw new Error('Alice is not in the bot’s room');
    return alice.participantId;
  }

  it('the page and the Node client hear each other directly; the server forwards nothing', async () => {
    page = await (await browser.newContext()).newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await page.goto(`${server.url}/?room=${ROOM}`);
    await expect.poll(() => page.locator('#mic option').count()).toBeGreaterThan(0);
    await page.fill('#name', 'Alice');
    await page.click('#join-button');
    await joined(page);

    bot = new ToneParticipant('Tone bot', TONE_HZ, { direct: true });
    const token = await mintToken({ key: keys.hs256Secret!, userId: 'bot', name: 'Tone bot', room: ROOM, grants: ['join', 'publish', 'subscribe', 'admin'] });
    await bot.join(server.url.replace(/^http/, 'ws') + '/ws', token, ROOM);
    await until('the bot plays the direct link', async () => bot.media.transport, (p) => p === 'direct', 30_000);
    await until('the page plays the direct link', () => page.getAttribute('#media-path', 'data-path'), (p) => p === 'direct', 30_000);
    bot.startTone();

    // The slot list can name the bot a moment before its <audio> element exists: measure again then.
    const measure = (): ReturnType<typeof remoteAudio> => remoteAudio(page, 1000, TONE_HZ).catch(() => ({}));
    const audio = await until('the page hears the bot', measure, (a) => (a['Tone bot']?.rms ?? 0) > 0.05, 15_000);
    expect(audio['Tone bot'].toneDb, `${TONE_HZ} Hz dominates the bot's audio in the page`).toBeGreaterThan(20);
    const alice = pageId();
    const heard = await until('the bot hears the page', async () => bot.heard({ participantId: alice, hz: PAGE_HZ }), (h) => h.rms > 0.01 && h.toneDb > 10, 15_000);
    expect(heard.toneDb, `${PAGE_HZ} Hz dominates the page's audio in the bot`).toBeGreaterThan(10);

    expect(plane.workerOf(ROOM)).toBeUndefined();
    expect(await metric(`voxlink_room_packets_out_total{room="${ROOM}"}`)).toEqual([]);
  }, 120_000);

  it('both see each other speaking (level reports), and the page is told when the bot goes quiet', async () => {
    const alice = pageId();
    await until('the bot sees the page speaking', async () => bot.client.room(ROOM)?.participants.get(alice)?.speaking, (s) => s === true, 15_000);
    await until('the page shows the bot speaking', () => shown(page), (s) => s['Tone bot']?.speaking === true, 15_000);
    bot.source.gain = 0;
    await until('the page shows the bot quiet', () => shown(page), (s) => s['Tone bot']?.speaking === false, 15_000);
    bot.source.gain = 0.3;
    expect(plane.workerOf(ROOM)).toBeUndefined();
  }, 60_000);

  it('the bot (a moderator) mutes the page: the page stops sending on the direct link; it unmutes itself and is heard again', async () => {
    const alice = pageId();
    let raw = 0;
    for (const t of bot.media.directPc!.getTransceivers()) for (const track of t.receiver.tracks) track.onReceiveRtp.subscribe(() => raw++);
    await until('RTP from the page', async () => raw, (n) => n > 10, 5000);
    await bot.client.mute(ROOM, alice);
    await until('the page shows itself muted', () => page.textContent('#mute-button'), (t) => t === 'Unmute', 10_000);
    await new Promise((r) => setTimeout(r, 700));
    const before = raw;
    bot.media.clearRecordings();
    await new Promise((r) => setTimeout(r, 1500));
    expect(raw - before, 'RTP packets from the muted page').toBeLessThan(3);
    expect(bot.heard({ participantId: alice, hz: PAGE_HZ }).rms).toBe(0);
    await page.click('#mute-button');
    const heard = await until('the bot hears the page again', async () => bot.heard({ participantId: alice, hz: PAGE_HZ }), (h) => h.rms > 0.01 && h.toneDb > 10, 15_000);
    expect(heard.toneDb).toBeGreaterThan(10);
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
