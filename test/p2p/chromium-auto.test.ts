import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAuthKeys, type AuthKeys } from '../../src/auth/keys.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { parseConfig, recordingDirOf } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { startServer, type VoxServer } from '../../src/signalling/index.ts';
import type { RouteInstaller } from '../../src/signalling/server.ts';
import { buildWebAssets } from '../../src/web/assets.ts';
import { webRoutes } from '../../src/web/routes.ts';
import { powerAt } from '../codec/signal.ts';
import { launchChromium } from '../media/chromium-peer.ts';
import { decodeRecordingFile, seconds } from '../recording/decode.ts';
import { fakeMicrophoneWav, joined, PAGE_HZ, remoteAudio, TONE_HZ, until } from '../web/page-harness.ts';

/**
 * An `auto` room with two Chromium pages (the demo page, fake microphones at 660 Hz) and a werift
 * tone bot (440 Hz): the pages talk directly while the server forwards nothing for them; the bot
 * joining moves everyone to the server make-before-break, the bot leaving moves the pages back,
 * and a recording moves them to the server again and holds both voices. At each switch the audio
 * gap is measured inside the pages: how long the other page's 660 Hz voice was absent from
 * everything the page plays.
 */

const ROOM = 'duo';

/**
 * Runs in every page before its scripts: each `srcObject` assignment on a media element is also
 * announced as an event, so the gap probe follows what the page plays at the moment it changes
 * (a poll would add its own gap). A test hook in the test's pages only, not in the demo.
 */
function announceSrcObject(): void {
  const property = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'srcObject')!;
  Object.defineProperty(HTMLMediaElement.prototype, 'srcObject', {
    configurable: true,
    get(this: HTMLMediaElement) {
      return property.get!.call(this);
    },
    set(this: HTMLMediaElement, value: MediaStream | null) {
      property.set!.call(this, value);
      window.dispatchEvent(new CustomEvent('test-src-object', { detail: this }));
    },
  });
}

/** The probe's AudioWorklet, served same-origin to the pages (the demo's CSP allows 'self' only). */
const GAP_PROBE_WORKLET = `
  class Probe extends AudioWorkletProcessor {
    constructor() { super(); this.n = Math.round(sampleRate * 0.02); this.hop = this.n / 2; this.ring = new Float32Array(this.n); this.at = 0; this.since = 0; this.out = []; this.w = 2 * Math.PI * ${PAGE_HZ} / sampleRate; }
    process(inputs) {
      // No source connected is silence too (a gap between two streams must not hide).
      const x = inputs[0][0] ?? new Float32Array(128);
      for (let i = 0; i < x.length; i++) {
        this.ring[this.at] = x[i]; this.at = (this.at + 1) % this.n;
        if (++this.since < this.hop) continue;
        this.since = 0;
        let re = 0, im = 0;
        for (let k = 0; k < this.n; k++) {
          const v = this.ring[(this.at + k) % this.n] * (0.5 - 0.5 * Math.cos(2 * Math.PI * k / (this.n - 1)));
          re += v * Math.cos(this.w * k); im += v * Math.sin(this.w * k);
        }
        this.out.push(4 * Math.hypot(re, im) / this.n);
      }
      if (this.out.length >= 20) { this.port.postMessage(this.out); this.out = []; }
      return true;
    }
  }
  registerProcessor('gap-probe', Probe);`;

/**
 * Installs the gap probe: what the page's <audio> elements play is summed into an AudioWorklet,
 * which measures the 660 Hz amplitude (Hann window 20 ms, hop 10 ms) on the audio clock, so main
 * thread stalls under load do not count as gaps.
 */
