import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../media/chromium-peer.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newClient, startTestServer, type TestServer } from './harness.ts';
import type { VoxClient } from '../../src/client/index.ts';

/**
 * The SDK in a real browser: bundled for platform=browser (so a Node-only import fails the build),
 * using Chromium's own WebSocket from globalThis, against the real server.
 */
let ts: TestServer;
let browser: Browser;
let page: Page;
let bob: VoxClient;

beforeAll(async () => {
  ts = await startTestServer();
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('../../src/client/index.ts', import.meta.url))],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'VoxSDK',
    write: false,
    logLevel: 'silent',
  });
  browser = await launchChromium();
  page = await browser.newPage();
  await page.addScriptTag({ content: bundle.outputFiles[0].text });
});

afterAll(async () => {
  await bob?.disconnect();
  await browser?.close();
  await ts?.close();
});

describe('client SDK in Chromium', () => {
  it('connects with the browser WebSocket, sees a Node client join and mute, and resumes after a server-side drop', async () => {
    // The browser's session, as the server observer reports its join.
    let webSession: string | undefined;
    const offJoined = ts.server.observer.on('participant_joined', (e) => {
      if (e.userId === 'web-user') webSession = e.sessionId;
    });
    const token = await ts.token('web-user');
    const joined = await page.evaluate(
      async ({ url, token }) => {
        const w = window as unknown as { VoxSDK: typeof import('../../src/client/index.ts'); client: VoxClient; log: string[] };
        w.log = [];
        const client = new w.VoxSDK.VoxClient({ reconnectPolicy: new w.VoxSDK.ExponentialBackoffPolicy({ initialDelayMs: 100, maxDelayMs: 200 }) });
        w.client = client;
        client.on('state', (s) => w.log.push(`state ${s}`));
        client.on('participant_joined', (e) => w.log.push(`joined ${e.participant.userId}`));
        client.on('participant_updated', (e) => w.log.push(`${e.participant.userId} muted=${e.participant.muted}`));
        await client.connect(url, token);
        const room = await client.join('web');
        return { state: client.state, users: [...room.participants.values()].map((p) => p.userId) };
      },
      { url: ts.url, token },
    );
    expect(joined).toEqual({ state: 'connected', users: ['web-user'] });

    bob = newClient();
    await bob.connect(ts.url, await ts.token('bob'));
    await bob.join('web');
    await bob.mute('web');
    const log = () => page.evaluate(() => (window as unknown as { log: string[] }).log);
    await expect.poll(log, { timeout: 5_000 }).toEqual(['state connecting', 'state connected', 'joined bob', 'bob muted=true']);

    offJoined();
    ts.drop(webSession!, 4000, 'server-side drop');
    await bob.unmute('web'); // happens while the browser may be away: must arrive exactly once
    await expect
      .poll(log, { timeout: 5_000 })
      .toEqual(['state connecting', 'state connected', 'joined bob', 'bob muted=true', 'state reconnecting', 'bob muted=false', 'state resumed']);
  });
});
