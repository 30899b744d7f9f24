import { mkdirSync, mkdtempSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../media/chromium-peer.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAuthKeys } from '../../src/auth/keys.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { parseConfig, type VoxConfigInput } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { startServer, type VoxServer } from '../../src/signalling/index.ts';
import { buildWebAssets } from '../../src/web/assets.ts';
import { webRoutes, type WebRoutesOptions } from '../../src/web/routes.ts';
import { devToken, fakeMicrophoneWav, joined, remoteAudio, shown, TONE_HZ, until } from './page-harness.ts';

/**
 * The demo page end to end: the real server (signalling + media plane + the page's routes), two
 * Chromium pages joining through the UI (Chromium's fake microphone beeps), and a werift client
 * (the SDK's NodeMediaClient) publishing a 440 Hz tone encoded with our Opus.
 */

const FAKE_MIC_ARGS = [`--use-file-for-fake-audio-capture=${fakeMicrophoneWav()}`];
const ROOM = 'web-demo';
const ARTIFACTS = join(process.cwd(), 'test-artifacts');

interface Running {
  server: VoxServer;
  plane?: PooledMediaPlane;
  /** Session id of each participant name's latest join (server observer). */
  sessionsByName: Map<string, string>;
  /** Stops the server; the media plane too unless `keepPlane`. */
  close(options?: { keepPlane?: boolean }): Promise<void>;
}

const assets = buildWebAssets();

/** The real server with the page's routes; `plane: true` starts a media plane, or pass one to reuse. */
async function start(input: VoxConfigInput, options: { plane?: boolean | PooledMediaPlane; web?: WebRoutesOptions } = {}): Promise<Running> {
  const config = parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    dataDir: mkdtempSync(join(tmpdir(), 'voxlink-web-')),
    metrics: { enabled: false, defaultMetrics: false },
    ...input,
  });
  const keys = resolveAuthKeys(config);
  const plane =
    options.plane === true ? createMediaPlane(mediaPlaneOptionsFromConfig(config.media)) : options.plane === false ? undefined : options.plane;
  const server = await startServer(config, { keys, mediaPlane: plane, routes: webRoutes(config, keys, { assets, ...options.web }) });
  const sessionsByName = new Map<string, string>();
  server.observer.on('participant_joined', (e) => void sessionsByName.set(e.name, e.sessionId));
  return {
    server,
    plane,
    sessionsByName,
    close: async ({ keepPlane = false } = {}) => {
      await server.close();
      if (!keepPlane) await plane?.close();
    },
  };
}

/**
 * A loopback TCP proxy: the pages' origin (HTTP and WebSocket) stays the same while the server
 * behind it is replaced, the way a restarted server behind a load balancer looks to a browser.
 */
