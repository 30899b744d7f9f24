import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { logger } from '../log.ts';
import { MIX_TRACK, recordingPaths, type RecordingManifest } from '../recording/layout.ts';
import type { ServerObserver, TranscriptReady, TranscriptTrack } from '../signalling/observer.ts';
import type { EngineConfig } from './engines.ts';
import type { TranscriptionJob, TranscriptionJobResult } from './job.ts';

/**
 * Offline transcription of stopped recordings (docs/recording.md "Transcription"), on the main
 * thread only as a dispatcher: when the observer reports `recording_stopped`, it reads the
 * recording's manifest and runs one piscina task per participant track on its own small pool
 * (workers/transcribe.ts; never the media threads). When every track is done it emits
 * `transcript_ready` on the observer (webhooks pick it up), tells the room if it is still live,
 * and calls the `onTranscript` listeners with the files' paths (the hook a storage uploader uses
 * to upload transcripts like any other file of the recording).
 */

export interface TranscriberOptions {
  /** The local recordings folder (config `recording.dir`). */
  recordingDir: string;
  engine: EngineConfig;
  /** Threads (piscina min = max is not needed: idle threads go after 30 s). Default 1. */
  workers?: number;
  /** One track's recognizer run, s. Default 3600. */
  timeoutSec?: number;
  /** Transcribe `00-mix.opus` too. Default false. */
  includeMix?: boolean;
  /** Worker entry; default workers/transcribe.ts of this checkout (dist/workers/transcribe.js in the bundle). */
  filename?: string;
}

/** What `onTranscript` listeners get: the event plus the absolute paths of the files written. */
export interface TranscriptWritten extends TranscriptReady {
  paths: string[];
}

/** Tells a live room that its recording's transcript is ready (the composition root passes the signalling core's). */
export type TranscriptAnnouncer = (event: TranscriptReady) => void;

const log = logger('transcription');
/** How long a room that closed may take to finish its recording's files. */
const FINAL_MANIFEST_WAIT_MS = 30_000;

const defaultFilename = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../../workers/transcribe.ts' : '../workers/transcribe.js', import.meta.url),
);

export class Transcriber {
  readonly #options: Required<Omit<TranscriberOptions, 'filename'>>;
  readonly #pool: Piscina<TranscriptionJob, TranscriptionJobResult>;
  readonly #listeners = new Set<(written: TranscriptWritten) => void | Promise<void>>();
  readonly #running = new Set<Promise<unknown>>();
  #observer: ServerObserver | null = null;
  #announce: TranscriptAnnouncer | null = null;
  #off: (() => void) | null = null;
  #closed = false;

