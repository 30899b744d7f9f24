export { Transcriber, type TranscriberOptions, type TranscriptAnnouncer, type TranscriptWritten } from './transcriber.ts';
export { createEngine, parsePocketsphinx, type EngineConfig, type RecognizedSegment, type RecognizedWord, type TranscriptionEngine } from './engines.ts';
export { decodeTrack16k, wavFile, TRANSCRIPTION_RATE } from './audio.ts';
export type { TranscriptDocument, TranscriptSegment, TranscriptWord } from './transcript.ts';
