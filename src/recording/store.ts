import { readdir, readFile, stat } from 'node:fs/promises';
import { VoxError } from '../errors.ts';
import { RECORDING_FILE_SHAPE, RECORDING_ID_SHAPE, recordingPaths, type RecordingManifest } from './layout.ts';

/**
 * The recordings folder as the HTTP side reads it (the workers write it, recorder.ts), in the
 * layout of layout.ts. Ids and file names are checked against its shapes before they touch a
 * path, so a request can never leave the folder.
 */

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
}

async function readManifest(dir: string, id: string): Promise<RecordingManifest | null> {
  try {
    const manifest = JSON.parse(await readFile(recordingPaths.manifest(dir, id), 'utf8')) as RecordingManifest;
    return manifest.id === id && typeof manifest.roomId === 'string' && Array.isArray(manifest.files) ? manifest : null;
  } catch {
    return null;
  }
}

async function describe(dir: string, manifest: RecordingManifest): Promise<StoredRecording> {
  const files = await Promise.all(
    manifest.files.map(async (f) => {
      const bytes = await stat(recordingPaths.file(dir, manifest.id, f.file)).then(
        (s) => s.size,
        () => 0,
      );
      return { participantId: f.participantId, userId: f.userId ?? null, name: f.name ?? null, file: f.file, bytes, durationMs: Math.round(f.samples / 48) };
    }),
  );
  const { id, roomId, startedBy, startedAt, stoppedBy, stoppedAt } = manifest;
  return { id, roomId, startedBy, startedAt, stoppedBy, stoppedAt, files };
}

/** The recordings of one room, newest first. A missing folder is an empty list. */
export async function listRecordings(dir: string, roomId: string): Promise<StoredRecording[]> {
  let ids: string[];
  try {
    ids = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && RECORDING_ID_SHAPE.test(e.name)).map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const manifests = await Promise.all(ids.map((id) => readManifest(dir, id)));
  const mine = manifests.filter((m): m is RecordingManifest => m !== null && m.roomId === roomId);
  mine.sort((a, b) => b.startedAt - a.startedAt);
  return Promise.all(mine.map((m) => describe(dir, m)));
}

/** One file of a recording: its room (for the grant check) and path. RECORDING_NOT_FOUND otherwise. */
export async function findRecordingFile(dir: string, id: string, file: string): Promise<{ roomId: string; path: string }> {
  if (!RECORDING_ID_SHAPE.test(id) || !RECORDING_FILE_SHAPE.test(file)) throw new VoxError('RECORDING_NOT_FOUND', 'no such recording file');
  const manifest = await readManifest(dir, id);
  if (manifest === null || !manifest.files.some((f) => f.file === file)) {
    throw new VoxError('RECORDING_NOT_FOUND', 'no such recording file');
  }
  return { roomId: manifest.roomId, path: recordingPaths.file(dir, id, file) };
}
