import type { RecognizedSegment } from './engines.ts';

/**
 * A track's transcript in the two forms written beside it (docs/recording.md "Transcription"):
 * JSON for programs and WebVTT (W3C WebVTT, a `<v Speaker>` voice span per cue) for players.
 * Times are seconds from the recording's start: the engine's times plus the track's offset.
 */

export interface TranscriptWord {
  word: string;
  start: number;
  end: number;
  confidence?: number;
}

export interface TranscriptSegment {
  start: number;
  end: number;
  speaker: string;
  text: string;
  words: TranscriptWord[];
}

export interface TranscriptDocument {
  version: 1;
  recordingId: string;
  roomId: string;
  participantId: string;
  userId: string | null;
  /** The participant's display name (the participant id when the manifest has none). */
  speaker: string;
  /** The audio file it transcribes, in the same folder. */
  file: string;
  engine: string;
  /** Where the track starts in the recording, seconds (0: the recorder starts every file at the recording's start). */
  offset: number;
  /** Decoded audio length, seconds. */
  duration: number;
  segments: TranscriptSegment[];
}

/** Milliseconds precision is what both formats carry. */
const ms = (seconds: number): number => Math.round(seconds * 1000) / 1000;

/** Engine output (seconds in the track) → segments in the recording's time, clamped to the track. */
export function toRecordingTime(segments: RecognizedSegment[], offset: number, duration: number, speaker: string): TranscriptSegment[] {
  const at = (t: number): number => ms(offset + Math.min(Math.max(t, 0), duration));
  return segments.map((s) => ({
    start: at(s.start),
    end: at(Math.max(s.start, s.end)),
    speaker,
    text: s.text,
    words: s.words.map((w) => ({ word: w.word, start: at(w.start), end: at(Math.max(w.start, w.end)), ...(w.confidence === undefined ? {} : { confidence: ms(w.confidence) }) })),
  }));
}

function timestamp(seconds: number): string {
  const total = Math.round(seconds * 1000);
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor(total / 60_000) % 60;
  const s = Math.floor(total / 1000) % 60;
  const frac = total % 1000;
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(frac).padStart(3, '0')}`;
}

/** WebVTT cue text escapes `&`, `<`, `>` (W3C WebVTT §4.2.2); a voice annotation may not hold `>` or a line break. */
const escapeText = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeVoice = (name: string): string => escapeText(name.replace(/[\r\n]+/g, ' '));

export function toWebVtt(doc: TranscriptDocument): string {
  const cues = doc.segments.map((s, i) => `${i + 1}\n${timestamp(s.start)} --> ${timestamp(Math.max(s.end, s.start + 0.001))}\n<v ${escapeVoice(s.speaker)}>${escapeText(s.text)}`);
  return `WEBVTT\n\n${cues.join('\n\n')}${cues.length > 0 ? '\n' : ''}`;
}
