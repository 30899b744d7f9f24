import { runTranscriptionJob, type TranscriptionJob, type TranscriptionJobResult } from '../src/transcription/job.ts';

/**
 * Piscina entry point of the transcription threads (src/transcription/transcriber.ts): one
 * ordinary task per participant track of a stopped recording. Each thread loads its own Opus
 * wasm instance on first use (src/codec/wasm.ts).
 */
export default function transcribe(job: TranscriptionJob): Promise<TranscriptionJobResult> {
  return runTranscriptionJob(job);
}