async function startGapProbe(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const ctx = new AudioContext();
    await ctx.resume();

    await ctx.audioWorklet.addModule('/__test/gap-probe.js');
    const probe = new AudioWorkletNode(ctx, 'gap-probe', { numberOfOutputs: 1, channelCount: 1, channelCountMode: 'explicit' });
    const mute = ctx.createGain();
    mute.gain.value = 0;
    probe.connect(mute).connect(ctx.destination);
    const amplitudes: number[] = [];
    probe.port.onmessage = (e: MessageEvent<number[]>) => amplitudes.push(...e.data);
    const sources = new Map<HTMLMediaElement, MediaStreamAudioSourceNode>();
    const follow = (audio: HTMLMediaElement): void => {
      sources.get(audio)?.disconnect();
      sources.delete(audio);
      const stream = audio.srcObject as MediaStream | null;
      if (!stream || stream.getAudioTracks().length === 0) return;
      const source = ctx.createMediaStreamSource(stream);
      source.connect(probe);
      sources.set(audio, source);
    };
    for (const audio of document.querySelectorAll<HTMLAudioElement>('#remote-audio audio')) follow(audio);
    const onChange = (e: Event): void => follow((e as CustomEvent<HTMLMediaElement>).detail);
    window.addEventListener('test-src-object', onChange);
    // An element taken out of the page no longer plays: its stream leaves the probe too.
    const removed = new MutationObserver((records) => {
      for (const r of records) for (const node of r.removedNodes) if (node instanceof HTMLMediaElement) sources.get(node)?.disconnect();
    });
    removed.observe(document.getElementById('remote-audio')!, { childList: true });
    const stop = (): void => {
      window.removeEventListener('test-src-object', onChange);
      removed.disconnect();
    };
    (window as unknown as { gapProbe: unknown }).gapProbe = { amplitudes, ctx, stop };
  });
}

/** Stops the probe: the longest run of 10 ms hops without the other page's voice, in ms, and how many hops it saw. */
async function stopGapProbe(page: Page): Promise<{ gapMs: number; present: number; hops: number }> {
  return page.evaluate(async () => {
    const probe = (window as unknown as { gapProbe: { amplitudes: number[]; ctx: AudioContext; stop: () => void } }).gapProbe;
    probe.stop();
    await new Promise((r) => setTimeout(r, 300));
    await probe.ctx.close();
    let run = 0;
    let longest = 0;
    let present = 0;
    let seen = false;
    for (const amplitude of probe.amplitudes) {
      if (amplitude >= 0.003) {
        // Only gaps between voice and voice count: the probe's own start (no stream yet) does not.
        if (seen) longest = Math.max(longest, run);
        seen = true;
        present++;
        run = 0;
      } else {
        run++;
      }
    }
    return { gapMs: longest * 10, present, hops: probe.amplitudes.length };
  });
}

