import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createEngine, parsePocketsphinx, wavFile } from '../../src/transcription/index.ts';
import { toRecordingTime, toWebVtt, type TranscriptDocument } from '../../src/transcription/transcript.ts';

/**
 * The engines' contracts with real processes: the `command` engine runs a real program (a small
 * Node script) with the WAV on stdin and holds it to the documented stdout JSON; failures come back
 * as TRANSCRIPTION_FAILED with the program's own words. pocketsphinx's `-time yes` output is parsed
 * from a captured run; WebVTT escapes what cue text may not hold.
 */

const recognizer = fileURLToPath(new URL('./fixtures/recognizer.mjs', import.meta.url));
const oneSecond = wavFile(new Int16Array(16_000));
const signal = (): AbortSignal => AbortSignal.timeout(20_000);

describe('command engine', () => {
  it('gives the recognizer a 16 kHz mono WAV on stdin and reads its segments and words', async () => {
    const engine = createEngine({ engine: 'command', argv: [process.execPath, recognizer, 'ok'] });
    const segments = await engine.recognize(oneSecond, { signal: signal() });
    expect(segments[0]).toEqual({
      start: 0.5,
      end: 1.25,
      text: 'rate 16000 channels 1',
      words: [
        { word: 'rate', start: 0.5, end: 0.8, confidence: 0.9 },
        { word: '16000', start: 0.8, end: 1.25 },
      ],
    });
    expect(segments[1]).toEqual({ start: 2, end: 6, text: 'rms 0.00 seconds 1.00', words: [] });
  });

  it('a failing, chatty or off-contract recognizer is a clear TRANSCRIPTION_FAILED', async () => {
    const run = (mode: string) => createEngine({ engine: 'command', argv: [process.execPath, recognizer, mode] }).recognize(oneSecond, { signal: signal() });
    await expect(run('fail')).rejects.toMatchObject({ code: 'TRANSCRIPTION_FAILED', message: expect.stringMatching(/exit code 3.*model file not found/) });
    await expect(run('garbage')).rejects.toMatchObject({ code: 'TRANSCRIPTION_FAILED', message: expect.stringMatching(/not JSON/) });
    await expect(run('bad-shape')).rejects.toMatchObject({ code: 'TRANSCRIPTION_FAILED', message: expect.stringMatching(/segments\.0\.start/) });
    await expect(
      createEngine({ engine: 'command', argv: ['/nonexistent/whisper-cli'] }).recognize(oneSecond, { signal: signal() }),
    ).rejects.toMatchObject({ code: 'TRANSCRIPTION_FAILED', message: expect.stringMatching(/ENOENT/) });
  });

  it('a recognizer that hangs is killed at the timeout', async () => {
    const engine = createEngine({ engine: 'command', argv: ['sleep', '30'] });
    const started = Date.now();
    await expect(engine.recognize(oneSecond, { signal: AbortSignal.timeout(300) })).rejects.toMatchObject({ code: 'TRANSCRIPTION_FAILED' });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('pocketsphinx output and transcript formats', () => {
  // Captured from `pocketsphinx_continuous -time yes` on Debian (two utterances).
  const captured = [
    'the world you see that at',
    '<s> 0.880 1.000 0.999100',
    'the 1.010 1.120 0.170741',
    '<sil> 1.130 1.300 0.777067',
    'world 1.310 1.770 0.638041',
    '[NOISE] 1.780 1.940 0.999300',
    'that(2) 2.150 2.320 0.050643',
    '</s> 2.610 3.060 1.000000',
    '<s> 5.800 5.880 0.999400',
    '</s> 5.890 6.000 1.000000',
    'hello',
    '<s> 6.800 6.880 0.999400',
    'hello 6.890 7.300 0.508557',
    '</s> 7.530 7.790 1.000000',
  ].join('\n');

  it('parses utterances into segments, drops fillers and empty utterances, strips pronunciation variants', () => {
    expect(parsePocketsphinx(captured)).toEqual([
      {
        start: 1.01,
        end: 2.32,
        text: 'the world that',
        words: [
          { word: 'the', start: 1.01, end: 1.12, confidence: 0.170741 },
          { word: 'world', start: 1.31, end: 1.77, confidence: 0.638041 },
          { word: 'that', start: 2.15, end: 2.32, confidence: 0.050643 },
        ],
      },
      { start: 6.89, end: 7.3, text: 'hello', words: [{ word: 'hello', start: 6.89, end: 7.3, confidence: 0.508557 }] },
    ]);
  });

  it('places words in recording time (offset) and clamps them to the track; WebVTT escapes cue text and voices', () => {
    const segments = toRecordingTime(parsePocketsphinx(captured), 2.5, 7, 'Ann <Ops> & Co');
    expect(segments[0]!.words[0]).toEqual({ word: 'the', start: 3.51, end: 3.62, confidence: 0.171 });
    // 6.89 s into a 7 s track, 2.5 s offset; the end (7.3) is clamped to the track's end.
    expect(segments[1]).toMatchObject({ start: 9.39, end: 9.5 });
    const doc = { segments: [...segments, { start: 3725.5, end: 3726, speaker: 'x', text: 'a < b', words: [] }] } as unknown as TranscriptDocument;
    expect(toWebVtt(doc)).toBe(
      'WEBVTT\n\n' +
        '1\n00:00:03.510 --> 00:00:04.820\n<v Ann &lt;Ops&gt; &amp; Co>the world that\n\n' +
        '2\n00:00:09.390 --> 00:00:09.500\n<v Ann &lt;Ops&gt; &amp; Co>hello\n\n' +
        '3\n01:02:05.500 --> 01:02:06.000\n<v x>a &lt; b\n',
    );
  });
});
