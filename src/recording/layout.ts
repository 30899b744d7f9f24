import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/**
 * The recordings' storage layout, defined once: the recorder (inside a room's worker) writes it,
 * the store (main thread, HTTP) reads it, and a future storage backend (object storage) keys its
 * objects the same way (docs/architecture.md, "Adding a recording storage backend").
 *
 *     <recordings dir>/
 *       <id>/                      one folder per recording; id = base36 ms + 48 random bits
 *         manifest.json            RecordingManifest, replaced whole at every flush and on stop
 *         00-mix.opus              the room as heard (`mix` rooms), participantId `~mix`
 *         01-<name>.opus           one Ogg Opus file per publisher heard, numbered in order, named
 *                                  by a slug of the display name (recordingFileName)
 *         01-<name>.s1.opus        the same publisher in segment 1, 2, … when the recording rolls
 *                                  into segments (`recording.segmentSeconds`, segmentFileName)
 *         01-<name>.vtt / .json    files added beside a finished recording (transcripts):
 *                                  RECORDING_EXTRA_SHAPE, not in the manifest's `files`
 *         01-<name>.vtt            its transcript when transcription is on (transcriptFileNames):
 *         01-<name>.transcript.json  WebVTT and JSON, written after the recording stopped
 *
 * Ids and file names are checked against these shapes before they touch a path, so a request can
 * never leave the folder.
 */

export interface RecordingFile {
  participantId: string;
  /** Whose voice: the token's `sub` and display name (null: the room mix, or unknown to the room). */
  userId: string | null;
  name: string | null;
  /** File name inside the recording's folder. */
  file: string;
  /** 48 kHz samples in the file, gaps included (as of the last flush or the stop). */
  samples: number;
  packets: number;
  bytes: number;
  /** Which segment of the recording this file is (0 for the first; older manifests lack it: 0). */
  segment?: number;
  /** Where the file starts on the recording's timeline, 48 kHz samples (its segment's start). */
  offsetSamples?: number;
  /** The file is ended and closed (its segment rolled over, or the recording stopped): it will not change again. */
  complete?: boolean;
}

/** One segment: every file of segment `index` spans [startSample, endSample) of the recording. */
export interface RecordingSegment {
  index: number;
  startSample: number;
  /** null while the segment is being written. */
  endSample: number | null;
}

/** Someone heard in the recording, in the order first heard (the number in their file names). */
export interface RecordingParticipant {
  participantId: string;
  userId: string | null;
  name: string | null;
  /** The `<nn>` of their files. */
  index: number;
}

export interface RecordingManifest {
  id: string;
  roomId: string;
  /** Who started and stopped it (participant ids). */
  startedBy: string;
  stoppedBy: string | null;
  /** Milliseconds since the Unix epoch. */
  startedAt: number;
  stoppedAt: number | null;
  /** Every file of every segment, in the order opened. */
  files: RecordingFile[];
  /** Segment length the recording rolls at, ms (null: one segment). Older manifests lack the next three. */
  segmentMs?: number | null;
  segments?: RecordingSegment[];
  participants?: RecordingParticipant[];
  /** In the bucket's copy only: files added beside the finished recording (transcripts), RECORDING_EXTRA_SHAPE. */
  extras?: string[];
  /**
   * Set when this recording continues another one of the same call, started anew because the room
   * moved (a cluster node died or drained, a media worker died): docs/recording.md "Continued recordings".
   */
  continues?: RecordingContinuation;
}

/** Which recording a continued one follows, and where it stands in the chain. */
export interface RecordingContinuation {
  /** The recording this one follows (the part before it). */
  previous: string;
  /** The chain's first recording (equal to `previous` for part 1). */
  first: string;
  /** This recording's place in the chain: 1 for the first continuation. */
  part: number;
  /** Why it was started anew: the room moved to another node, or its media worker was replaced. */
  reason: 'room_moved' | 'worker_replaced';
  /** The node the previous part was recorded on (cluster moves; absent for a worker replacement). */
  node?: string;
}

/** What a recording id looks like (and all a path segment from a request may look like). */
export const RECORDING_ID_SHAPE = /^[A-Za-z0-9_-]{8,64}$/;
/** What a recording's audio file name looks like. */
export const RECORDING_FILE_SHAPE = /^[0-9]{2,}-[A-Za-z0-9._-]{1,48}\.opus$/;
/**
 * What a file added beside a finished recording looks like (transcripts: `01-alice.vtt`,
 * `01-alice.json`): listed and downloaded with the recording, uploaded by the storage backend's
 * `uploadFile`, never in the manifest's `files`.
 */
export const RECORDING_EXTRA_SHAPE = /^[0-9]{2,}-[A-Za-z0-9._-]{1,48}\.(vtt|json)$/;
/** The manifest's name inside a recording's folder. */
export const MANIFEST_FILE = 'manifest.json';
/** The manifest's participantId of the room-mix file (no real participant id has a `~`). */
export const MIX_TRACK = '~mix';
const MIX_FILE = '00-mix.opus';

/** A new recording id: sortable by start time, unguessable (base36 milliseconds plus 48 random bits). */
export function newRecordingId(now = Date.now()): string {
  return `${now.toString(36)}-${randomBytes(6).toString('hex')}`;
}

/** The longest slug a file name carries (the whole name stays within RECORDING_FILE_SHAPE). */
const MAX_SLUG = 40;

/**
 * A participant's file name: the index (which keeps names unique within the recording) and a slug
 * of the display name, e.g. `01-alice-smith.opus`. The slug is ASCII only (accents folded:
 * "José" → `jose`), lower case, `a-z0-9` joined by single `-`, at most 40 characters; a name with
 * nothing left (emoji, `../`, another script) falls back to the participant id, sanitised the same
 * way. So a name can never make a path, a hidden file or an over-long name.
 */
export function recordingFileName(index: number, participantId: string, name?: string | null): string {
  if (participantId === MIX_TRACK) return MIX_FILE;
  const slug = slugify(name ?? '') || slugify(participantId) || 'participant';
  return `${String(index).padStart(2, '0')}-${slug}.opus`;
}

/** The file of segment `segment` (0: the plain name, `01-alice.opus`; n: `01-alice.s<n>.opus`). */
export function segmentFileName(file: string, segment: number): string {
  return segment === 0 ? file : file.replace(/\.opus$/, `.s${segment}.opus`);
}

/** The media type a recording's file is served with. */
export function recordingContentType(file: string): string {
  if (file.endsWith('.opus')) return 'audio/ogg; codecs=opus';
  if (file.endsWith('.vtt')) return 'text/vtt; charset=utf-8';
  return 'application/json';
}

function slugify(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, MAX_SLUG)
    .replace(/^-+|-+$/g, '');
}

/** Local-disk paths of the layout under the recordings folder `dir`. */
export const recordingPaths = {
  folder: (dir: string, id: string): string => join(dir, id),
  manifest: (dir: string, id: string): string => join(dir, id, MANIFEST_FILE),
  file: (dir: string, id: string, file: string): string => join(dir, id, file),
};

/** The transcript files of an audio file of the layout: `01-alice.opus` → `01-alice.vtt`, `01-alice.transcript.json`. */
export function transcriptFileNames(file: string): { vtt: string; json: string } {
  const base = file.replace(/\.opus$/, '');
  return { vtt: `${base}.vtt`, json: `${base}.transcript.json` };
}