describe('auto room in Chromium: direct for two, the server from three, make-before-break', () => {
  let server: VoxServer;
  let plane: PooledMediaPlane;
  let browser: Browser;
  let keys: AuthKeys;
  let recordingDir: string;
  const pages: Record<string, Page> = {};
  const consoleErrors: string[] = [];

  async function metric(name: string): Promise<string[]> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return text.split('\n').filter((line) => line.startsWith(name));
  }

  async function value(line: string): Promise<number> {
    const found = await metric(line);
    return found.length === 0 ? 0 : Number(found[0].slice(found[0].lastIndexOf(' ') + 1));
  }

  async function path(page: Page): Promise<string | null> {
    return page.getAttribute('#media-path', 'data-path');
  }

  async function hearEachOther(what: string): Promise<void> {
    for (const [name, page] of Object.entries(pages)) {
      const other = name === 'Alice' ? 'Bob' : 'Alice';
      const audio = await until(`${name} hears ${other} (${what})`, () => remoteAudio(page, 1000, PAGE_HZ), (a) => (a[other]?.rms ?? 0) > 0.01, 15_000);
      expect(audio[other].toneDb, `${name}: ${PAGE_HZ} Hz dominates ${other}'s audio (${what})`).toBeGreaterThan(10);
    }
  }

  beforeAll(async () => {
    const config = parseConfig({
      server: { host: '127.0.0.1', port: 0 },
      dataDir: mkdtempSync(join(tmpdir(), 'voxlink-p2p-auto-')),
      auth: { devMode: true },
      metrics: { enabled: true, defaultMetrics: false },
      signalling: { defaultRoomMode: 'auto' },
      media: { workers: 1, rtcMinPort: 54200, rtcMaxPort: 54299 },
    });
    keys = resolveAuthKeys(config);
    recordingDir = recordingDirOf(config)!;
    plane = createMediaPlane(mediaPlaneOptionsFromConfig({ ...config.media, recordingDir }));
    // The gap probe's worklet, same-origin (Playwright's routing does not see worklet module loads).
    const probeRoute: RouteInstaller = (app) => {
      app.get('/__test/gap-probe.js', (res) => {
        res.writeHeader('content-type', 'text/javascript').end(GAP_PROBE_WORKLET);
      });
    };
    server = await startServer(config, { keys, mediaPlane: plane, routes: [webRoutes(config, keys, { assets: buildWebAssets() }), probeRoute] });
    browser = await launchChromium([`--use-file-for-fake-audio-capture=${fakeMicrophoneWav()}`]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await plane?.close();
  });

  it('two pages hear each other directly; the server starts no media room and forwards nothing', async () => {
    for (const name of ['Alice', 'Bob']) {
      const context = await browser.newContext();
      await context.addInitScript(announceSrcObject);
      const page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      await page.goto(`${server.url}/?room=${ROOM}`);
      await expect.poll(() => page.locator('#mic option').count()).toBeGreaterThan(0);
      await page.fill('#name', name);
      await page.click('#join-button');
      await joined(page);
      pages[name] = page;
    }
    for (const page of Object.values(pages)) {
      await until('the direct path', () => path(page), (p) => p === 'direct', 20_000);
      await until('media connected', () => page.getAttribute('#media-state', 'data-state'), (s) => s === 'connected');
      expect(await page.textContent('#media-path')).toBe('direct');
      expect(await page.textContent('#room-mode')).toBe('Mode: auto');
    }
    await hearEachOther('direct');
    expect(plane.workerOf(ROOM)).toBeUndefined();
    expect(await metric(`voxlink_room_packets_out_total{room="${ROOM}"}`)).toEqual([]);
    expect(await metric(`voxlink_room_packets_in_total{room="${ROOM}"}`)).toEqual([]);
    expect(await value('voxlink_p2p_rooms ')).toBe(1);
    expect(await value('voxlink_p2p_participants ')).toBe(2);
  }, 90_000);

  let bot: VoxClient;
  let botMedia: NodeMediaClient;

  it('a werift tone bot joins: everyone moves to the server make-before-break and all three hear each other', async () => {
    await Promise.all(Object.values(pages).map(startGapProbe));
    const token = await mintToken({ key: keys.hs256Secret!, userId: 'bot', name: 'Tone bot', room: ROOM });
    bot = createNodeClient();
    const send = (m: Parameters<VoxClient['sendMedia']>[0]): void => bot.sendMedia(m);
    botMedia = new NodeMediaClient({ room: ROOM, signal: { send, sendPeer: send } });
    bot.on('media', (m) => void botMedia.handle(m));
    bot.on('slots', (e) => void botMedia.handle({ op: 'slots', room: e.room, slots: [...e.slots] }));
    await bot.connect(server.url.replace(/^http/, 'ws') + '/ws', token);
    await bot.join(ROOM);
    await botMedia.connected(20_000);
    botMedia.publish(new ToneSource(TONE_HZ));
    for (const page of Object.values(pages)) await until('the server path', () => path(page), (p) => p === 'server', 20_000);
    await until('the switch reported done', () => value('voxlink_p2p_switches_total{to="server",outcome="done"}'), (v) => v === 1, 15_000);
    const gaps = await Promise.all(Object.values(pages).map(stopGapProbe));
    console.log(`switch to the server: audio gap per page ${JSON.stringify(gaps)}`);
    for (const gap of gaps) {
      expect(gap.present).toBeGreaterThan(50);
      expect(gap.gapMs, 'no audible gap: the other page was never silent for 100 ms').toBeLessThan(100);
    }
    await hearEachOther('via the server');
    for (const [name, page] of Object.entries(pages)) {
      const audio = await until(`${name} hears the bot`, () => remoteAudio(page, 1000, TONE_HZ), (a) => (a['Tone bot']?.rms ?? 0) > 0.05, 15_000);
      expect(audio['Tone bot'].toneDb).toBeGreaterThan(20);
    }
    const heard = await until('the bot hears both pages', async () => botMedia.heard(), (h) => h.length >= 2, 15_000);
    expect(heard.length).toBe(2);
    expect(await value('voxlink_p2p_rooms ')).toBe(0);
    expect(await value(`voxlink_room_packets_out_total{room="${ROOM}"}`)).toBeGreaterThan(0);
    expect(await value('voxlink_p2p_switch_duration_seconds_count{to="server"}')).toBe(1);
  }, 90_000);

  it('the bot leaves: the pages return to direct make-before-break and still hear each other', async () => {
    await Promise.all(Object.values(pages).map(startGapProbe));
    await bot.leave(ROOM);
    await botMedia.close();
    await bot.disconnect();
    for (const page of Object.values(pages)) await until('the direct path again', () => path(page), (p) => p === 'direct', 20_000);
    await until('the switch back reported done', () => value('voxlink_p2p_switches_total{to="direct",outcome="done"}'), (v) => v === 1, 15_000);
    const gaps = await Promise.all(Object.values(pages).map(stopGapProbe));
    console.log(`switch back to direct: audio gap per page ${JSON.stringify(gaps)}`);
    for (const gap of gaps) {
      expect(gap.present).toBeGreaterThan(50);
      expect(gap.gapMs, 'no audible gap: the other page was never silent for 100 ms').toBeLessThan(100);
    }
    await hearEachOther('direct again');
    // The break: the server's peers for them are gone with the media room.
    await until('the media room closed', async () => plane.workerOf(ROOM), (w) => w === undefined, 10_000);
    expect(await metric(`voxlink_room_packets_out_total{room="${ROOM}"}`)).toEqual([]);
    expect(await value('voxlink_p2p_participants ')).toBe(2);
  }, 90_000);

  it('a recording started in the direct room moves it to the server, and the recording holds both voices', async () => {
    const alice = pages.Alice;
    await alice.click('#record-button');
    for (const page of Object.values(pages)) await until('the server path for the recording', () => path(page), (p) => p === 'server', 20_000);
    await new Promise((r) => setTimeout(r, 4000));
    // While recording, the room stays on the server.
    for (const page of Object.values(pages)) expect(await path(page)).toBe('server');
    await alice.click('#record-button');
    await until('the indicator gone', () => alice.isHidden('#recording'), (v) => v, 10_000);
    const [id] = readdirSync(recordingDir);
    const manifest = JSON.parse(readFileSync(join(recordingDir, id, 'manifest.json'), 'utf8')) as { files: { participantId: string; file: string; name?: string }[] };
    const voices = manifest.files.filter((f) => !f.participantId.startsWith('~'));
    expect(voices.length).toBe(2);
    for (const f of voices) {
      const { pcm } = decodeRecordingFile(join(recordingDir, id, f.file));
      expect(pcm.length / 48000, `${f.file} length`).toBeGreaterThan(2);
      // The fake microphone's 660 Hz voice (amplitude ~0.1–0.8 before Chromium's voice processing).
      expect(powerAt(seconds(pcm, 0.5, pcm.length / 48000 - 0.5), 48000, PAGE_HZ), `${f.file} holds a ${PAGE_HZ} Hz voice`).toBeGreaterThan(1e-4);
    }
    // Recording stopped with two left: back to direct.
    for (const page of Object.values(pages)) await until('direct after the recording', () => path(page), (p) => p === 'direct', 20_000);
    expect(consoleErrors).toEqual([]);
  }, 90_000);
});
