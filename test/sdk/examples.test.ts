import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyToken } from '../../src/auth/index.ts';
import { NodeMediaClient } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { recordingDirOf } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { dominantFrequency, meanPower, toInt16, toneFloat32, wavBytes } from '../codec/signal.ts';
import { launchChromium } from '../media/chromium-peer.ts';
import { waitFor } from '../media/harness.ts';
import { decodeRecordingFile } from '../recording/decode.ts';
import { SECRET, startTestServer, type TestServer } from '../signalling/harness.ts';

/**
 * Every example under examples/ that docs/sdk.md shows, run as a user runs it (`node --import tsx
 * examples/….ts`, the browser one bundled with esbuild and opened in Chromium), importing the SDK
 * through the package's own `voxlink/…` exports, against a real server with the media plane. The
 * results are checked as a user would notice them: the bot's tone heard at its frequency, the
 * browser playing it, the recording decoding to it.
 */
const repo = fileURLToPath(new URL('../..', import.meta.url));
const example = (file: string) => join(repo, 'examples', file);

let dataDir: string;
let work: string;
let plane: PooledMediaPlane;
let t: TestServer;
const cleanup: (() => Promise<unknown> | unknown)[] = [];

/** Runs an example to completion; resolves with its stdout, rejects with its stderr. */
function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('node', ['--import', 'tsx', example(file), ...args], { cwd: repo, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file} failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

function mint(user: string, room: string, grants = 'join,publish,subscribe', jose = false): Promise<string> {
  return run('mint-token.ts', [user, room, grants, ...(jose ? ['--jose'] : [])], { VOXLINK_SECRET: SECRET }).then((s) => s.trim());
}

/** A test WAV as a file on disk: 16-bit mono at 22.05 kHz (espeak-ng's format), so the example resamples. */
function toneWav(path: string, hz: number, seconds: number, amplitude = 0.3): string {
  const rate = 22_050;
  const pcm = toInt16(toneFloat32(hz, rate, Math.round(rate * seconds), { amplitude }));
  writeFileSync(path, wavBytes(pcm, rate));
  return path;
}

/** A Node participant that listens (decodes what it receives), like any other client. */
async function listener(user: string, room: string): Promise<{ client: VoxClient; media: NodeMediaClient }> {
  const client = createNodeClient();
  const media = new NodeMediaClient({ room, signal: { send: (m) => client.sendMedia(m) } });
  client.on('media', (m) => void media.handle(m));
  cleanup.push(() => media.close(), () => client.disconnect());
  await client.connect(t.wsUrl, await mint(user, room));
  await client.join(room);
  await media.connected(15_000);
  return { client, media };
}

function participantId(client: VoxClient, room: string, userId: string): string | undefined {
  return [...(client.room(room)?.participants.values() ?? [])].find((p) => p.userId === userId)?.participantId;
}

const dbfs = (pcm: Float32Array) => 10 * Math.log10(meanPower(pcm) + 1e-12);

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'voxlink-examples-'));
  work = mkdtempSync(join(tmpdir(), 'voxlink-examples-work-'));
  plane = createMediaPlane(
    mediaPlaneOptionsFromConfig({
      workers: 1,
      announcedIp: '127.0.0.1',
      rtcMinPort: 45400,
      rtcMaxPort: 45599,
      slots: 3,
      recordingDir: recordingDirOf({ dataDir, recording: { enabled: true } }),
    }),
  );
  await plane.pool.ready();
  t = await startTestServer({ dataDir }, { mediaPlane: plane });
}, 30_000);

afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await t?.close();
  await plane?.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('the package exports', () => {
  it('type-check the examples: voxlink/… resolves to the SDK sources and their types', () => {
    // examples/tsconfig.json extends the project's; `types` in package.json exports points at the sources.
    execFileSync('node', [join(repo, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(repo, 'examples')], { cwd: repo, stdio: 'pipe' });
  }, 60_000);
});

describe('examples/mint-token.ts', () => {
  it('mints a token (with voxlink/auth, and with jose alone) that the server accepts, with the same claims', async () => {
    const [helper, jose] = await Promise.all([mint('ann', 'ex-tokens', 'join,record'), mint('ann', 'ex-tokens', 'join,record', true)]);
    const key = { alg: 'HS256' as const, key: Buffer.from(SECRET) };
    const a = await verifyToken(helper, key);
    const b = await verifyToken(jose, key);
    expect(a).toMatchObject({ userId: 'ann', name: 'ann', rooms: [{ room: 'ex-tokens', grants: ['join', 'record'] }] });
    expect({ ...b, expiresAt: 0 }).toEqual({ ...a, expiresAt: 0 });
    expect(Math.abs(a.expiresAt - Date.now() - 3_600_000)).toBeLessThan(60_000);

    for (const token of [helper, jose]) {
      const client = createNodeClient();
      cleanup.push(() => client.disconnect());
      await client.connect(t.wsUrl, token);
      expect((await client.join('ex-tokens')).participants.size).toBeGreaterThan(0);
      await client.disconnect();
    }
    await expect(run('mint-token.ts', ['ann', 'ex-tokens'], { VOXLINK_SECRET: '' })).rejects.toThrow(/usage:/);
  }, 30_000);
});

describe('examples/node-bot-wav.ts', () => {
  it('says a WAV file: another client hears the tone at its frequency and level, then the bot leaves', async () => {
    const room = 'ex-bot';
    const ear = await listener('ear', room);
    const wav = toneWav(join(work, 'tone-660.wav'), 660, 4);
    const bot = run('node-bot-wav.ts', [t.wsUrl, await mint('bot', room), room, wav]);
    await waitFor(() => participantId(ear.client, room, 'bot') !== undefined, 15_000, 'the bot to join');
    const botId = participantId(ear.client, room, 'bot')!;
    await waitFor(() => ear.media.audioFrom(botId, 1.5).length >= 72_000, 15_000, '1.5 s of the bot');
    const heard = ear.media.audioFrom(botId, 1.5);
    expect(dominantFrequency(heard, 48_000)).toBeCloseTo(660, -1);
    expect(dbfs(heard)).toBeGreaterThan(-20); // a 0.3 sine is −13.5 dBFS; Opus keeps it within a few dB
    expect(dbfs(heard)).toBeLessThan(-9);
    expect(await bot).toMatch(/bot: speaking .*\(4\.0 s\)[\s\S]*bot: done/);
    await waitFor(() => participantId(ear.client, room, 'bot') === undefined, 5_000, 'the bot to leave');
  }, 60_000);

  it('says what espeak-ng wrote: speech arrives with its energy', async () => {
    const room = 'ex-speech';
    const ear = await listener('ear2', room);
    const wav = join(work, 'speech.wav');
    execFileSync('espeak-ng', ['-w', wav, 'Hello from the VoxLink bot. This sentence is long enough to measure.']);
    const bot = run('node-bot-wav.ts', [t.wsUrl, await mint('speaker', room), room, wav]);
    await waitFor(() => participantId(ear.client, room, 'speaker') !== undefined, 15_000, 'the bot to join');
    const botId = participantId(ear.client, room, 'speaker')!;
    await waitFor(() => ear.media.audioFrom(botId, 2).length >= 96_000, 15_000, '2 s of speech');
    await bot;
    const heard = ear.media.audioFrom(botId, 10);
    expect(dbfs(heard)).toBeGreaterThan(-40);
    // Speech, not a tone or noise: most of its energy below 4 kHz, and it pauses between words.
    const frames = Array.from({ length: Math.floor(heard.length / 960) }, (_, i) => dbfs(heard.subarray(i * 960, (i + 1) * 960)));
    expect(Math.max(...frames) - Math.min(...frames)).toBeGreaterThan(30);
  }, 60_000);
});

describe('examples/browser (main.ts bundled with esbuild, index.html)', () => {
  let browser: Browser;
  let site: Server;
  afterAll(async () => {
    await browser?.close();
    site?.close();
  });

  it('joins in Chromium and plays the room: the bot’s tone comes out of the page’s <audio>', async () => {
    const room = 'ex-browser';
    // What docs/sdk.md runs: npx esbuild examples/browser/main.ts --bundle --format=esm --outfile=…
    const bundle = await build({ entryPoints: [example('browser/main.ts')], bundle: true, format: 'esm', write: false, logLevel: 'silent' });
    const files: Record<string, [string, string]> = {
      '/index.html': ['text/html', readFileSync(example('browser/index.html'), 'utf8')],
      '/main.js': ['text/javascript', bundle.outputFiles[0]!.text],
    };
    site = createServer((req, res) => {
      const file = files[new URL(req.url ?? '/', 'http://x').pathname];
      if (file) res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    const sitePort = (site.address() as { port: number }).port;

    browser = await launchChromium();
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const token = await mint('web', room);
    await page.goto(`http://127.0.0.1:${sitePort}/index.html?server=${encodeURIComponent(t.wsUrl)}&room=${room}&token=${token}`);
    await page.click('#join');
    await expect.poll(() => page.textContent('#status'), { timeout: 15_000 }).toBe(`In ${room}`);

    const bot = run('node-bot-wav.ts', [t.wsUrl, await mint('bot', room, 'join,publish'), room, toneWav(join(work, 'tone-440.wav'), 440, 8)]);
    await expect.poll(() => page.$$eval('#people li', (li) => li.map((l) => l.textContent)), { timeout: 40_000 }).toContain('bot');
    await expect.poll(() => page.$$eval('#audio audio', (els) => (els as HTMLAudioElement[]).filter((a) => !a.paused).length), { timeout: 15_000 }).toBeGreaterThan(0);

    // Listen to what the page's <audio> elements play: a WebAudio analyser on each one's stream.
    const peaks = async () =>
      page.evaluate(async () => {
        const ctx = new AudioContext({ sampleRate: 48_000 });
        await ctx.resume();
        const analysers = [...document.querySelectorAll<HTMLAudioElement>('#audio audio')].map((el) => {
          const analyser = ctx.createAnalyser();
          analyser.fftSize = 8192;
          analyser.smoothingTimeConstant = 0;
          ctx.createMediaStreamSource(el.srcObject as MediaStream).connect(analyser);
          return analyser;
        });
        const at = (bins: Float32Array, hz: number) => {
          const c = Math.round(hz / (48_000 / 8192));
          return Math.max(...bins.slice(c - 2, c + 3));
        };
        let tone = -Infinity;
        let off = -Infinity;
        for (let k = 0; k < 15; k++) {
          await new Promise((r) => setTimeout(r, 100));
          for (const analyser of analysers) {
            const bins = new Float32Array(analyser.frequencyBinCount);
            analyser.getFloatFrequencyData(bins);
            tone = Math.max(tone, at(bins, 440));
            off = Math.max(off, at(bins, 1_000));
          }
        }
        await ctx.close();
        return { tone, off };
      });
    await expect.poll(async () => (await peaks()).tone, { timeout: 15_000, interval: 200 }).toBeGreaterThan(-50);
    const { tone, off } = await peaks();
    expect(tone - off).toBeGreaterThan(20);
    await bot;
    expect(pageErrors).toEqual([]);
  }, 150_000);
});

describe('examples/record-room.ts', () => {
  it('records a speaking bot and downloads the files: valid Ogg Opus carrying its tone', async () => {
    const room = 'ex-rec';
    const out = join(work, 'recordings');
    const bot = spawn('node', ['--import', 'tsx', example('node-bot-wav.ts'), t.wsUrl, await mint('singer', room), room, toneWav(join(work, 'tone-550.wav'), 550, 20)], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanup.push(() => bot.kill());
    let botOut = '';
    bot.stdout.on('data', (d: Buffer) => (botOut += d.toString()));
    await waitFor(() => botOut.includes('bot: speaking'), 20_000, 'the bot to speak');
    // Record once its voice reaches the room (another participant hears it), not merely once it started.
    const ear = await listener('ear3', room);
    await waitFor(() => ear.media.heard().length > 0 && ear.media.audioFrom(ear.media.heard()[0]!, 0.5).length >= 24_000, 20_000, 'the bot heard in the room');

    const printed = await run('record-room.ts', [t.wsUrl, await mint('recorder', room, 'join,record'), room, '3', out]);
    const [id] = readdirSync(out);
    expect(printed).toContain(`recording ${id} of ${room} for 3 s`);
    const files = readdirSync(join(out, id!)).filter((f) => f.endsWith('.opus') || f.endsWith('.ogg'));
    expect(printed.match(/^wrote /gm) ?? []).toHaveLength(files.length);
    expect(files.length).toBeGreaterThanOrEqual(1);
    // The singer's file carries its tone (the recorder and the listener publish nothing).
    const decoded = files.map((f) => decodeRecordingFile(join(out, id!, f)).pcm);
    const loudest = decoded.reduce((a, b) => (meanPower(a) >= meanPower(b) ? a : b));
    expect(loudest.length / 48_000).toBeGreaterThan(2);
    expect(dominantFrequency(loudest.subarray(48_000), 48_000)).toBeCloseTo(550, -1);
    expect(dbfs(loudest.subarray(48_000))).toBeGreaterThan(-25);
  }, 60_000);
});
