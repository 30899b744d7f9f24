import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readOggOpus } from '../../src/codec/ogg.ts';
import { OpusEncoder } from '../../src/codec/opus.ts';
import { RecordingBucket } from '../../src/recording/bucket.ts';
import type { RecordingManifest } from '../../src/recording/layout.ts';
import { RoomRecorder } from '../../src/recording/recorder.ts';
import { RecordingUploader } from '../../src/recording/uploader.ts';
import { ServerObserver, type ServerEvents } from '../../src/signalling/observer.ts';
import { toneFloat32 } from '../codec/signal.ts';
import { waitFor } from '../media/harness.ts';
import { S3_CREDENTIALS, TestS3 } from './s3-server.ts';

/**
 * The s3 storage backend against s3rver (a real S3-protocol server): uploads confirmed by size
 * and checksum (one PUT and multipart), segments uploaded as they complete, S3 down and back,
 * a restart with pending uploads, abandoned recordings, retention, and files added later.
 * The recordings are written by the real RoomRecorder.
 */

const BUCKET = 'voxlink-rec';
const PORT = 51600;
const FRAME = 960;

function tonePackets(count: number): Uint8Array[] {
  const enc = new OpusEncoder({ sampleRate: 48000, channels: 1, bitrate: 32000 });
  try {
    const pcm = toneFloat32(440, 48000, FRAME * count);
    return Array.from({ length: count }, (_, i) => enc.encode(pcm.subarray(i * FRAME, (i + 1) * FRAME)).slice());
  } finally {
    enc.close();
  }
}

