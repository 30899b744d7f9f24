import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { toInt16, wavBytes } from '../codec/signal.ts';

/** What the demo-page tests share: the fake microphone, dev tokens, and reading what a page shows and hears. */

/** The werift bot's tone in the demo tests. */
export const TONE_HZ = 440;

/**
 * Chromium's fake microphone (--use-fake-device-for-media-stream) plays this file in a loop
 * (--use-file-for-fake-audio-capture): a 660 Hz voice-like tone, amplitude-modulated at 4 Hz like
 * syllables. Its default beep is too short (tens of ms per second) for the server's speaker
 * detector (250 ms smoothing) to ever call it speaking.
 */
export const PAGE_HZ = 660;
export function fakeMicrophoneWav(): string {
  const rate = 48_000;
  const pcm = new Float32Array(rate * 2);
  for (let i = 0; i < pcm.length; i++) {
    const envelope = 0.55 + 0.45 * Math.sin((2 * Math.PI * 4 * i) / rate);
    pcm[i] = 0.8 * envelope * Math.sin((2 * Math.PI * PAGE_HZ * i) / rate);
  }
  const path = join(mkdtempSync(join(tmpdir(), 'voxlink-web-mic-')), 'voice.wav');
  writeFileSync(path, wavBytes(toInt16(pcm), rate));
  return path;
}

export async function devToken(base: string, body: unknown): Promise<Response> {
  return fetch(`${base}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** What one page shows about a participant, by display name. */
export interface Shown {
  speaking: boolean;
  muted: boolean;
  level: number;
  slot: string | null;
}

export async function shown(page: Page): Promise<Record<string, Shown>> {
  return page.$$eval('#participants li', (items) =>
    Object.fromEntries(
      items.map((li) => {
        const el = li as HTMLElement;
        const slot = el.querySelector<HTMLElement>('.tag.slot');
        return [
          el.querySelector('.name')?.textContent ?? '',
          { speaking: el.dataset.speaking === 'true', muted: el.dataset.muted === 'true', level: Number(el.dataset.level ?? 0), slot: slot && !slot.hidden ? slot.textContent : null },
        ];
      }),
    ),
  );
}

/**
 * Measured inside the page on the remote tracks its <audio> elements play, per occupied slot: the
 * loudest 50 ms RMS over `ms`, and how far the 440 Hz peak of the averaged power spectrum stands
 * above the strongest component elsewhere (dB; positive = the tone dominates).
 */
export async function remoteAudio(page: Page, ms = 1500, hz = TONE_HZ): Promise<Record<string, { rms: number; toneDb: number }>> {
  return page.evaluate(
    async ({ ms, hz }) => {
      const names = new Map<string, string>();
      for (const li of document.querySelectorAll<HTMLElement>('#participants li')) {
        names.set(li.dataset.participantId ?? '', li.querySelector('.name')?.textContent ?? '');
      }
      const ctx = new AudioContext();
      await ctx.resume();
      const probes = [...document.querySelectorAll<HTMLElement>('#slots li[data-participant-id]')]
        .filter((li) => li.dataset.participantId)
        .map((li) => {
          // The newest element of the slot: during a hand-over the replaced one plays on before it.
          const audio = [...document.querySelectorAll<HTMLAudioElement>(`#remote-audio audio[data-slot="${li.dataset.slot}"]`)].at(-1)!;
          const analyser = ctx.createAnalyser();
          analyser.fftSize = 8192;
          analyser.smoothingTimeConstant = 0;
          ctx.createMediaStreamSource(audio.srcObject as MediaStream).connect(analyser);
          return { name: names.get(li.dataset.participantId!) ?? '?', analyser, rms: 0, power: new Float64Array(4096) };
        });
      const time = new Float32Array(8192);
      const freq = new Float32Array(4096);
      for (let t = 0; t < ms; t += 50) {
        await new Promise((r) => setTimeout(r, 50));
        for (const p of probes) {
          p.analyser.getFloatTimeDomainData(time);
          let sum = 0;
          for (let i = time.length - 2400; i < time.length; i++) sum += time[i] * time[i];
          p.rms = Math.max(p.rms, Math.sqrt(sum / 2400));
          p.analyser.getFloatFrequencyData(freq);
          for (let j = 0; j < freq.length; j++) p.power[j] += 10 ** (freq[j] / 10);
        }
      }
      await ctx.close();
      const binHz = ctx.sampleRate / 8192;
      const c = Math.round(hz / binHz);
      const db = (x: number) => 10 * Math.log10(x + 1e-30);
      return Object.fromEntries(
        probes.map((p) => {
          let tone = 0;
          let elsewhere = 0;
          for (let j = Math.round(60 / binHz); j < p.power.length; j++) {
            if (Math.abs(j - c) <= 3) tone = Math.max(tone, p.power[j]);
            else if (Math.abs(j - c) > 8) elsewhere = Math.max(elsewhere, p.power[j]);
          }
          return [p.name, { rms: p.rms, toneDb: db(tone) - db(elsewhere) }];
        }),
      );
    },
    { ms, hz },
  );
}

/** Waits for the room view; a join that failed says why in #join-message. */
export async function joined(page: Page): Promise<void> {
  const state = await until(
    'the room view',
    () => page.evaluate(() => ({ room: !document.getElementById('room-view')!.hidden, message: document.getElementById('join-message')!.textContent })),
    (v) => v.room || (v.message ?? '').startsWith('Could not join'),
    15_000,
  );
  if (!state.room) throw new Error(state.message ?? 'join failed');
}

export async function until<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let value = await probe();
  while (!ok(value)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 150));
    value = await probe();
  }
  return value;
}

