import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OggOpusWriter } from '../../src/codec/ogg.ts';
import { OpusEncoder } from '../../src/codec/opus.ts';
import type { RecordingManifest } from '../../src/recording/layout.ts';
import { ServerObserver, type TranscriptReady } from '../../src/signalling/observer.ts';
import { Transcriber, type TranscriptDocument, type TranscriptWritten } from '../../src/transcription/index.ts';

/**
 * The Transcriber on a recording folder in the recorder's layout (Ogg Opus written by our writer
 * from our encoder): `recording_stopped` starts one piscina job per track on its own threads; the
 * job decodes with the Opus wasm at 16 kHz and runs a real `command` recognizer process (a Node
 * script that reports the rate, channels and level of what it got); times land at the track's
 * manifest offset; a failing track is counted, the others are written; the mix is skipped.
 */

const recognizer = fileURLToPath(new URL('./fixtures/recognizer.mjs', import.meta.url));
const ID = 'mi9x2k3a-5f1e0c9b7a2d';

/** `seconds` of a 0.3-amplitude 440 Hz tone as Ogg Opus (20 ms packets at 48 kHz). */
function toneOpus(seconds: number): Buffer {
  const pages: Uint8Array[] = [];
  const writer = new OggOpusWriter((page) => pages.push(page.slice()), { channels: 1, preSkip: 312 });
  const encoder = new OpusEncoder({ sampleRate: 48000, channels: 1, bitrate: 32000 });
  const frame = new Float32Array(960);
  let n = 0;
  for (let f = 0; f < seconds * 50; f++) {
    for (let i = 0; i < 960; i++, n++) frame[i] = 0.3 * Math.sin((2 * Math.PI * 440 * n) / 48000);
    writer.write(encoder.encode(frame));
  }
  writer.end();
  encoder.close();
  return Buffer.concat(pages);
}

describe('Transcriber (piscina jobs, command engine, real files)', () => {
  let dir: string;
  let transcriber: Transcriber;
  const observer = new ServerObserver();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'voxlink-transcriber-'));
    mkdirSync(join(dir, ID));
    const file = (participantId: string, name: string | null, f: string, seconds: number, offsetMs?: number) => {
      writeFileSync(join(dir, ID, f), toneOpus(seconds));
      return { participantId, userId: name && name.toLowerCase(), name, file: f, samples: seconds * 48000, packets: seconds * 50, bytes: 0, ...(offsetMs ? { offsetMs } : {}) };
    };
    const manifest: RecordingManifest = {
      id: ID,
      roomId: 'room-1',
      startedBy: 'p-ann',
      stoppedBy: 'p-ann',
      startedAt: 1_796_400_000_000,
      stoppedAt: 1_796_400_004_000,
      files: [file('~mix', null, '00-mix.opus', 2), file('p-ann', 'Ann', '01-ann.opus', 2, 1500), file('p-bo', 'Bo', '02-bo.opus', 1)],
    };
    writeFileSync(join(dir, ID, 'manifest.json'), JSON.stringify(manifest));
    transcriber = new Transcriber({ recordingDir: dir, engine: { engine: 'command', argv: [process.execPath, recognizer, 'short-fails'] }, workers: 2 });
  });

  afterAll(async () => {
    await transcriber?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('transcribes each participant track on recording_stopped, at its offset; counts the failed one; tells observer, room and hook', async () => {
    const ready: TranscriptReady[] = [];
    const announced: TranscriptReady[] = [];
    const written: TranscriptWritten[] = [];
    observer.on('transcript_ready', (e) => ready.push(e));
    transcriber.attach(observer, (e) => announced.push(e));
    transcriber.onTranscript((w) => void written.push(w));

    observer.emit('recording_stopped', { roomId: 'room-1', recordingId: ID, reason: 'stopped', stoppedBy: 'p-ann' });
    await transcriber.idle();

    expect(ready).toHaveLength(1);
    expect(ready[0]).toEqual({
      roomId: 'room-1',
      recordingId: ID,
      tracks: [{ participantId: 'p-ann', name: 'Ann', file: '01-ann.opus', vtt: '01-ann.vtt', json: '01-ann.transcript.json', words: 2 }],
      failed: 1,
    });
    expect(announced).toEqual(ready);
    expect(written[0]!.paths.sort()).toEqual([join(dir, ID, '01-ann.transcript.json'), join(dir, ID, '01-ann.vtt')]);

    const doc = JSON.parse(readFileSync(join(dir, ID, '01-ann.transcript.json'), 'utf8')) as TranscriptDocument;
    expect(doc).toMatchObject({ recordingId: ID, roomId: 'room-1', participantId: 'p-ann', userId: 'ann', speaker: 'Ann', engine: 'command', offset: 1.5 });
    // 2 s at 16 kHz less the 104-sample pre-skip.
    expect(doc.duration).toBeCloseTo(2 - 104 / 16000, 3);
    // The recognizer got 16 kHz mono with the tone's level (0.3 amplitude → RMS ≈ 0.21), not zeros.
    expect(doc.segments[0]).toMatchObject({ start: 2, end: 2.75, speaker: 'Ann', text: 'rate 16000 channels 1' });
    expect(doc.segments[0]!.words).toEqual([
      { word: 'rate', start: 2, end: 2.3, confidence: 0.9 },
      { word: '16000', start: 2.3, end: 2.75 },
    ]);
    const rms = Number(/rms (\S+)/.exec(doc.segments[1]!.text)![1]);
    expect(rms).toBeGreaterThan(0.18);
    expect(rms).toBeLessThan(0.24);
    // Its end (past the audio) is clamped to the track's end, in recording time.
    expect(doc.segments[1]!.end).toBeCloseTo(1.5 + doc.duration, 2);
    expect(readFileSync(join(dir, ID, '01-ann.vtt'), 'utf8')).toMatch(/^WEBVTT\n\n1\n00:00:02\.000 --> 00:00:02\.750\n<v Ann>rate 16000 channels 1\n/);
  }, 60_000);

  it('a room that closed: waits for the recorder to write the final manifest, then transcribes what it lists', async () => {
    const id = 'mi9x2k3b-000000000001';
    mkdirSync(join(dir, id));
    writeFileSync(join(dir, id, '01-cy.opus'), toneOpus(2));
    const track = { participantId: 'p-cy', userId: 'cy', name: 'Cy', file: '01-cy.opus', samples: 96000, packets: 100, bytes: 0 };
    const running: RecordingManifest = { id, roomId: 'room-2', startedBy: 'p-cy', stoppedBy: null, startedAt: 1, stoppedAt: null, files: [] };
    writeFileSync(join(dir, id, 'manifest.json'), JSON.stringify(running));
    const ready: TranscriptReady[] = [];
    observer.on('transcript_ready', (e) => ready.push(e));
    // Presence says the room closed; the media room is still closing its recorder.
    observer.emit('recording_stopped', { roomId: 'room-2', recordingId: id, reason: 'room_closed' });
    await new Promise((resolve) => setTimeout(resolve, 600));
    writeFileSync(join(dir, id, 'manifest.json'), JSON.stringify({ ...running, stoppedAt: 2, files: [track] }));
    await transcriber.idle();
    expect(ready.filter((e) => e.recordingId === id)).toEqual([
      { roomId: 'room-2', recordingId: id, tracks: [expect.objectContaining({ participantId: 'p-cy', name: 'Cy', words: 2 })], failed: 0 },
    ]);
  }, 60_000);

  it('a recording without a manifest is logged, never thrown', async () => {
    await expect(transcriber.transcribe('nonexistent-0000')).resolves.toBeNull();
  });
});
