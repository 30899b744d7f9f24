import { readdir, readFile, stat } from 'node:fs/promises';
import { VoxError } from '../errors.ts';
import type { RecordingBucket } from './bucket.ts';
import {
  RECORDING_EXTRA_SHAPE,
  RECORDING_FILE_SHAPE,
  RECORDING_ID_SHAPE,
  recordingPaths,
  type RecordingContinuation,
  type RecordingManifest,
  type RecordingSegment,
} from './layout.ts';

/**
 * The recordings as the HTTP side reads them (the workers write them, recorder.ts), in the layout
 * of layout.ts: from the local folder (`recording.storage` local), or from the local folder and the
 * bucket together (s3: what is still local on this node, everything uploaded by any node). Ids and
 * file names are checked against the layout's shapes before they touch a path or a key, so a
 * request can never leave the folder or the prefix.
 */

/** Where a file is: on this node's disk (streamed) or in the bucket (a signed link, redirected to). */
export type FoundRecordingFile = { roomId: string; path: string; url?: undefined } | { roomId: string; url: string; path?: undefined };

/** What the /recordings routes read (routes.ts). */
export interface RecordingStore {
  /** A room's recordings, newest first. */
  list(roomId: string): Promise<StoredRecording[]>;
  /** One file of a recording (audio or an extra); RECORDING_NOT_FOUND when there is no such file. */
  find(id: string, file: string): Promise<FoundRecordingFile>;
}

export interface StoredFile {
  participantId: string;
  /** Whose voice (token `sub`, display name); null for the room mix and for recordings made before names were kept. */
  userId: string | null;
  name: string | null;
  file: string;
  /** Bytes on disk now (a running recording grows). */
  bytes: number;
  /** Audio length the manifest last recorded (updated at flushes and on stop), ms. */
  durationMs: number;
  /** Segment of the recording (0 unless it rolls into segments) and where the file starts in it, ms. */
  segment: number;
  offsetMs: number;
}

export interface StoredRecording {
  id: string;
  roomId: string;
  startedBy: string;
  startedAt: number;
  stoppedBy: string | null;
  /** null while running, or when the worker died before it could stop it. */
  stoppedAt: number | null;
  files: StoredFile[];
  segments: RecordingSegment[];
  /** Files added beside it (transcripts: `01-alice.vtt`, `01-alice.json`), downloaded like the others. */
  extras: string[];
  /** The recording this one continues (a room that moved node or worker): docs/recording.md "Continued recordings". */
  continues?: RecordingContinuation;
}

async function readManifest(dir: string, id: string): Promise<RecordingManifest | null> {
  try {
    const manifest = JSON.parse(await readFile(recordingPaths.manifest(dir, id), 'utf8')) as RecordingManifest;
    return manifest.id === id && typeof manifest.roomId === 'string' && Array.isArray(manifest.files) ? manifest : null;
  } catch {
    return null;
  }
}

/** Local file names beside a recording that have the extras' shape. */
async function localExtras(dir: string, id: string): Promise<string[]> {
  try {
    return (await readdir(recordingPaths.folder(dir, id))).filter((f) => RECORDING_EXTRA_SHAPE.test(f));
  } catch {
    return [];
  }
}

/**
 * A manifest as listed. `bucket`: the bucket's copy of the same recording (s3), which lists the
 * files already uploaded (and perhaps removed here) and the extras uploaded beside it.
 */
async function describe(dir: string | null, manifest: RecordingManifest, bucket: RecordingManifest | null = null): Promise<StoredRecording> {
  const uploaded = new Map((bucket?.files ?? []).map((f) => [f.file, f.bytes]));
  const all = [...manifest.files, ...(bucket?.files ?? []).filter((b) => !manifest.files.some((f) => f.file === b.file))];
  const files = await Promise.all(
    all.map(async (f) => {
      const local = dir === null ? null : await stat(recordingPaths.file(dir, manifest.id, f.file)).then((s) => s.size, () => null);
      const bytes = local ?? uploaded.get(f.file) ?? 0;
      return {
        participantId: f.participantId,
        userId: f.userId ?? null,
        name: f.name ?? null,
        file: f.file,
        bytes,
        durationMs: Math.round(f.samples / 48),
        segment: f.segment ?? 0,
        offsetMs: Math.round((f.offsetSamples ?? 0) / 48),
      };
    }),
  );
  const extras = new Set([...(dir === null ? [] : await localExtras(dir, manifest.id)), ...(bucket?.extras ?? [])]);
  const { id, roomId, startedBy, startedAt, stoppedBy, stoppedAt } = manifest;
  const segments = manifest.segments ?? [{ index: 0, startSample: 0, endSample: null }];
  return {
    id,
    roomId,
    startedBy,
    startedAt,
    stoppedBy,
    stoppedAt,
    files,
    segments,
    extras: [...extras].sort(),
    ...(manifest.continues === undefined ? {} : { continues: manifest.continues }),
  };
}