describe('recordings to object storage (s3rver)', () => {
  let s3: TestS3;
  let root: string;
  let bucket: RecordingBucket;
  const packets = tonePackets(200);
  const cleanup: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'voxlink-s3-'));
    s3 = new TestS3(PORT, join(root, 's3rver'));
    await s3.start();
    await s3.createBucket(BUCKET);
    bucket = new RecordingBucket({ bucket: BUCKET, prefix: 'unit', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, partBytes: 5 * 1024 * 1024, credentials: S3_CREDENTIALS });
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    if (!s3.running) await s3.start();
  });
  afterAll(async () => {
    bucket?.close();
    await s3?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** A recording folder written by the real recorder: `seconds` of a's tone (and b's for the first second), flushed every second. */
  function record(dir: string, id: string, seconds: number, options: { segmentMs?: number; stop?: boolean } = {}): RoomRecorder {
    const clock = { ms: 0 };
    const recorder = new RoomRecorder({ dir, id, roomId: 'room-1', startedBy: 'a', now: () => clock.ms, identify: (p) => ({ userId: `u-${p}`, name: p === 'a' ? 'Alice' : 'Bob' }), ...(options.segmentMs ? { segmentMs: options.segmentMs } : {}) });
    for (let i = 0; i < seconds * 50; i++) {
      clock.ms = i * 20;
      recorder.onAudio('a', packets[i % packets.length]!, 1, i * FRAME);
      if (i < 50) recorder.onAudio('b', packets[i]!, 2, i * FRAME);
      if (clock.ms % 1000 === 0 && clock.ms > 0) recorder.flush();
    }
    clock.ms = seconds * 1000;
    if (options.stop !== false) recorder.stop('a');
    else recorder.flush();
    return recorder;
  }

  function uploader(dir: string, extra: Partial<ConstructorParameters<typeof RecordingUploader>[0]> = {}): RecordingUploader {
    const u = new RecordingUploader({ dir, bucket, keepLocalMs: 0, scanMs: 100, retryBaseMs: 100, retryMaxMs: 400, ...extra });
    cleanup.push(() => u.close());
    return u;
  }

  function uploadedEvents(observer: ServerObserver): Array<ServerEvents['recording_uploaded']> {
    const events: Array<ServerEvents['recording_uploaded']> = [];
    observer.on('recording_uploaded', (e) => events.push(e));
    return events;
  }

  const manifestIn = async (id: string): Promise<RecordingManifest> => JSON.parse((await s3.get(BUCKET, `unit/${id}/manifest.json`)).toString('utf8')) as RecordingManifest;

  it('uploads a file in one PUT or in parts, confirmed by size and checksum, and byte-identical', async () => {
    const dir = join(root, 'put');
    const big = Buffer.concat([randomBytes(12 * 1024 * 1024), Buffer.from('end')]);
    const small = randomBytes(70_000);
    for (const [name, bytes] of [['big', big], ['small', small]] as const) {
      mkdirSync(join(dir, name), { recursive: true });
      writeFileSync(join(dir, name, '01-x.opus'), bytes);
    }
    const bigStored = await bucket.putFile('big-0000', '01-x.opus', join(dir, 'big', '01-x.opus'));
    expect(bigStored.bytes).toBe(big.length);
    // Three parts of 5 MiB or less: S3, MinIO and Ceph give `<md5 of part md5s>-3`; s3rver the whole MD5. Both confirm.
    expect(bigStored.etag).toMatch(/^[0-9a-f]{32}(-3)?$/);
    expect((await s3.get(BUCKET, 'unit/big-0000/01-x.opus')).equals(big)).toBe(true);
    const smallStored = await bucket.putFile('small-000', '01-x.opus', join(dir, 'small', '01-x.opus'));
    expect(smallStored.etag).toMatch(/^[0-9a-f]{32}$/);
    expect((await s3.get(BUCKET, 'unit/small-000/01-x.opus')).equals(small)).toBe(true);
    // Already there with the same checksum: confirmed without sending it again (the object keeps its time).
    const modified = async (): Promise<number | undefined> =>
      (await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'unit/small-000/01-x.opus' }))).LastModified?.getTime();
    const before = await modified();
    await new Promise((r) => setTimeout(r, 1100));
    await bucket.putFile('small-000', '01-x.opus', join(dir, 'small', '01-x.opus'));
    const after = await modified();
    expect(after).toBe(before);
  }, 60_000);

  it('uploads completed segments while recording, the rest at the stop, byte-identical; announces once; keeps local copies per retention', async () => {
    const dir = join(root, 'segments');
    const observer = new ServerObserver();
    const announced = uploadedEvents(observer);
    // Still running: segments 0 and 1 are complete, segment 2 is being written.
    const recorder = record(dir, 'seg-00001', 5, { segmentMs: 2000, stop: false });
    observer.emit('recording_started', { roomId: 'room-1', recordingId: 'seg-00001', startedBy: 'a', startedAt: Date.now() });
    const u = uploader(dir, { observer, keepLocalMs: 60_000 });
    u.start();
    await waitFor(() => u.stats.objects === 3, 10_000, 'completed segments uploaded');
    await u.scanNow(); // the scan that confirmed them also puts the manifest
    expect(await s3.keys(BUCKET, 'unit/seg-00001/')).toEqual(['unit/seg-00001/01-alice.opus', 'unit/seg-00001/01-alice.s1.opus', 'unit/seg-00001/02-bob.opus', 'unit/seg-00001/manifest.json']);
    // The manifest object lists what can be downloaded: the complete segments only.
    expect((await manifestIn('seg-00001')).files.map((f) => f.file)).toEqual(['01-alice.opus', '02-bob.opus', '01-alice.s1.opus']);
    expect(announced).toEqual([]);

    recorder.stop('a');
    observer.emit('recording_stopped', { roomId: 'room-1', recordingId: 'seg-00001', reason: 'stopped', stoppedBy: 'a' });
    await waitFor(() => announced.length === 1, 10_000, 'recording_uploaded');
    const local = recorder.manifest.files.map((f) => f.file);
    expect(local).toEqual(['01-alice.opus', '02-bob.opus', '01-alice.s1.opus', '01-alice.s2.opus']);
    let bytes = 0;
    for (const file of local) {
      const mine = readFileSync(join(dir, 'seg-00001', file));
      bytes += mine.length;
      expect((await s3.get(BUCKET, `unit/seg-00001/${file}`)).equals(mine), file).toBe(true);
    }
    expect(announced[0]).toEqual({ roomId: 'room-1', recordingId: 'seg-00001', objects: 5, bytes });
    const stored = await manifestIn('seg-00001');
    expect(stored).toMatchObject({ id: 'seg-00001', roomId: 'room-1', stoppedBy: 'a', segmentMs: 2000, extras: [] });
    expect(stored.segments).toEqual(recorder.manifest.segments);
    expect(stored.participants?.map((p) => [p.userId, p.name])).toEqual([['u-a', 'Alice'], ['u-b', 'Bob']]);
    expect(await bucket.listRoom('room-1')).toContain('seg-00001');
    // Retention: confirmed, but kept for a minute.
    await u.scanNow();
    expect(readdirSync(join(dir, 'seg-00001')).sort()).toEqual([...local, 'manifest.json'].sort());
    expect(announced).toHaveLength(1);

    // A restarted node with no retention: it confirms what is there (nothing is sent again), removes it, announces again only in its own run.
    await u.close();
    const again = new ServerObserver();
    const announcedAgain = uploadedEvents(again);
    const v = uploader(dir, { observer: again });
    await v.scanNow();
    expect(existsSync(join(dir, 'seg-00001'))).toBe(false);
    expect(announcedAgain).toEqual([{ ...announced[0] }]);
  }, 60_000);

  it('S3 down: nothing is lost locally, uploads retry with backoff and arrive once it is back', async () => {
    const dir = join(root, 'down');
    const observer = new ServerObserver();
    const announced = uploadedEvents(observer);
    const u = uploader(dir, { observer });
    u.start();
    await s3.stop();
    const recorder = record(dir, 'down-0001', 3);
    await waitFor(() => u.stats.failures >= 3, 10_000, 'failed attempts');
    const files = readdirSync(join(dir, 'down-0001')).sort();
    expect(files).toEqual(['01-alice.opus', '02-bob.opus', 'manifest.json']);
    const bytes = Object.fromEntries(recorder.manifest.files.map((f) => [f.file, readFileSync(join(dir, 'down-0001', f.file))]));
    await s3.start();
    await waitFor(() => announced.length === 1, 10_000, 'uploaded after S3 is back');
    for (const [file, mine] of Object.entries(bytes)) expect((await s3.get(BUCKET, `unit/down-0001/${file}`)).equals(mine), file).toBe(true);
    await waitFor(() => !existsSync(join(dir, 'down-0001')), 5000, 'local copy removed once confirmed');
  }, 60_000);

  it('a restart with pending uploads uploads them; an abandoned recording (its node died) is uploaded as it was flushed', async () => {
    const dir = join(root, 'restart');
    await s3.stop();
    const first = uploader(dir);
    first.start();
    record(dir, 'rst-00001', 2);
    await waitFor(() => first.stats.failures >= 1, 10_000, 'first run fails');
    await first.close();
    // Never stopped: a worker that died mid-recording. Its manifest is old.
    const dead = record(dir, 'rst-00002', 2, { stop: false });
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'rst-00002', 'manifest.json'), old, old);
    await s3.start();

    const observer = new ServerObserver();
    const announced = uploadedEvents(observer);
    const second = uploader(dir, { observer, abandonAfterMs: 10_000 });
    second.start();
    await waitFor(() => announced.length === 2, 10_000, 'both uploaded by the restarted node');
    expect(announced.map((e) => e.recordingId).sort()).toEqual(['rst-00001', 'rst-00002']);
    const abandoned = await manifestIn('rst-00002');
    expect(abandoned.stoppedAt).toBeNull();
    expect(abandoned.files.map((f) => [f.file, f.packets])).toEqual(dead.manifest.files.map((f) => [f.file, f.packets]));
    // The abandoned file parses (CRCs checked) up to its last flush.
    expect(readOggOpus(await s3.get(BUCKET, `unit/rst-00002/${dead.manifest.files[0]!.file}`)).packets.length).toBeGreaterThanOrEqual(50);
    await waitFor(() => readdirSync(dir).length === 0, 5000, 'local copies removed');
  }, 60_000);

  it('uploads files added beside a finished recording (transcripts) and holds the folder while retained', async () => {
    const dir = join(root, 'extras');
    const u = uploader(dir);
    const release = u.retain('ext-00001');
    record(dir, 'ext-00001', 1);
    await u.scanNow();
    // Uploaded, but retained: the transcriber still reads the tracks.
    expect(await s3.keys(BUCKET, 'unit/ext-00001/')).toEqual(['unit/ext-00001/01-alice.opus', 'unit/ext-00001/02-bob.opus', 'unit/ext-00001/manifest.json']);
    expect(existsSync(join(dir, 'ext-00001', '01-alice.opus'))).toBe(true);
    const vtt = 'WEBVTT\n\n00:00.000 --> 00:00.800\n<v Alice>hello\n';
    writeFileSync(join(dir, 'ext-00001', '01-alice.vtt'), vtt);
    await u.uploadFile('ext-00001', '01-alice.vtt');
    expect((await s3.get(BUCKET, 'unit/ext-00001/01-alice.vtt')).toString('utf8')).toBe(vtt);
    expect((await manifestIn('ext-00001')).extras).toEqual(['01-alice.vtt']);
    await expect(u.uploadFile('ext-00001', '../manifest.json')).rejects.toThrow(/not a recording's extra file/);
    await expect(u.uploadFile('ext-00001', 'manifest.json')).rejects.toThrow(/not a recording's extra file/);
    release();
    await u.scanNow();
    expect(existsSync(join(dir, 'ext-00001'))).toBe(false);
  }, 30_000);
});
