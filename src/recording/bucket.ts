import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { VoxError } from '../errors.ts';
import { MANIFEST_FILE, RECORDING_ID_SHAPE, recordingContentType, type RecordingManifest } from './layout.ts';

/**
 * The recordings' bucket on any S3-compatible service (AWS, MinIO, Ceph, R2, B2, s3rver in the
 * tests), keyed in the layout of layout.ts:
 *
 *     <prefix>/<id>/manifest.json        the recording's manifest, as far as uploaded
 *     <prefix>/<id>/<file>               its Ogg Opus files (and transcripts beside them)
 *     <prefix>/rooms/<room>/<id>         an empty marker per recording, so a room's recordings are one listing
 *
 * `<room>` is the room id in base64url (room ids may hold characters a key should not).
 *
 * Checksums: the SDK's default (a CRC32 trailer on every upload, validation of every download)
 * is turned down to "when required", because several S3-compatible servers reject or mangle the
 * trailer. An upload is confirmed instead by a HEAD after it: the stored size and ETag must be the
 * file's size and its MD5 (a single PUT) or the multipart ETag (MD5 of the parts' MD5s, `-<parts>`),
 * both computed from the local file. (A store whose ETags are not MD5-based, such as AWS with
 * SSE-KMS, never confirms: its files stay local and are retried; docs/recording.md.)
 */

export interface RecordingBucketOptions {
  bucket: string;
  /** Key prefix without a trailing slash ('' for none). */
  prefix: string;
  region: string;
  /** A non-AWS service's URL (`http://minio:9000`); unset: AWS. */
  endpoint?: string;
  /** `http(s)://host/bucket/key` instead of `bucket.host/key` (MinIO, Ceph, s3rver need it). */
  forcePathStyle: boolean;
  /** Endpoint that download links are signed for, when clients reach the service under another name than this server does. */
  publicEndpoint?: string;
  /** Parts of a multipart upload, bytes (≥ 5 MiB, S3's minimum); files up to this size go in one PUT. */
  partBytes: number;
  /** Explicit credentials; unset: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** What a confirmed object is: its size and ETag. */
export interface StoredObject {
  bytes: number;
  etag: string;
}

/** A local file's size, the ETag S3 gives it when uploaded in our parts, and its whole MD5. */
export interface FileChecksum extends StoredObject {
  md5: string;
}

const MIN_PART_BYTES = 5 * 1024 * 1024;

export class RecordingBucket {
  readonly #client: S3Client;
  readonly #signer: S3Client;
  readonly #options: RecordingBucketOptions;