/** Ids of the recordings in the local folder (a missing folder has none). */
async function localIds(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && RECORDING_ID_SHAPE.test(e.name)).map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The recordings of one room, newest first. A missing folder is an empty list. */
export async function listRecordings(dir: string, roomId: string): Promise<StoredRecording[]> {
  const ids = await localIds(dir);
  const manifests = await Promise.all(ids.map((id) => readManifest(dir, id)));
  const mine = manifests.filter((m): m is RecordingManifest => m !== null && m.roomId === roomId);
  mine.sort((a, b) => b.startedAt - a.startedAt);
  return Promise.all(mine.map((m) => describe(dir, m)));
}

/** One file of a recording: its room (for the grant check) and path. RECORDING_NOT_FOUND otherwise. */
export async function findRecordingFile(dir: string, id: string, file: string): Promise<{ roomId: string; path: string }> {
  if (!RECORDING_ID_SHAPE.test(id) || !isRecordingFileName(file)) throw notFound();
  const manifest = await readManifest(dir, id);
  if (manifest === null) throw notFound();
  if (manifest.files.some((f) => f.file === file)) return { roomId: manifest.roomId, path: recordingPaths.file(dir, id, file) };
  // An extra (transcript) is listed by being there.
  const path = recordingPaths.file(dir, id, file);
  if (RECORDING_EXTRA_SHAPE.test(file) && (await stat(path).then((s) => s.isFile(), () => false))) return { roomId: manifest.roomId, path };
  throw notFound();
}

function isRecordingFileName(file: string): boolean {
  return RECORDING_FILE_SHAPE.test(file) || RECORDING_EXTRA_SHAPE.test(file);
}

function notFound(): VoxError {
  return new VoxError('RECORDING_NOT_FOUND', 'no such recording file');
}

/** The local folder only (`recording.storage` local). */
export function localRecordingStore(dir: string): RecordingStore {
  return { list: (roomId) => listRecordings(dir, roomId), find: (id, file) => findRecordingFile(dir, id, file) };
}

export interface BucketStoreOptions {
  /** This node's recordings folder (recordings not yet uploaded, or kept by retention, are served from it). */
  dir: string;
  bucket: RecordingBucket;
  /** How long a download link is valid, seconds. */
  linkSeconds: number;
}

/**
 * The local folder and the bucket together (`recording.storage` s3): a recording is listed from
 * its local manifest and the bucket's copy merged, so one still being written here and one
 * uploaded by another node both show. A file on this node's disk is streamed from it; one that is
 * only in the bucket is a signed link (routes.ts redirects to it).
 */
export function bucketRecordingStore(options: BucketStoreOptions): RecordingStore {
  const { dir, bucket, linkSeconds } = options;
  return {
    list: (roomId) => unavailableOnError(list(roomId)),
    find: (id, file) => unavailableOnError(find(id, file)),
  };

  async function list(roomId: string): Promise<StoredRecording[]> {
    {
      const [local, remoteIds] = await Promise.all([localIds(dir), bucket.listRoom(roomId)]);
      const ids = [...new Set([...local, ...remoteIds])];
      const described = await Promise.all(
        ids.map(async (id) => {
          const [mine, theirs] = await Promise.all([readManifest(dir, id), remoteIds.includes(id) ? bucket.getManifest(id) : null]);
          const manifest = mine ?? theirs;
          if (manifest === null || manifest.roomId !== roomId || (theirs !== null && theirs.roomId !== roomId)) return null;
          return describe(mine === null ? null : dir, manifest, theirs);
        }),
      );
      const recordings = described.filter((r): r is StoredRecording => r !== null);
      recordings.sort((a, b) => b.startedAt - a.startedAt);
      return recordings;
    }
  }

  async function find(id: string, file: string): Promise<FoundRecordingFile> {
    {
      if (!RECORDING_ID_SHAPE.test(id) || !isRecordingFileName(file)) throw notFound();
      try {
        const here = await findRecordingFile(dir, id, file);
        if (await stat(here.path).then((s) => s.isFile(), () => false)) return here;
      } catch (error) {
        if (!(error instanceof VoxError && error.code === 'RECORDING_NOT_FOUND')) throw error;
      }
      const manifest = await bucket.getManifest(id);
      if (manifest === null || !(manifest.files.some((f) => f.file === file) || (manifest.extras ?? []).includes(file))) throw notFound();
      return { roomId: manifest.roomId, url: await bucket.signedUrl(id, file, `${id}-${file}`, linkSeconds) };
    }
  }
}

/** The bucket's failures (down, refused credentials, timeouts) as RECORDING_STORAGE_UNAVAILABLE; our own errors as they are. */
async function unavailableOnError<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof VoxError) throw error;
    throw new VoxError('RECORDING_STORAGE_UNAVAILABLE', `the recordings bucket did not answer: ${(error as Error).message}`, { cause: error });
  }
}