async function tcpProxy(target: () => number): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target(), '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('demo page: two Chromium pages and a werift client in one room', () => {
  let app: Running;
  let proxy: Awaited<ReturnType<typeof tcpProxy>>;
  const dataDir = mkdtempSync(join(tmpdir(), 'voxlink-web-'));
  const appConfig: VoxConfigInput = { dataDir, auth: { devMode: true }, media: { workers: 2, rtcMinPort: 47600, rtcMaxPort: 47799 } };
  let browser: Browser;
  const pages: Record<string, Page> = {};
  const consoleErrors: string[] = [];
  let bot: VoxClient;
  let botMedia: NodeMediaClient;
  let aliceSession: string | undefined;

  /** The bot's media part; it publishes the tone as soon as its peer is connected. */
  function newBotMedia(): void {
    const media = new NodeMediaClient({
      room: ROOM,
      signal: {
        send: (m) => {
          try {
            bot.sendMedia(m);
          } catch {
            // Signalling is down; the SDK re-joins and a fresh offer follows.
          }
        },
      },
    });
    botMedia = media;
    media.once('offer', () => {
      media.connected(15_000).then(
        () => media.publish(new ToneSource(TONE_HZ)),
        () => undefined,
      );
    });
  }

  async function openPage(label: string, url = `${proxy.url}/?room=${ROOM}`): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1120, height: 640 } });
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${label}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`${label}: ${e.message}`));
    await page.goto(url);
    pages[label] = page;
    return page;
  }

  beforeAll(async () => {
    app = await start(appConfig, { plane: true });
    proxy = await tcpProxy(() => app.server.port);
    browser = await launchChromium(FAKE_MIC_ARGS);
  }, 30_000);

  afterAll(async () => {
    await botMedia?.close();
    await bot?.disconnect();
    await browser?.close();
    await proxy?.close();
    await app?.close();
  });

  it('joins through the UI; everyone hears the others and the speaking indicators light for the right people', async () => {
    // Alice uses the mouse.
    const alice = await openPage('alice');
    await expect.poll(() => alice.locator('#mic option').count()).toBeGreaterThan(0);
    await alice.fill('#name', 'Alice');
    await alice.click('#join-button');
    await joined(alice);
    aliceSession = app.sessionsByName.get('Alice');
    await until('Alice media', () => alice.getAttribute('#media-state', 'data-state'), (s) => s === 'connected');

    // Bob only uses the keyboard: Tab reaches the (prefilled) room, then the name; Enter submits.
    const bob = await openPage('bob');
    const focused = (): Promise<string | undefined> => bob.evaluate(() => document.activeElement?.id);
    await bob.keyboard.press('Tab');
    expect(await focused()).toBe('room');
    await bob.keyboard.press('Tab');
    expect(await focused()).toBe('name');
    await bob.keyboard.type('Bob');
    await bob.keyboard.press('Enter');
    await joined(bob);
    expect(await focused()).toBe('room-title');
    await until('Bob media', () => bob.getAttribute('#media-state', 'data-state'), (s) => s === 'connected');

    // The werift client takes a dev token like the page does, and publishes a tone.
    const response = await devToken(proxy.url, { room: ROOM, name: 'Tone bot' });
    expect(response.status).toBe(200);
    const { token } = (await response.json()) as { token: string };
    bot = createNodeClient();
    bot.on('media', (m) => void botMedia.handle(m));
    bot.on('slots', (e) => void botMedia.handle({ op: 'slots', room: e.room, slots: [...e.slots] }));
    // A re-join on a fresh session means a fresh server peer: the bot starts a fresh client (as the page does).
    bot.on('room', ({ reason }) => {
      if (reason !== 'rejoined') return;
      void botMedia.close();
      newBotMedia();
    });
    newBotMedia();
    await bot.connect(`ws://127.0.0.1:${proxy.port}/ws`, token);
    await bot.join(ROOM);
    await botMedia.connected();

    for (const [label, page] of Object.entries(pages)) {
      const other = label === 'alice' ? 'Bob' : 'Alice';
      // Everyone listed, the other two each in one of our slots, mode and connection on screen.
      await until(
        `${label} sees both others in slots`,
        () => shown(page),
        (s) => Object.keys(s).length === 3 && s['Tone bot']?.slot !== null && s[other]?.slot !== null,
      );
      expect(await page.textContent('#connection')).toBe('Connected');
      expect(await page.textContent('#room-mode')).toBe('Mode: sfu');
    }

    // Remote audio: the bot's slot carries 440 Hz well above the rest of the spectrum, the other
    // page's slot carries the fake microphone's beeps (energy, but not the tone).
    for (const [label, page] of Object.entries(pages)) {
      const other = label === 'alice' ? 'Bob' : 'Alice';
      const audio = await remoteAudio(page);
      expect(audio['Tone bot'].rms, `${label} hears the tone`).toBeGreaterThan(0.05);
      expect(audio['Tone bot'].toneDb, `${label}: 440 Hz dominates the bot's slot`).toBeGreaterThan(20);
      expect(audio[other].rms, `${label} hears ${other}'s beeps`).toBeGreaterThan(0.01);
      expect(audio[other].toneDb, `${label}: no tone on ${other}'s slot`).toBeLessThan(0);
    }

    // Speaking indicators and level meters over a few seconds: on each page both other
    // participants light up at some point (the tone is continuous, the beeps periodic).
    const lit: Record<string, Set<string>> = { alice: new Set(), bob: new Set() };
    const loud: Record<string, Set<string>> = { alice: new Set(), bob: new Set() };
    const end = Date.now() + 6000;
    while (Date.now() < end && !(lit.alice.size >= 2 && lit.bob.size >= 2)) {
      for (const [label, page] of Object.entries(pages)) {
        for (const [name, s] of Object.entries(await shown(page))) {
          if (s.speaking) lit[label].add(name);
          if (s.level > 10) loud[label].add(name);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...lit.alice].filter((n) => n !== 'Alice').sort()).toEqual(['Bob', 'Tone bot']);
    expect([...lit.bob].filter((n) => n !== 'Bob').sort()).toEqual(['Alice', 'Tone bot']);
    expect([...loud.alice]).toContain('Tone bot');
    // The README's picture (docs/screenshot-room.png is a copy): the room while the bot talks.
    await until('a lively room for the screenshot', () => shown(alice), (s) => s['Tone bot'].speaking && s.Bob.level > 10, 5000);
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, 'room.png') });

    // Bob mutes with the keyboard (the microphone picker, then Mute): Alice sees him muted and not
    // speaking, the tone still speaking.
    await bob.keyboard.press('Tab');
    expect(await focused()).toBe('room-mic');
    await bob.keyboard.press('Tab');
    expect(await focused()).toBe('mute-button');
    await bob.keyboard.press('Enter');
    await until('Bob muted on his page', () => bob.getAttribute('#mute-button', 'aria-pressed'), (v) => v === 'true');
    const afterMute = await until('Alice sees Bob muted', () => shown(alice), (s) => s.Bob.muted && !s.Bob.speaking);
    expect(afterMute['Tone bot'].speaking).toBe(true);

    expect(consoleErrors).toEqual([]);
  }, 45_000);

  it('a WebSocket killed by the server: the page says reconnecting, recovers, and audio still flows', async () => {
    const alice = pages.alice;
    expect(aliceSession).toBeDefined();
    expect(app.server.core.disconnect(aliceSession!, 4000, 'test: server-side drop')).toBe(true);
    const activity = await until(
      'reconnect on screen',
      () => alice.$$eval('#activity li', (items) => items.map((li) => li.textContent ?? '').reverse()),
      (lines) => lines.some((l) => l.includes('Reconnected')),
    );
    const lost = activity.findIndex((l) => l.includes('Connection lost — reconnecting'));
    expect(lost).toBeGreaterThanOrEqual(0);
    expect(activity.findIndex((l) => l.includes('Reconnected — session resumed'))).toBeGreaterThan(lost);
    expect(await alice.textContent('#connection')).toBe('Connected');

    // Signalling works again (Bob unmutes, Alice sees it) and the tone still reaches Alice.
    await pages.bob.click('#mute-button');
    await until('Bob unmuted on his page', () => pages.bob.getAttribute('#mute-button', 'aria-pressed'), (v) => v === 'false');
    await until('Alice sees Bob unmuted', () => shown(alice), (s) => !s.Bob.muted);
    const audio = await remoteAudio(alice, 1000);
    expect(audio['Tone bot'].rms).toBeGreaterThan(0.05);
    expect(audio['Tone bot'].toneDb).toBeGreaterThan(20);
    expect(consoleErrors).toEqual([]);
  }, 20_000);

  it('a server restart: the pages re-join on a fresh session with a fresh media peer, and audio comes back', async () => {
    const errorsBefore = consoleErrors.length;
    // The new server is up (same data dir, so the same dev secret) before the old one goes away.
    const old = app;
    app = await start(appConfig, { plane: old.plane });
    await old.close({ keepPlane: true });
    for (const [label, page] of Object.entries(pages)) {
      await until(
        `${label}: rejoined, then media connected again`,
        () => page.$$eval('#activity li', (items) => items.map((li) => li.textContent ?? '').reverse()),
        (lines) => {
          const rejoined = lines.findIndex((l) => l.includes('Rejoined the room'));
          return rejoined >= 0 && lines.slice(rejoined).some((l) => l.includes('Media connected'));
        },
        15_000,
      );
    }
    await until('Alice sees everyone again, the bot in a slot', () => shown(pages.alice), (s) => Object.keys(s).length === 3 && s['Tone bot']?.slot !== null);
    // The bot's new server peer may still be connecting on a busy host: the tone comes back within seconds.
    const audio = await until('Alice hears the bot again', () => remoteAudio(pages.alice, 1000), (a) => (a['Tone bot']?.rms ?? 0) > 0.05, 10_000);
    expect(audio['Tone bot'].rms).toBeGreaterThan(0.05);
    expect(audio['Tone bot'].toneDb).toBeGreaterThan(20);
    expect(await pages.alice.textContent('#connection')).toBe('Connected');
    expect(consoleErrors.slice(errorsBefore)).toEqual([]);
  }, 35_000);

  it('the room’s worker thread dies: the page reports the media reconnect and hears the tone again', async () => {
    const plane = app.plane!;
    const doomed = plane.workerOf(ROOM)!;
    const errorsBefore = consoleErrors.length;
    await plane.pool.threads.find((t) => t.threadId === doomed)!.terminate();
    for (const [label, page] of Object.entries(pages)) {
      await until(
        `${label}: media reconnect announced, then media back`,
        () => page.$$eval('#activity li', (items) => items.map((li) => li.textContent ?? '').reverse()),
        (lines) => {
          const asked = lines.findIndex((l) => l.includes('Server asked for a media reconnect'));
          return asked >= 0 && lines.slice(asked).some((l) => l.includes('Media reconnected'));
        },
        15_000,
      );
    }
    expect(plane.workerOf(ROOM)).not.toBe(doomed);
    const audio = await until('the tone on Alice’s new slot tracks', () => remoteAudio(pages.alice, 1000), (a) => (a['Tone bot']?.rms ?? 0) > 0.05);
    expect(audio['Tone bot'].toneDb).toBeGreaterThan(20);
    expect(consoleErrors.slice(errorsBefore)).toEqual([]);
  }, 25_000);

  it('fits a 390 px wide phone screen without horizontal scrolling', async () => {
    for (const page of Object.values(pages)) await page.setViewportSize({ width: 390, height: 844 });
    const widths = async (page: Page) => page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, view: window.innerWidth }));
    const room = await widths(pages.alice);
    expect(room.scroll).toBeLessThanOrEqual(room.view);
    await pages.alice.screenshot({ path: join(ARTIFACTS, 'room-390.png'), fullPage: true });
    // Leaving brings back the join form, which fits too.
    await pages.bob.click('#leave-button');
    await pages.bob.locator('#join-view').waitFor({ state: 'visible' });
    expect(await pages.bob.textContent('#join-message')).toContain('You left the room');
    const form = await widths(pages.bob);
    expect(form.scroll).toBeLessThanOrEqual(form.view);
    await until('Alice sees Bob leave', () => shown(pages.alice), (s) => !('Bob' in s));
    expect(consoleErrors).toEqual([]);
  }, 15_000);

  it('without dev mode the page takes a pasted or ?token= token, and says why a bad one fails', async () => {
    const secret = 'web-test-secret-0123456789abcdef';
    const production = await start({ auth: { hs256Secret: secret } });
    try {
      const token = await mintToken({ key: secret, userId: 'carol', name: 'Carol', room: 'lobby' });
      const page = await openPage('carol', `${production.server.url}/?room=lobby&token=${token}`);
      expect(await page.isVisible('#name')).toBe(false);
      expect(await page.inputValue('#token')).toBe(token);
      expect(page.url()).not.toContain('token='); // kept out of the address bar and history
      await page.fill('#token', 'not-a-token');
      await page.click('#join-button');
      await until('bad token explained', () => page.textContent('#join-message'), (t) => /Could not join: Your link is not valid — ask for a new one/.test(t ?? ''));
      await page.fill('#token', token);
      await page.keyboard.press('Tab'); // the textarea keeps Enter; the Join button is reachable
      await page.focus('#join-button');
      await page.keyboard.press('Enter');
      await joined(page);
      expect(await shown(page)).toMatchObject({ Carol: { muted: false } });
      expect(await page.textContent('#connection')).toBe('Connected');
      expect(consoleErrors).toEqual([]);
    } finally {
      await production.close();
    }
  }, 15_000);
});

