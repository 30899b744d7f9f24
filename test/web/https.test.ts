import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../media/chromium-peer.ts';
import { fakeMicrophoneWav, joined, PAGE_HZ, remoteAudio, until } from './page-harness.ts';

/**
 * The README's two-machine setup, for real: the server runs in a network namespace of its own (a
 * second host as far as the kernel is concerned), bound to every interface in dev mode, and
 * Chromium opens it by that host's non-loopback address. Over plain http such a page is no secure
 * context and has no getUserMedia; the server therefore serves HTTPS with a self-signed
 * certificate it generates, and two pages join through the UI and hear each other.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const id = process.pid % 100_000;
const NS = `voxtls${id}`;
const HOST_IF = `vxh${id}`;
const NS_IF = `vxn${id}`;
const octet = 16 + (process.pid % 200);
const HOST_ADDR = `10.231.${octet}.1`;
const NS_ADDR = `10.231.${octet}.2`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function createTestHost(): void {
  ip('netns', 'add', NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  ip('link', 'set', NS_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_ADDR}/30`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_ADDR}/30`, 'dev', NS_IF);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
}

function removeTestHost(): void {
  // Deleting the namespace deletes the veth pair with it.
  try {
    ip('netns', 'delete', NS);
  } catch {
    // already gone
  }
}

describe('HTTPS on a non-loopback address (dev mode, self-signed)', () => {
  let server: ChildProcess;
  let output = '';
  let banner: string;
  let browser: Browser;
  const pages: Page[] = [];

  beforeAll(async () => {
    removeTestHost();
    createTestHost();
    const env = {
      ...process.env,
      VOXLINK_HOST: '0.0.0.0',
      VOXLINK_PORT: '7880',
      VOXLINK_DEV_MODE: 'true',
      VOXLINK_ANNOUNCED_IP: NS_ADDR,
      VOXLINK_DATA_DIR: mkdtempSync(join(tmpdir(), 'voxlink-https-')),
      VOXLINK_MEDIA_WORKERS: '1',
      VOXLINK_LOG_LEVEL: 'info',
    };
    server = spawn('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', 'src/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    banner = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner; output: ${output}`)), 30_000);
      server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
      server.stdout?.on('data', (d: Buffer) => {
        output += d.toString();
        const match = /VoxLink dev server: (\S+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
    browser = await launchChromium([`--use-file-for-fake-audio-capture=${fakeMicrophoneWav()}`, '--ignore-certificate-errors']);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    server?.kill('SIGKILL');
    removeTestHost();
  });

  it('prints the reachable https:// URL, not 127.0.0.1, and says the certificate is self-signed', () => {
    expect(banner).toBe(`https://${NS_ADDR}:7880`);
    expect(output).toMatch(/Self-signed certificate \(SHA-256 [0-9A-F:]{95}\)/);
    expect(output).toMatch(/HTTPS with a self-signed certificate/);
    // announcedIp is set to the address clients reach: no warning about it.
    expect(output).not.toMatch(/media\.announcedIp is/);
  });

  it('two Chromium pages on that address are secure contexts, join through the UI and hear each other', async () => {
    for (const name of ['Alice', 'Bob']) {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      await page.goto(`${banner}/?room=tls`);
      expect(await page.evaluate(() => window.isSecureContext && typeof navigator.mediaDevices?.getUserMedia === 'function')).toBe(true);
      await expect.poll(() => page.locator('#mic option').count()).toBeGreaterThan(0);
      await page.fill('#name', name);
      await page.click('#join-button');
      await joined(page);
      await until(`${name} media`, () => page.getAttribute('#media-state', 'data-state'), (s) => s === 'connected', 20_000);
      pages.push(page);
    }
    for (const [i, page] of pages.entries()) {
      const other = i === 0 ? 'Bob' : 'Alice';
      const heard = await until(
        `${other}'s voice on the other page`,
        () => remoteAudio(page, 1500, PAGE_HZ),
        (audio) => (audio[other]?.rms ?? 0) > 0.01,
        20_000,
      );
      expect(heard[other].rms).toBeGreaterThan(0.01);
      expect(heard[other].toneDb, `the ${PAGE_HZ} Hz voice dominates ${other}'s slot`).toBeGreaterThan(10);
    }
  }, 90_000);
});