  constructor(options: TranscriberOptions) {
    this.#options = { workers: 1, timeoutSec: 3600, includeMix: false, ...options };
    const filename = options.filename ?? defaultFilename;
    this.#pool = new Piscina<TranscriptionJob, TranscriptionJobResult>({
      filename,
      execArgv: filename.endsWith('.ts') ? ['--import', 'tsx'] : undefined,
      minThreads: 0,
      maxThreads: this.#options.workers,
      idleTimeout: 30_000,
    });
    this.#pool.on('error', (err: unknown) => log.error({ err }, 'transcription thread error'));
  }

  /** Transcribes every recording the observer reports stopped; `announce` tells live rooms. */
  attach(observer: ServerObserver, announce?: TranscriptAnnouncer): this {
    this.#off?.();
    this.#observer = observer;
    this.#announce = announce ?? null;
    // `stopped` comes after the worker finished the files; `room_closed` as presence empties, while the
    // media room is still closing its recorder: wait for the final manifest. `lost` and `replaced`
    // recordings died with their worker: their manifest never gets a stop, take it as it is.
    this.#off = observer.on('recording_stopped', (e) =>
      void this.transcribe(e.recordingId, { waitForStopMs: e.reason === 'stopped' || e.reason === 'room_closed' ? FINAL_MANIFEST_WAIT_MS : 0 }),
    );
    return this;
  }

  /** The storage uploader's hook: called once per transcribed recording with the files written. Returns the unsubscribe. */
  onTranscript(listener: (written: TranscriptWritten) => void | Promise<void>): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * Transcribes one recording; resolves with what `transcript_ready` said (null: nothing to do).
   * Never rejects. `waitForStopMs`: wait up to this long for the manifest to record the stop.
   */
  transcribe(recordingId: string, options: { waitForStopMs?: number } = {}): Promise<TranscriptReady | null> {
    const run = this.#transcribe(recordingId, options.waitForStopMs ?? 0).catch((err: unknown) => {
      log.error({ err, recordingId }, 'transcription failed');
      return null;
    });
    this.#running.add(run);
    void run.finally(() => this.#running.delete(run));
    return run;
  }

  /** Resolves when every transcription started so far has finished. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /** Stops listening and ends the threads (running recognizers are abandoned). Idempotent. */
  async close(): Promise<void> {
    this.#off?.();
    this.#off = null;
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
  }

  async #readManifest(recordingId: string, waitForStopMs: number): Promise<RecordingManifest> {
    const deadline = Date.now() + waitForStopMs;
    for (;;) {
      const manifest = JSON.parse(await readFile(recordingPaths.manifest(this.#options.recordingDir, recordingId), 'utf8')) as RecordingManifest;
      if (manifest.stoppedAt !== null || Date.now() >= deadline || this.#closed) return manifest;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async #transcribe(recordingId: string, waitForStopMs: number): Promise<TranscriptReady | null> {
    if (this.#closed) return null;
    const dir = this.#options.recordingDir;
    const manifest = await this.#readManifest(recordingId, waitForStopMs);
    if (manifest.stoppedAt === null) log.warn({ recordingId }, 'transcribing a recording that never recorded its stop (its worker died): as far as it was flushed');
    const files = manifest.files.filter((f) => f.samples > 0 && (this.#options.includeMix || f.participantId !== MIX_TRACK));
    if (files.length === 0) return null;
    const started = Date.now();
    const results = await Promise.allSettled(
      files.map((f) =>
        this.#pool.run({
          dir,
          recordingId,
          roomId: manifest.roomId,
          participantId: f.participantId,
          userId: f.userId ?? null,
          name: f.name ?? null,
          file: f.file,
          offsetMs: (f as { offsetMs?: number }).offsetMs ?? 0,
          engine: this.#options.engine,
          timeoutMs: this.#options.timeoutSec * 1000,
        }),
      ),
    );
    const tracks: TranscriptTrack[] = [];
    let failed = 0;
    results.forEach((result, i) => {
      const f = files[i]!;
      if (result.status === 'fulfilled') {
        const { vtt, json, words, durationSec, recognizeMs } = result.value;
        tracks.push({ participantId: f.participantId, name: f.name ?? null, file: f.file, vtt, json, words });
        log.info({ recordingId, file: f.file, words, durationSec, recognizeMs }, 'track transcribed');
      } else {
        failed++;
        log.error({ err: result.reason, recordingId, file: f.file }, 'track transcription failed');
      }
    });
    if (this.#closed) return null;
    const event: TranscriptReady = { roomId: manifest.roomId, recordingId, tracks, failed };
    log.info({ recordingId, tracks: tracks.length, failed, ms: Date.now() - started }, 'transcript ready');
    this.#observer?.emit('transcript_ready', event);
    try {
      this.#announce?.(event);
    } catch (err) {
      log.error({ err, recordingId }, 'announcing the transcript failed');
    }
    const paths = tracks.flatMap((t) => [recordingPaths.file(dir, recordingId, t.json), recordingPaths.file(dir, recordingId, t.vtt)]);
    for (const listener of this.#listeners) {
      try {
        await listener({ ...event, paths });
      } catch (err) {
        log.error({ err, recordingId }, 'transcript listener failed');
      }
    }
    return event;
  }
}
