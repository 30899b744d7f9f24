import { execFileSync } from 'node:child_process';
import type { PcmSource } from '../../src/client/media/pcm-source.ts';

/**
 * Test speech made at test time: espeak-ng's Klatt voice (its formant synthesizer; the default
 * voice's diphone-like output is recognised far worse by pocketsphinx's acoustic model), resampled
 * to 48 kHz by sox. Nothing is downloaded.
 */
export function speak(text: string): Float32Array {
  const wav = execFileSync('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '--stdout', text], { maxBuffer: 1 << 26 });
  const raw = execFileSync('sox', ['-t', 'wav', '-', '-t', 'raw', '-r', '48000', '-c', '1', '-b', '16', '-e', 'signed-integer', '-L', '-'], {
    input: wav,
    maxBuffer: 1 << 26,
  });
  const pcm = new Int16Array(raw.buffer, raw.byteOffset, raw.length >> 1);
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = (pcm[i]! / 32768) * 0.8;
  return out;
}

/**
 * Silence until `start()`, then the clips one after the other with `gapSec` of silence before
 * each, then silence. `onsets` says where each clip starts, seconds after `start()`.
 */
export class ScriptSource implements PcmSource {
  readonly #audio: Float32Array;
  readonly onsets: number[] = [];
  #at = -1;

  constructor(clips: Float32Array[], gapSec: number) {
    const gap = Math.round(gapSec * 48_000);
    const total = clips.reduce((n, c) => n + gap + c.length, 0);
    this.#audio = new Float32Array(total);
    let at = 0;
    for (const clip of clips) {
      at += gap;
      this.onsets.push(at / 48_000);
      this.#audio.set(clip, at);
      at += clip.length;
    }
  }

  get durationSec(): number {
    return this.#audio.length / 48_000;
  }

  get done(): boolean {
    return this.#at >= this.#audio.length;
  }

  start(): void {
    this.#at = 0;
  }

  read(out: Float32Array): void {
    if (this.#at < 0) return void out.fill(0);
    const n = Math.max(0, Math.min(out.length, this.#audio.length - this.#at));
    out.set(this.#audio.subarray(this.#at, this.#at + n));
    out.fill(0, n);
    this.#at += out.length;
  }
}

const words = (text: string): string[] =>
  text
    .toLowerCase()
    .replace(/[^a-z' ]+/g, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0);

/** Word error rate: word-level Levenshtein distance (substitutions + deletions + insertions) / reference words. */
export function wordErrorRate(reference: string, hypothesis: string): { wer: number; errors: number; words: number } {
  const ref = words(reference);
  const hyp = words(hypothesis);
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const row = [i];
    for (let j = 1; j <= hyp.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  const errors = prev[hyp.length]!;
  return { wer: errors / ref.length, errors, words: ref.length };
}
