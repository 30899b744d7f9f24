import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import type { ClientMediaMessage, ServerMediaMessage } from '../../src/protocol/index.ts';
import { RoomHarness, portRange, sleep } from '../media/harness.ts';

/** Same launch flags as test/media/chromium.test.ts (fake devices, no sandbox, autoplay). */
const CHROME_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

/** The SDK's BrowserMediaClient plus a WebAudio analyser on every remote audio track (in a mix room: one, the mix). */
const PAGE = `<!doctype html><meta charset="utf-8"><title>voxlink mix test</title>
<script src="/sdk.js"></script>
<script>
window.start = async (room) => {
  const mic = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0];
  const ctx = new AudioContext({ sampleRate: 48000 });
  await ctx.resume();
  const client = new VoxMedia.BrowserMediaClient({ room, microphone: mic, signal: { send: (m) => window.voxSend(m) } });
  window.client = client;
  window.analysers = [];
  client.on('track', (slot, track) => {
    const stream = new MediaStream([track]);
    // Chrome only feeds remote WebRTC audio into WebAudio while an element plays it.
    const el = new Audio(); el.muted = true; el.srcObject = stream; el.play().catch(() => {});
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    ctx.createMediaStreamSource(stream).connect(analyser);
    window.analysers[slot] = analyser;
  });
  window.voxHandle = (m) => client.handle(m);
};
/** Per track, the peak dB around each frequency over 1.5 s of analyser frames. */
window.measure = async (freqs) => {
  const out = [];
  for (const analyser of window.analysers) {
    const bins = new Float32Array(analyser.frequencyBinCount);
    const acc = freqs.map(() => -Infinity);
    for (let k = 0; k < 15; k++) {
      analyser.getFloatFrequencyData(bins);
      freqs.forEach((f, i) => {
        const c = Math.round(f / (analyser.context.sampleRate / analyser.fftSize));
        for (let j = c - 2; j <= c + 2; j++) acc[i] = Math.max(acc[i], bins[j]);
      });
      await new Promise((r) => setTimeout(r, 100));
    }
    out.push(acc);
  }
  return out;
};
window.inboundBytes = async () => {
  let bytes = 0;
  (await window.client.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') bytes += s.bytesReceived; });
  return bytes;
};
</script>`;

type PageApi = {
  start(room: string): Promise<void>;
  voxHandle(m: unknown): Promise<void>;
  measure(freqs: number[]): Promise<number[][]>;
  inboundBytes(): Promise<number>;
  analysers: unknown[];
};

describe('a headless Chromium in a mix room', () => {
  let h: RoomHarness;
  let server: Server;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL('../../src/client/media/index.ts', import.meta.url))],
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'VoxMedia',
      platform: 'browser',
      target: 'chrome120',
    });
    const sdk = bundle.outputFiles[0]!.text;
    server = createServer((req, res) => {
      if (req.url === '/sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
      else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;

    h = new RoomHarness({ roomId: 'chrome-mix', mode: 'mix', ...portRange(43400) });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROME_ARGS });
    page = await browser.newPage();
    page.on('pageerror', (e) => h.errors.push(e));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.exposeFunction('voxSend', (m: ClientMediaMessage) => {
      h.room.signal('chrome', m).catch((e: unknown) => h.errors.push(e));
    });
    await page.evaluate((room) => (window as unknown as PageApi).start(room), 'chrome-mix');
    let chain: Promise<unknown> = Promise.resolve();
    h.sinks.set('chrome', (m: ServerMediaMessage) => {
      chain = chain
        .then(() => page.evaluate((msg) => (window as unknown as PageApi).voxHandle(msg), m))
        .catch((e: unknown) => {
          h.errors.push(e);
        });
    });

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
    await browser?.close();
    await h?.close();
    await new Promise((r) => server?.close(r));
  });

  it('hears the werift speaker’s tone on its one remote audio track', async () => {
    const deadline = Date.now() + 15_000;
    let bytes = 0;
    while (Date.now() < deadline && bytes < 20_000) {
      bytes = await page.evaluate(() => (window as unknown as PageApi).inboundBytes());
      await sleep(250);
    }
    expect(bytes).toBeGreaterThan(20_000);
    await sleep(1000);
    expect(await page.evaluate(() => (window as unknown as PageApi).analysers.length)).toBe(1);
    const [levels] = await page.evaluate((f) => (window as unknown as PageApi).measure(f), [440, 1500, 2500]);
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
