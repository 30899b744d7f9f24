import { readFile, rename, writeFile } from 'node:fs/promises';
import { recordingPaths, transcriptFileNames } from '../recording/layout.ts';
import { decodeTrack16k, TRANSCRIPTION_RATE, wavFile } from './audio.ts';
import { createEngine, type EngineConfig } from './engines.ts';
import { toRecordingTime, toWebVtt, type TranscriptDocument } from './transcript.ts';

/**
 * One transcription job: one participant track of a stopped recording, run as a piscina task
 * (workers/transcribe.ts) so decoding and parsing stay off the main thread and the media threads.
 * Reads the track, decodes it to 16 kHz with our Opus wasm, runs the engine, writes
 * `<track>.transcript.json` and `<track>.vtt` beside it (write + rename: never half-written).
 */

export interface TranscriptionJob {
  dir: string;
  recordingId: string;
  roomId: string;
  participantId: string;
  userId: string | null;
  name: string | null;
  file: string;
  /** Where the track starts in the recording, ms. */
  offsetMs: number;
  engine: EngineConfig;
  timeoutMs: number;
}

export interface TranscriptionJobResult {
  vtt: string;
  json: string;
  words: number;
  segments: number;
  durationSec: number;
  /** Wall time of the recognizer alone, ms. */
  recognizeMs: number;
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text, { mode: 0o644 });
  await rename(`${path}.tmp`, path);
}

export async function runTranscriptionJob(job: TranscriptionJob): Promise<TranscriptionJobResult> {
  const pcm = decodeTrack16k(await readFile(recordingPaths.file(job.dir, job.recordingId, job.file)));
  const duration = pcm.length / TRANSCRIPTION_RATE;
  const engine = createEngine(job.engine);
  const started = performance.now();
  // A plain timer, strongly held (an unreferenced AbortSignal.timeout() may be collected before it fires).
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), job.timeoutMs);
  let recognized;
  try {
    recognized = await engine.recognize(wavFile(pcm), { signal: deadline.signal });
  } finally {
    clearTimeout(timer);
  }
  const recognizeMs = Math.round(performance.now() - started);
  const speaker = job.name ?? job.participantId;
  const offset = job.offsetMs / 1000;
  const doc: TranscriptDocument = {
    version: 1,
    recordingId: job.recordingId,
    roomId: job.roomId,
    participantId: job.participantId,
    userId: job.userId,
    speaker,
    file: job.file,
    engine: engine.name,
    offset,
    duration: Math.round(duration * 1000) / 1000,
    segments: toRecordingTime(recognized, offset, duration, speaker),
  };
  const names = transcriptFileNames(job.file);
  await writeAtomically(recordingPaths.file(job.dir, job.recordingId, names.json), `${JSON.stringify(doc, null, 1)}\n`);
  await writeAtomically(recordingPaths.file(job.dir, job.recordingId, names.vtt), toWebVtt(doc));
  return {
    ...names,
    words: doc.segments.reduce((n, s) => n + s.words.length, 0),
    segments: doc.segments.length,
    durationSec: doc.duration,
    recognizeMs,
  };
}
