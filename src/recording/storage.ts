import { recordingDirOf, type VoxConfig } from '../config.ts';
import type { ServerObserver } from '../signalling/observer.ts';
import { RecordingBucket, type RecordingBucketOptions } from './bucket.ts';
import { bucketRecordingStore, localRecordingStore, type RecordingStore } from './store.ts';
import { RecordingUploader } from './uploader.ts';

/**
 * The recording storage backend the config asks for (`recording.storage`, docs/recording.md
 * "Storage"): `local` reads the recordings folder; `s3` reads the folder and the bucket and
 * uploads the folder to the bucket.
 */

export interface RecordingStorage {
  /** What the /recordings routes read. */
  readonly store: RecordingStore;
  /** s3 only: the uploader (its `uploadFile` and `retain` are for files added beside a finished recording). */
  readonly uploader: RecordingUploader | null;
  /** Starts uploading (s3); `observer` gets `recording_uploaded` and starts a scan on every `recording_stopped`. */
  start(observer?: ServerObserver): void;
  close(): Promise<void>;
}

/** The bucket of `recording.s3` (credentials from the environment unless given). */
export function recordingBucketFromConfig(config: Pick<VoxConfig, 'recording'>, credentials?: RecordingBucketOptions['credentials']): RecordingBucket {
  const s3 = config.recording.s3;
  if (s3.bucket === undefined) throw new Error('recording.s3.bucket is not set');
  return new RecordingBucket({
    bucket: s3.bucket,
    prefix: s3.prefix.replace(/^\/+|\/+$/g, ''),
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    partBytes: s3.partMiB * 1024 * 1024,
    ...(s3.endpoint === undefined ? {} : { endpoint: s3.endpoint }),
    ...(s3.publicEndpoint === undefined ? {} : { publicEndpoint: s3.publicEndpoint }),
    ...(credentials === undefined ? {} : { credentials }),
  });
}

/** The storage of a config; undefined when recording is off. */
export function createRecordingStorage(
  config: Pick<VoxConfig, 'recording' | 'dataDir'>,
  options: { credentials?: RecordingBucketOptions['credentials']; scanMs?: number } = {},
): RecordingStorage | undefined {
  const dir = recordingDirOf(config);
  if (dir === undefined) return undefined;
  if (config.recording.storage === 'local') {
    return { store: localRecordingStore(dir), uploader: null, start: () => undefined, close: async () => undefined };
  }
  const bucket = recordingBucketFromConfig(config, options.credentials);
  const store = bucketRecordingStore({ dir, bucket, linkSeconds: config.recording.s3.linkSeconds });
  let uploader: RecordingUploader | null = null;
  return {
    store,
    get uploader() {
      return uploader;
    },
    start(observer) {
      uploader ??= new RecordingUploader({
        dir,
        bucket,
        keepLocalMs: config.recording.keepLocalSeconds * 1000,
        ...(observer === undefined ? {} : { observer }),
        ...(options.scanMs === undefined ? {} : { scanMs: options.scanMs }),
      });
      uploader.start();
    },
    async close() {
      await uploader?.close();
      bucket.close();
    },
  };
}

/** The /recordings store of a config (routes.ts default when none is given). */
export function recordingStoreFromConfig(config: Pick<VoxConfig, 'recording'>, dir: string): RecordingStore {
  if (config.recording.storage === 'local') return localRecordingStore(dir);
  return bucketRecordingStore({ dir, bucket: recordingBucketFromConfig(config), linkSeconds: config.recording.s3.linkSeconds });
}