describe('POST /dev/token', () => {
  let dev: Running;
  let production: Running;

  beforeAll(async () => {
    dev = await start({ auth: { devMode: true } }, { web: { devToken: { burst: 2, perMinute: 1 } } });
    production = await start({ auth: { hs256Secret: 'web-test-secret-0123456789abcdef' } });
  });
  afterAll(async () => {
    await dev?.close();
    await production?.close();
  });

  it('mints a room-scoped token in dev mode, rejects bad input, then rate-limits', async () => {
    const ok = await devToken(dev.server.url, { room: 'r1', name: 'Ann' });
    expect(ok.status).toBe(200);
    const { token, room } = (await ok.json()) as { token: string; room: string };
    expect(room).toBe('r1');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { rooms: unknown; name: string; exp: number; iat: number };
    expect(claims).toMatchObject({ name: 'Ann', rooms: [{ room: 'r1', grants: ['join', 'publish', 'subscribe', 'record'] }] });
    expect(claims.exp - claims.iat).toBe(600);

    const bad = await devToken(dev.server.url, { room: 'no spaces allowed', name: 'Ann' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'INVALID_ARGUMENT' });
    const limited = await devToken(dev.server.url, { room: 'r1', name: 'Ann' });
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: 'RATE_LIMITED' });
  });

  it('is refused outside dev mode, where the page asks for a token instead', async () => {
    const refused = await devToken(production.server.url, { room: 'r1', name: 'Ann' });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: 'DEV_MODE_OFF' });
    const page = await fetch(`${production.server.url}/`);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<meta name="voxlink-dev-mode" content="false">');
    const js = await fetch(`${production.server.url}/app.js`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
  });
});