  constructor(options: RecordingBucketOptions) {
    if (options.partBytes < MIN_PART_BYTES) throw new VoxError('INVALID_ARGUMENT', `partBytes ${options.partBytes} is under S3's 5 MiB minimum`);
    this.#options = options;
    const config = (endpoint: string | undefined): S3ClientConfig => ({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Retries with backoff are the uploader's; one SDK retry covers a dropped keep-alive socket.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 5000, requestTimeout: 60_000 },
      ...(endpoint === undefined ? {} : { endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    });
    this.#client = new S3Client(config(options.endpoint));
    this.#signer = options.publicEndpoint === undefined ? this.#client : new S3Client(config(options.publicEndpoint));
  }

  get name(): string {
    return this.#options.bucket;
  }

  /** The key of a recording's file (or its manifest). */
  key(id: string, file: string): string {
    const { prefix } = this.#options;
    return `${prefix === '' ? '' : `${prefix}/`}${id}/${file}`;
  }

  #roomPrefix(roomId: string): string {
    const { prefix } = this.#options;
    return `${prefix === '' ? '' : `${prefix}/`}rooms/${Buffer.from(roomId).toString('base64url')}/`;
  }

  /**
   * Makes `<id>/<file>` hold exactly the local file at `path`: nothing is sent when the object is
   * already there with the same size and checksum (a restart resuming its uploads), otherwise it
   * is uploaded (multipart above `partBytes`) and confirmed by a HEAD. Rejects when it cannot be.
   */
  async putFile(id: string, file: string, path: string): Promise<StoredObject> {
    const key = this.key(id, file);
    const expected = await fileChecksum(path, this.#options.partBytes);
    const before = await this.#head(key);
    if (before !== null && matches(before, expected)) return before;
    const params = { Bucket: this.#options.bucket, Key: key, ContentType: recordingContentType(file) };
    if (expected.bytes <= this.#options.partBytes) {
      // One PUT with a known length (a segment of speech is well under a part).
      const body = await readFile(path);
      await this.#client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length }));
    } else {
      const upload = new Upload({ client: this.#client, params: { ...params, Body: createReadStream(path) }, partSize: this.#options.partBytes, queueSize: 2, leavePartsOnError: false });
      await upload.done();
    }
    const after = await this.#head(key);
    if (after === null || !matches(after, expected)) {
      throw new VoxError(
        'RECORDING_FAILED',
        `upload of ${key} not confirmed: stored ${after === null ? 'nothing' : `${after.bytes} bytes, ETag ${after.etag}`}, expected ${expected.bytes} bytes, ETag ${expected.etag}`,
      );
    }
    return after;
  }

  /** Replaces the recording's manifest object and makes sure its room marker exists. */
  async putManifest(manifest: RecordingManifest): Promise<void> {
    const body = Buffer.from(JSON.stringify(manifest, null, 2));
    await this.#client.send(
      new PutObjectCommand({ Bucket: this.#options.bucket, Key: this.key(manifest.id, MANIFEST_FILE), Body: body, ContentLength: body.length, ContentType: 'application/json' }),
    );
    await this.#client.send(
      new PutObjectCommand({ Bucket: this.#options.bucket, Key: `${this.#roomPrefix(manifest.roomId)}${manifest.id}`, Body: Buffer.alloc(0), ContentLength: 0 }),
    );
  }

  /** The recording's manifest object, or null when there is none (or it is not a manifest of that id). */
  async getManifest(id: string): Promise<RecordingManifest | null> {
    if (!RECORDING_ID_SHAPE.test(id)) return null;
    try {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#options.bucket, Key: this.key(id, MANIFEST_FILE) }));
      const manifest = JSON.parse((await out.Body?.transformToString('utf8')) ?? '') as RecordingManifest;
      return manifest.id === id && typeof manifest.roomId === 'string' && Array.isArray(manifest.files) ? manifest : null;
    } catch (error) {
      if (isNotFound(error) || error instanceof SyntaxError) return null;
      throw error;
    }
  }

  /** Ids of a room's recordings in the bucket (from the room markers). */
  async listRoom(roomId: string): Promise<string[]> {
    const ids: string[] = [];
    const prefix = this.#roomPrefix(roomId);
    let token: string | undefined;
    do {
      const page = await this.#client.send(new ListObjectsV2Command({ Bucket: this.#options.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const id = o.Key?.slice(prefix.length) ?? '';
        if (RECORDING_ID_SHAPE.test(id)) ids.push(id);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return ids;
  }

  /** A GET link to one file, valid `seconds`, that downloads as `downloadName`. */
  async signedUrl(id: string, file: string, downloadName: string, seconds: number): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.#options.bucket,
      Key: this.key(id, file),
      ResponseContentType: recordingContentType(file),
      ResponseContentDisposition: `attachment; filename="${downloadName}"`,
    });
    return getSignedUrl(this.#signer, command, { expiresIn: seconds });
  }

  async #head(key: string): Promise<StoredObject | null> {
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.#options.bucket, Key: key }));
      return { bytes: out.ContentLength ?? -1, etag: unquote(out.ETag ?? '') };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  close(): void {
    this.#client.destroy();
    if (this.#signer !== this.#client) this.#signer.destroy();
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.$metadata.httpStatusCode === 404 || error.name === 'NoSuchKey' || error.name === 'NotFound');
}

function unquote(etag: string): string {
  return etag.replace(/^(W\/)?"|"$/g, '').toLowerCase();
}

/** Same size, and an ETag that is the file's: S3's multipart form, or the whole MD5 (what some servers, s3rver among them, give a multipart object). */
function matches(stored: StoredObject, expected: FileChecksum): boolean {
  return stored.bytes === expected.bytes && (stored.etag === expected.etag || stored.etag === expected.md5);
}

/**
 * The size and the ETag S3 gives `path` when uploaded in parts of `partBytes`: the MD5 for one
 * part, else the MD5 of the concatenated part MD5s and `-<parts>` (what S3, MinIO and Ceph compute).
 */
export async function fileChecksum(path: string, partBytes: number): Promise<FileChecksum> {
  const bytes = (await stat(path)).size;
  const whole = createHash('md5');
  const parts: Buffer[] = [];
  let part = createHash('md5');
  let inPart = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    whole.update(chunk);
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(partBytes - inPart, chunk.length - at);
      part.update(chunk.subarray(at, at + take));
      inPart += take;
      at += take;
      if (inPart === partBytes) {
        parts.push(part.digest());
        part = createHash('md5');
        inPart = 0;
      }
    }
  }
  if (inPart > 0) parts.push(part.digest());
  const md5 = whole.digest('hex');
  if (bytes <= partBytes) return { bytes, etag: md5, md5 };
  return { bytes, etag: `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`, md5 };
}
