import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import type { ClientMediaMessage, ServerMediaMessage } from '../../src/protocol/index.ts';
import { meanPower, powerAt } from '../codec/signal.ts';
import { RoomHarness, portRange, sleep, waitFor } from './harness.ts';

const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };
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
  // The page's AudioContext must run without a click.
  '--autoplay-policy=no-user-gesture-required',
];

/** The test page: the SDK's BrowserMediaClient (bundled from src/) plus WebAudio analysers on the slot tracks. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>voxlink media test</title>
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
/** Peak dB around each frequency, per slot: the max over 1.5 s of analyser frames (a starved box glitches). */
window.measure = async (freqs) => {
  const out = [];
  for (const analyser of window.analysers) {
    if (!analyser) { out.push(null); continue; }
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
window.slots = () => window.client.slotMap.slots;
</script>`;

describe('a headless Chromium as the fourth participant', () => {
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
    const sdk = bundle.outputFiles[0].text;
    server = createServer((req, res) => {
      if (req.url === '/sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
      else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;

    h = new RoomHarness({ roomId: 'chrome', slots: 3, ...portRange(42000) });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROME_ARGS });
    page = await browser.newPage();
    page.on('pageerror', (e) => h.errors.push(e));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.exposeFunction('voxSend', (m: ClientMediaMessage) => {
      h.room.signal('chrome', m).catch((e: unknown) => h.errors.push(e));
    });
    await page.evaluate((room) => (window as unknown as { start(r: string): Promise<void> }).start(room), 'chrome');
    // Server messages for the page go through evaluate, in order.
    let chain: Promise<unknown> = Promise.resolve();
    h.sinks.set('chrome', (m: ServerMediaMessage) => {
      chain = chain
        .then(() => page.evaluate((msg) => (window as unknown as { voxHandle(x: unknown): Promise<void> }).voxHandle(msg), m))
        .catch((e: unknown) => {
          h.errors.push(e);
        });
    });

    for (const id of Object.keys(TONES)) await h.join(id);
    await h.room.join({ roomId: 'chrome', participantId: 'chrome', name: 'Chromium', grants: { publish: true, subscribe: true, record: false, admin: false } });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const [id, c] of h.clients) c.publish(new ToneSource(TONES[id]));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await new Promise((r) => server?.close(r));
  });

  it('Chromium receives the three tones on its slots, as the slot map says', async () => {
    const deadline = Date.now() + 15_000;
    let bytes = 0;
    while (Date.now() < deadline && bytes < 20_000) {
      bytes = await page.evaluate(() => (window as unknown as { inboundBytes(): Promise<number> }).inboundBytes());
      await sleep(250);
    }
    expect(bytes).toBeGreaterThan(20_000);
    await sleep(1000);
    const slots = await page.evaluate(() => (window as unknown as { slots(): (string | null)[] }).slots());
    expect([...slots].sort()).toEqual(['a', 'b', 'c']);
    const freqs = slots.map((id) => TONES[id!]);
    const levels = (await page.evaluate((f) => (window as unknown as { measure(f: number[]): Promise<number[][]> }).measure(f), freqs)) as number[][];
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
