import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { VoxError } from '../errors.ts';

/**
 * Offline recognizers behind one interface (docs/recording.md "Transcription"). An engine gets
 * one track as a 16 kHz mono 16-bit WAV and returns segments with word times in seconds from the
 * start of that audio. Engines run recognizer processes; nothing is downloaded at run time.
 */

export interface RecognizedWord {
  word: string;
  start: number;
  end: number;
  /** 0…1 where the engine says (pocketsphinx: posterior probability). */
  confidence?: number;
}

export interface RecognizedSegment {
  start: number;
  end: number;
  text: string;
  words: RecognizedWord[];
}

export interface TranscriptionEngine {
  readonly name: string;
  recognize(wav: Buffer, options: { signal: AbortSignal }): Promise<RecognizedSegment[]>;
}

export type EngineConfig =
  | { engine: 'pocketsphinx'; binary: string; modelDir: string }
  | { engine: 'command'; argv: string[] };

export function createEngine(config: EngineConfig): TranscriptionEngine {
  return config.engine === 'pocketsphinx' ? new PocketsphinxEngine(config.binary, config.modelDir) : new CommandEngine(config.argv);
}

/** Largest recognizer output read, bytes: a transcript is ~20 bytes a word. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Runs `argv`, feeds `stdin`, returns stdout; a non-zero exit, a signal or an abort is a TRANSCRIPTION_FAILED. */
function run(argv: readonly string[], stdin: Buffer | null, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [stdin === null ? 'ignore' : 'pipe', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    const out: Buffer[] = [];
    let outBytes = 0;
    let errTail = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_OUTPUT_BYTES) child.kill('SIGKILL');
      else out.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      errTail = (errTail + chunk.toString('utf8')).slice(-2000);
    });
    child.on('error', (err) => reject(new VoxError('TRANSCRIPTION_FAILED', `${argv[0]}: ${err.message}`, { cause: err })));
    child.on('close', (code, killedBy) => {
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      const why = outBytes > MAX_OUTPUT_BYTES ? `wrote more than ${MAX_OUTPUT_BYTES} bytes` : killedBy ? `killed by ${killedBy}` : `exit code ${code}`;
      reject(new VoxError('TRANSCRIPTION_FAILED', `${argv[0]} failed (${why}): ${errTail.trim().split('\n').slice(-3).join(' | ')}`));
    });
    if (stdin !== null) {
      // A recognizer that exits without reading all of stdin is judged by its exit code, not EPIPE.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(stdin);
    }
  });
}

/**
 * Debian's `pocketsphinx_continuous` (package pocketsphinx, model pocketsphinx-en-us): CMU
 * Sphinx's continuous recognizer with the generic US English acoustic model, the 3-gram language
 * model and CMUdict. `-time yes` prints every utterance as
 *
 *     <hypothesis line>
 *     <s> 0.880 1.000 0.999100
 *     word 1.010 1.120 0.170741          (word, start s, end s, posterior)
 *     <sil> 1.130 1.300 0.777067
 *     </s> 2.610 3.060 1.000000
 *
 * with times from the start of the file. Utterances (split by its voice activity detector) become
 * segments; fillers (`<sil>`, `[NOISE]`, `++…++`) are dropped, alternate pronunciations (`that(2)`)
 * lose their suffix. It reads the WAV from a file (`-infile`), written to a private temp folder.
 */
class PocketsphinxEngine implements TranscriptionEngine {
  readonly name = 'pocketsphinx';
  readonly #binary: string;
  readonly #modelDir: string;

  constructor(binary: string, modelDir: string) {
    this.#binary = binary;
    this.#modelDir = modelDir;
  }

