import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ClientMediaMessage, ServerMediaMessage } from '../../src/protocol/index.ts';
import type { RoomHarness } from './harness.ts';

/** Debian's Chromium, headless, with fake media devices (the flags the project's tests run with). */
export const CHROMIUM_ARGS: readonly string[] = [
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

export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/** The test page: the SDK's BrowserMediaClient (bundled from src/) plus WebAudio analysers on the remote tracks. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>voxlink media test</title>
<script src="/sdk.js"></script>
<script>
window.start = async (room, rtcConfiguration) => {
  const mic = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0];
  const ctx = new AudioContext({ sampleRate: 48000 });
  await ctx.resume();
  const client = new VoxMedia.BrowserMediaClient({ room, microphone: mic, rtcConfiguration, signal: { send: (m) => window.voxSend(m) } });
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
/** Peak dB around each frequency, per track: the max over 1.5 s of analyser frames (a starved box glitches). */
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
/** The selected ICE pair's local candidate (type, and relayProtocol for a relay: udp, tcp or tls). */
window.selectedLocal = async () => {
  const stats = await window.client.pc.getStats();
  let pair;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
  const local = pair && stats.get(pair.localCandidateId);
  return local ? { type: local.candidateType, relayProtocol: local.relayProtocol ?? null, port: local.port } : null;
};
</script>`;

/** What the test page exposes to `page.evaluate`. */
export interface MediaTestPage {
  start(room: string, rtcConfiguration?: RTCConfiguration): Promise<void>;
  voxHandle(m: unknown): Promise<void>;
  /** Per remote track (null where a slot has none yet): peak dB around each frequency. */
  measure(freqs: number[]): Promise<(number[] | null)[]>;
  inboundBytes(): Promise<number>;
  slots(): (string | null)[];
  selectedLocal(): Promise<{ type: string; relayProtocol: string | null; port: number } | null>;
  analysers: unknown[];
}

export interface ChromiumPeer {
  browser: Browser;
  page: Page;
  /** Runs `fn` inside the page with its test API. */
  call<T, A>(fn: (api: MediaTestPage, arg: A) => T | Promise<T>, arg: A): Promise<T>;
  /**
   * Waits until the page's peer has received `bytes` of RTP payload (inbound-rtp stats), then
   * `settleMs` more so its analysers fill; resolves with the byte count reached, which the caller
   * asserts (it may be short when `timeoutMs` ran out).
   */
  receiving(bytes: number, timeoutMs?: number, settleMs?: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * Serves the test page, opens it in headless Chromium and relays its media signalling to the
 * harness's room as `participantId` (page → room via an exposed function, room → page through
 * `evaluate`, in order). The participant still has to be joined to the room by the caller.
 */
export async function openChromiumPeer(
  h: RoomHarness,
  participantId: string,
  extraArgs: readonly string[] = [],
  /** The page's BrowserMediaClient rtcConfiguration (e.g. relay-only with TURN servers). */
  rtcConfiguration?: RTCConfiguration,
): Promise<ChromiumPeer> {
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
  const server: Server = createServer((req, res) => {
    if (req.url === '/sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  const browser = await launchChromium(extraArgs);
  const page = await browser.newPage();
  page.on('pageerror', (e) => h.errors.push(e));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.exposeFunction('voxSend', (m: ClientMediaMessage) => {
    h.room.signal(participantId, m).catch((e: unknown) => h.errors.push(e));
  });
  const call = <T, A>(fn: (api: MediaTestPage, arg: A) => T | Promise<T>, arg: A): Promise<T> =>
    page.evaluate(
      ({ source, value }) => (new Function('api', 'arg', `return (${source})(api, arg)`) as (api: unknown, arg: unknown) => T)(window, value),
      { source: fn.toString(), value: arg },
    ) as Promise<T>;
  await call((api, arg) => api.start(arg.room, arg.rtc), { room: h.roomId, rtc: rtcConfiguration });
  let chain: Promise<unknown> = Promise.resolve();
  h.sinks.set(participantId, (m: ServerMediaMessage) => {
    chain = chain.then(() => call((api, msg) => api.voxHandle(msg), m)).catch((e: unknown) => {
      h.errors.push(e);
    });
  });
  return {
    browser,
    page,
    call,
    async receiving(bytes, timeoutMs = 15_000, settleMs = 1000) {
      const deadline = Date.now() + timeoutMs;
      let received = 0;
      while (Date.now() < deadline && received < bytes) {
        received = await call((api) => api.inboundBytes(), null);
        if (received < bytes) await new Promise((r) => setTimeout(r, 250));
      }
      if (received >= bytes) await new Promise((r) => setTimeout(r, settleMs));
      return received;
    },
    async close() {
      await browser.close();
      await new Promise((r) => server.close(r));
    },
  };
}
