import { readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { logger } from '../log.ts';
import type { ServerObserver } from '../signalling/observer.ts';
import type { RecordingBucket } from './bucket.ts';
import { MANIFEST_FILE, RECORDING_EXTRA_SHAPE, RECORDING_FILE_SHAPE, RECORDING_ID_SHAPE, recordingPaths, type RecordingManifest } from './layout.ts';

const log = logger('recording-uploader');

/**
 * Uploads the recordings folder to the bucket, on the main thread (the workers only write local
 * files; nothing here is on a media path). It works from what is on disk, so a restarted node
 * finds and finishes what it left pending with no state of its own:
 *
 * - A file is uploaded once it will not change: its segment rolled (`complete` in the manifest),
 *   or the recording stopped, or the recording was abandoned (not stopped, manifest untouched for
 *   `abandonAfterMs`: its worker or node died; the files are valid up to their last flush).
 * - Each upload is confirmed (size and checksum, RecordingBucket.putFile); after a failure the
 *   recording waits `retryBaseMs` × 2^attempts (capped at `retryMaxMs`, jittered) before the next try.
 *   A recording this process is writing (`recording_started` on the observer) is never abandoned.
 * - The manifest object is replaced after each new confirmed file and lists only confirmed files,
 *   so whatever a node reads from the bucket can be downloaded.
 * - A stopped recording whose every file and manifest are confirmed is announced once as
 *   `recording_uploaded`.
 * - Local files go only once confirmed, and only `keepLocalMs` after they were last written;
 *   a recording's folder goes when all its files have; `retain(id)` holds them (a transcript job
 *   reading the tracks).
 *
 * Scans run every `scanMs`, at once on `recording_stopped`, and on `scanNow()`, one at a time.
 */

export interface RecordingUploaderOptions {
  /** The recordings folder (config `recording.dir`). */
  dir: string;
  bucket: RecordingBucket;
  /** Keep local copies this long after their last write once confirmed, ms (config `recording.keepLocalSeconds`). */
  keepLocalMs: number;
  /** Server events: `recording_stopped` starts a scan, `recording_uploaded` is emitted here. */
  observer?: ServerObserver;
  scanMs?: number;
  abandonAfterMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

interface Pending {
  /** Confirmed objects of the recording: file → bytes. */
  readonly confirmed: Map<string, number>;
  /** What the manifest object last put listed (null: none yet). */
  manifestPut: string | null;
  attempts: number;
  retryAt: number;
  announced: boolean;
  /** Files written after the folder was finished (transcripts) that were uploaded through `uploadFile`. */
  readonly extras: Set<string>;
}

export interface UploaderStats {
  /** Recordings with files not yet confirmed. */
  pending: number;
  /** Objects and bytes confirmed since start. */
  objects: number;
  bytes: number;
  failures: number;
}

export class RecordingUploader {
  readonly #options: Required<Omit<RecordingUploaderOptions, 'observer'>> & { observer?: ServerObserver };
  readonly #state = new Map<string, Pending>();
  readonly #retained = new Map<string, number>();
  /** Recordings this process's rooms are writing (from the observer): never taken for abandoned. */
  readonly #live = new Set<string>();
  readonly #stats: UploaderStats = { pending: 0, objects: 0, bytes: 0, failures: 0 };
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #unsubscribe: (() => void) | null = null;

  constructor(options: RecordingUploaderOptions) {
    this.#options = { scanMs: 2000, abandonAfterMs: 15_000, retryBaseMs: 1000, retryMaxMs: 60_000, ...options };
  }

  /** Starts scanning (the first scan at once: what a previous run left pending). */
  start(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = setInterval(() => void this.scanNow(), this.#options.scanMs);
    this.#timer.unref();
    const observer = this.#options.observer;
    if (observer !== undefined) {
      const offs = [
        observer.on('recording_started', (e) => void this.#live.add(e.recordingId)),
        observer.on('recording_stopped', (e) => {
          this.#live.delete(e.recordingId);
          void this.scanNow();
        }),
      ];
      this.#unsubscribe = () => offs.forEach((off) => off());
    }
    void this.scanNow();
  }

  get stats(): Readonly<UploaderStats> {
    return this.#stats;
  }

  /** Runs a scan now (or once more after the one running); resolves when it is done. Never rejects. */
  scanNow(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running !== null) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#scan();
        } catch (err) {
          log.error({ err }, 'recording upload scan failed');
        }
      } while (this.#again && !this.#closed);
    })().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /**
   * Keeps recording `id`'s local files (even confirmed ones past `keepLocalMs`) until the returned
   * release is called: for jobs that read them after the recording stopped (transcription).
   */
  retain(id: string): () => void {
    this.#retained.set(id, (this.#retained.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.#retained.get(id) ?? 1) - 1;
      if (n <= 0) this.#retained.delete(id);
      else this.#retained.set(id, n);
    };
  }

  /**
   * Uploads a file written beside a recording after it finished (a transcript, `01-alice.vtt`,
   * RECORDING_EXTRA_SHAPE) and adds it to the manifest object, so every node lists and serves it.
   * Rejects when the name is not that shape or the upload cannot be confirmed (a later scan
   * retries it while the file is still there).
   */
  async uploadFile(id: string, name: string): Promise<void> {
    if (!RECORDING_ID_SHAPE.test(id) || !RECORDING_EXTRA_SHAPE.test(name)) throw new Error(`not a recording's extra file: ${id}/${name}`);
    const pending = this.#pending(id);
    const stored = await this.#options.bucket.putFile(id, name, recordingPaths.file(this.#options.dir, id, name));
    this.#confirm(pending, name, stored.bytes);
    pending.extras.add(name);
    const manifest = await this.#readManifest(id);
    if (manifest !== null) await this.#putManifest(manifest, pending);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    await this.#running;
  }

  #pending(id: string): Pending {
    let pending = this.#state.get(id);
    if (pending === undefined) {
      pending = { confirmed: new Map(), manifestPut: null, attempts: 0, retryAt: 0, announced: false, extras: new Set() };
      this.#state.set(id, pending);
    }
    return pending;
  }

  #confirm(pending: Pending, file: string, bytes: number): void {
    if (pending.confirmed.get(file) === bytes) return;
    pending.confirmed.set(file, bytes);
    this.#stats.objects++;
    this.#stats.bytes += bytes;
  }

  async #readManifest(id: string): Promise<RecordingManifest | null> {
    try {
      const manifest = JSON.parse(await readFile(recordingPaths.manifest(this.#options.dir, id), 'utf8')) as RecordingManifest;
      return manifest.id === id && Array.isArray(manifest.files) ? manifest : null;
    } catch {
      return null;
    }
  }

  async #scan(): Promise<void> {
    const { dir } = this.#options;
    let ids: string[];
    try {
      ids = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && RECORDING_ID_SHAPE.test(e.name)).map((e) => e.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    let pendingCount = 0;
    for (const id of ids) {
      if (this.#closed) return;
      const done = await this.#visit(id).catch((err: unknown) => {
        log.error({ err, recording: id }, 'recording upload: visit failed');
        return false;
      });
      if (!done) pendingCount++;
    }
    for (const id of this.#state.keys()) if (!ids.includes(id)) this.#state.delete(id);
    this.#stats.pending = pendingCount;
  }

  /** One recording's folder: upload what is ready, then clean up what retention allows. True when nothing is left to upload. */
  async #visit(id: string): Promise<boolean> {
    const { dir, bucket } = this.#options;
    const manifestPath = recordingPaths.manifest(dir, id);
    const manifestStat = await stat(manifestPath).catch(() => null);
    const manifest = await this.#readManifest(id);
    if (manifest === null || manifestStat === null) return true;
    const pending = this.#pending(id);
    const now = Date.now();
    const finished = manifest.stoppedAt !== null || (!this.#live.has(id) && now - manifestStat.mtimeMs > this.#options.abandonAfterMs);
    const local = new Set(await readdir(recordingPaths.folder(dir, id)));
    // Files that will not change any more and are not confirmed yet.
    const ready = manifest.files.filter((f) => (f.complete === true || finished) && RECORDING_FILE_SHAPE.test(f.file) && local.has(f.file) && !pending.confirmed.has(f.file)).map((f) => f.file);
    if (finished) {
      // Files written beside it later (transcripts) that nobody uploaded: after a restart, or a failed uploadFile.
      for (const name of local) {
        if (!RECORDING_EXTRA_SHAPE.test(name) || pending.confirmed.has(name)) continue;
        const s = await stat(recordingPaths.file(dir, id, name)).catch(() => null);
        if (s !== null && now - s.mtimeMs > this.#options.abandonAfterMs) ready.push(name);
      }
    }
    if (ready.length > 0 && now >= pending.retryAt) {
      try {
        for (const file of ready) {
          const stored = await bucket.putFile(id, file, recordingPaths.file(dir, id, file));
          this.#confirm(pending, file, stored.bytes);
          if (RECORDING_EXTRA_SHAPE.test(file)) pending.extras.add(file);
        }
        pending.attempts = 0;
      } catch (err) {
        this.#failed(pending, id, err);
      }
    }
    // Files listed but gone locally and never confirmed here (a previous run removed them after confirming them): already in the bucket.
    const missing = manifest.files.filter((f) => !local.has(f.file) && !pending.confirmed.has(f.file));
    for (const f of missing) pending.confirmed.set(f.file, f.bytes);
    const allConfirmed = manifest.files.every((f) => pending.confirmed.has(f.file));
    if (pending.confirmed.size > 0 || finished) {
      try {
        await this.#putManifest(manifest, pending);
      } catch (err) {
        this.#failed(pending, id, err);
        return false;
      }
    }
    const uploaded = finished && allConfirmed && ready.every((f) => pending.confirmed.has(f));
    if (uploaded && !pending.announced) {
      pending.announced = true;
      let bytes = 0;
      for (const f of manifest.files) bytes += pending.confirmed.get(f.file) ?? 0;
      log.info({ recording: id, room: manifest.roomId, objects: manifest.files.length + 1, bytes }, 'recording uploaded');
      this.#options.observer?.emit('recording_uploaded', { roomId: manifest.roomId, recordingId: id, objects: manifest.files.length + 1, bytes });
    }
    await this.#removeLocal(id, manifest, pending, local, uploaded);
    return uploaded;
  }

  async #putManifest(manifest: RecordingManifest, pending: Pending): Promise<void> {
    const files = manifest.files.filter((f) => pending.confirmed.has(f.file));
    const extras = [...pending.extras].sort();
    // A running recording's manifest changes at every flush; the object is replaced only when what it lists does.
    const what = JSON.stringify([files.map((f) => [f.file, f.bytes]), extras, manifest.stoppedAt, manifest.stoppedAt === null ? null : manifest.segments]);
    if (what === pending.manifestPut) return;
    await this.#options.bucket.putManifest({ ...manifest, files, extras });
    pending.manifestPut = what;
  }

  #failed(pending: Pending, id: string, err: unknown): void {
    pending.attempts++;
    this.#stats.failures++;
    const { retryBaseMs, retryMaxMs } = this.#options;
    const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(pending.attempts - 1, 16)) * (0.75 + Math.random() * 0.5);
    pending.retryAt = Date.now() + delay;
    log.warn({ err, recording: id, attempts: pending.attempts, retryInMs: Math.round(delay) }, 'recording upload failed; will retry');
  }

  /** Confirmed files older than the retention go; the folder goes once everything in it is confirmed and gone. */
  async #removeLocal(id: string, manifest: RecordingManifest, pending: Pending, local: Set<string>, uploaded: boolean): Promise<void> {
    if (this.#retained.has(id)) return;
    const { dir, keepLocalMs } = this.#options;
    const now = Date.now();
    let left = 0;
    for (const name of local) {
      if (name === MANIFEST_FILE) continue;
      const path = recordingPaths.file(dir, id, name);
      const s = await stat(path).catch(() => null);
      if (s === null) continue;
      if (!pending.confirmed.has(name) || pending.confirmed.get(name) !== s.size || now - s.mtimeMs < keepLocalMs) {
        left++;
        continue;
      }
      await unlink(path).catch((err: unknown) => log.warn({ err, path }, 'recording: could not remove uploaded file'));
    }
    if (uploaded && left === 0) {
      await rm(recordingPaths.folder(dir, id), { recursive: true, force: true });
      this.#state.delete(id);
    }
  }
}