  async recognize(wav: Buffer, { signal }: { signal: AbortSignal }): Promise<RecognizedSegment[]> {
    const dir = await mkdtemp(join(tmpdir(), 'voxlink-asr-'));
    try {
      const input = join(dir, 'track.wav');
      await writeFile(input, wav, { mode: 0o600 });
      const m = this.#modelDir;
      const output = await run(
        [
          this.#binary,
          '-infile', input,
          '-hmm', join(m, 'en-us'),
          '-lm', join(m, 'en-us.lm.bin'),
          '-dict', join(m, 'cmudict-en-us.dict'),
          '-samprate', '16000',
          '-time', 'yes',
          '-logfn', '/dev/null',
        ],
        null,
        signal,
      );
      return parsePocketsphinx(output);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

const TIMED_LINE = /^(\S+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/;

export function parsePocketsphinx(output: string): RecognizedSegment[] {
  const segments: RecognizedSegment[] = [];
  let current: RecognizedSegment | null = null;
  for (const line of output.split('\n')) {
    const m = TIMED_LINE.exec(line.trim());
    if (m === null) continue;
    const [, token, start, end, p] = m as unknown as [string, string, string, string, string];
    if (token === '<s>') {
      current = { start: Number(start), end: Number(end), text: '', words: [] };
    } else if (token === '</s>') {
      if (current !== null && current.words.length > 0) {
        current.end = current.words[current.words.length - 1]!.end;
        current.text = current.words.map((w) => w.word).join(' ');
        segments.push(current);
      }
      current = null;
    } else if (current !== null && !/^(<.*>|\[.*\]|\+\+.*\+\+)$/.test(token)) {
      if (current.words.length === 0) current.start = Number(start);
      current.words.push({ word: token.replace(/\(\d+\)$/, ''), start: Number(start), end: Number(end), confidence: Number(p) });
    }
  }
  return segments;
}

/**
 * The `command` engine's stdout contract (docs/recording.md "The command engine"): one JSON
 * document, seconds from the start of the audio given on stdin.
 */
const commandWordSchema = z.object({
  word: z.string().min(1).max(200),
  start: z.number().min(0),
  end: z.number().min(0),
  confidence: z.number().min(0).max(1).optional(),
});
const commandOutputSchema = z.object({
  segments: z
    .array(
      z.object({
        start: z.number().min(0),
        end: z.number().min(0),
        text: z.string().max(100_000),
        words: z.array(commandWordSchema).optional(),
      }),
    )
    .max(1_000_000),
});

/**
 * Any recognizer the operator installs (whisper.cpp with their model, Vosk, a cloud client of
 * their own): `argv` is run once per track, the 16 kHz mono 16-bit WAV arrives on stdin, and
 * stdout carries `{ "segments": [{ "start", "end", "text", "words"?: [{ "word", "start", "end",
 * "confidence"? }] }] }`. A non-zero exit fails the track, with the last lines of stderr logged.
 */
class CommandEngine implements TranscriptionEngine {
  readonly name = 'command';
  readonly #argv: string[];

  constructor(argv: string[]) {
    if (argv.length === 0) throw new VoxError('CONFIG_INVALID', 'transcription.command is empty');
    this.#argv = argv;
  }

  async recognize(wav: Buffer, { signal }: { signal: AbortSignal }): Promise<RecognizedSegment[]> {
    const output = await run(this.#argv, wav, signal);
    let json: unknown;
    try {
      json = JSON.parse(output);
    } catch {
      throw new VoxError('TRANSCRIPTION_FAILED', `${this.#argv[0]}: stdout is not JSON (${JSON.stringify(output.slice(0, 80))}…)`);
    }
    const parsed = commandOutputSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new VoxError('TRANSCRIPTION_FAILED', `${this.#argv[0]}: stdout does not match the contract at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    return parsed.data.segments
      .filter((s) => s.text.trim() !== '' || (s.words?.length ?? 0) > 0)
      .map((s) => ({
        start: s.start,
        end: Math.max(s.start, s.end),
        text: s.text.trim() || (s.words ?? []).map((w) => w.word).join(' '),
        words: (s.words ?? []).map((w) => ({ ...w, end: Math.max(w.start, w.end) })),
      }));
  }
}
