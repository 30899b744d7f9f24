import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAuthKeys } from '../../src/auth/keys.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { loadConfig, recordingDirOf, recordingSegmentMsOf, type VoxConfigInput } from '../../src/config.ts';
import type { RecordingManifest } from '../../src/recording/layout.ts';
import { recordingRoutes } from '../../src/recording/routes.ts';
import { createRecordingStorage, type RecordingStorage } from '../../src/recording/storage.ts';
import type { StoredRecording } from '../../src/recording/store.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import type { ServerEvents } from '../../src/signalling/observer.ts';
import { powerAt } from '../codec/signal.ts';
import { sleep, waitFor } from '../media/harness.ts';
import { SECRET, startTestServer, type TestServer } from '../signalling/harness.ts';
import { decodeRecording, seconds } from './decode.ts';
import { S3_CREDENTIALS, TestS3 } from './s3-server.ts';

/**
 * A recorded call on `recording.storage` s3, end to end: SDK clients with real werift media, a
 * server with its worker pool recording in 2 s segments, s3rver as the bucket. S3 goes down in the
 * middle of the call: the call goes on, segments pile up locally, and arrive once S3 is back; the
 * bucket then holds every file byte for byte. A second server process (no media, its own empty
 * data folder, the same bucket) lists the recording and serves its files to a token with the
 * `record` grant, by redirecting to a signed link.
 */

const ROOM = 'rec-s3';
const BUCKET = 'voxlink-calls';
const S3_PORT = 51620;
const NODE_B_PORT = 51630;
const PRESENT = 0.01;
const ABSENT = 0.0005;

interface Member {
  client: VoxClient;
  media: NodeMediaClient;
}

describe('a recorded call stored in S3 (s3rver), read from another node', () => {
  let root: string;
  let s3: TestS3;
  let plane: PooledMediaPlane;
  let storage: RecordingStorage;
  let t: TestServer;
  let nodeB: ChildProcess | undefined;
  let nodeBOutput = '';
  const members = new Map<string, Member>();
  const uploaded: Array<ServerEvents['recording_uploaded']> = [];
  let recordingDir: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'voxlink-s3-call-'));
    s3 = new TestS3(S3_PORT, join(root, 's3rver'));
    await s3.start();
    await s3.createBucket(BUCKET);
    const overrides: VoxConfigInput = {
      dataDir: join(root, 'node-a'),
      // Local copies kept an hour, so the test can compare them with the bucket's.
      recording: { storage: 's3', segmentSeconds: 2, keepLocalSeconds: 3600, s3: { bucket: BUCKET, endpoint: s3.endpoint, forcePathStyle: true, prefix: 'calls' } },
    };
    const config = loadConfig({ env: {}, overrides: { ...overrides, auth: { hs256Secret: SECRET } } });
    recordingDir = recordingDirOf(config)!;
    plane = createMediaPlane(
      mediaPlaneOptionsFromConfig({
        workers: 1,
        announcedIp: '127.0.0.1',
        rtcMinPort: 51700,
        rtcMaxPort: 51899,
        slots: 3,
        recordingDir,
        recordingSegmentMs: recordingSegmentMsOf(config),
      }),
    );
    await plane.pool.ready();
    storage = createRecordingStorage(config, { credentials: S3_CREDENTIALS, scanMs: 300 })!;
    const keys = resolveAuthKeys(config);
    t = await startTestServer(overrides, { keys, mediaPlane: plane, routes: [recordingRoutes(config, keys, storage.store)] });
    t.server.observer.on('recording_uploaded', (e) => uploaded.push(e));
    storage.start(t.server.observer);
  }, 60_000);

  afterAll(async () => {
    for (const m of members.values()) {
      await m.media.close();
      await m.client.disconnect();
    }
    nodeB?.kill('SIGKILL');
    await t?.close();
    await plane?.close();
    await storage?.close();
    await s3?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function member(userId: string, grants: ('join' | 'publish' | 'subscribe' | 'record')[], toneHz: number): Promise<Member> {
    const client = createNodeClient();
    const media = new NodeMediaClient({ room: ROOM, signal: { send: (m) => client.sendMedia(m) } });
    client.on('media', (m) => void media.handle(m));
    await client.connect(t.wsUrl, await t.token(userId, { grants, name: userId === 'host' ? 'Host' : 'Guest' }));
    await client.join(ROOM);
    await media.connected(15_000);
    media.publish(new ToneSource(toneHz));
    const m = { client, media };
    members.set(userId, m);
    return m;
  }

  let recordingId: string;
  let manifest: RecordingManifest;

  it('records in segments; with S3 down the call goes on and the files arrive once it is back, byte for byte', async () => {
    const host = await member('host', ['join', 'publish', 'subscribe', 'record'], 440);
    const guest = await member('guest', ['join', 'publish', 'subscribe'], 660);
    const guestId = guest.client.room(ROOM)!.participantId;
    await waitFor(() => host.media.heard().includes(guestId), 10_000, 'host hears guest');
    recordingId = (await host.client.record(ROOM, 'start'))!;
    await sleep(2500);
    // Segment 0 is complete and uploaded while the call goes on.
    await waitFor(() => s3KeysSync.includes(`calls/${recordingId}/manifest.json`), 10_000, 'segment 0 uploaded');

    await s3.stop();
    host.media.clearRecordings();
    await sleep(4500);
    // The call went on without S3: the host still hears the guest's tone.
    expect(powerAt(host.media.audioFrom(guestId, 1), 48000, 660)).toBeGreaterThan(PRESENT);
    const waiting = JSON.parse(readFileSync(join(recordingDir, recordingId, 'manifest.json'), 'utf8')) as RecordingManifest;
    expect(waiting.segments!.length).toBeGreaterThanOrEqual(3);
    expect(storage.uploader!.stats.failures).toBeGreaterThan(0);
    expect(storage.uploader!.stats.pending).toBe(1);

    await s3.start();
    expect(await host.client.record(ROOM, 'stop')).toBeNull();
    await waitFor(() => uploaded.length === 1, 20_000, 'recording_uploaded');
    manifest = JSON.parse(readFileSync(join(recordingDir, recordingId, 'manifest.json'), 'utf8')) as RecordingManifest;
    expect(manifest.stoppedAt).not.toBeNull();
    expect(new Set(manifest.files.map((f) => f.segment)).size).toBe(manifest.segments!.length);
    expect(manifest.files.every((f) => f.complete)).toBe(true);
    let bytes = 0;
    for (const f of manifest.files) {
      const local = readFileSync(join(recordingDir, recordingId, f.file));
      bytes += local.length;
      expect((await s3.get(BUCKET, `calls/${recordingId}/${f.file}`)).equals(local), f.file).toBe(true);
    }
    expect(uploaded[0]).toEqual({ roomId: ROOM, recordingId, objects: manifest.files.length + 1, bytes });
    const stored = JSON.parse((await s3.get(BUCKET, `calls/${recordingId}/manifest.json`)).toString('utf8')) as RecordingManifest;
    expect(stored.files.map((f) => f.file)).toEqual(manifest.files.map((f) => f.file));
    expect(stored.participants?.map((p) => p.name).sort()).toEqual(['Guest', 'Host']);
  }, 90_000);

  it('another server process sharing the bucket lists the recording and serves its files with the record grant', async () => {
    nodeB = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: resolve(import.meta.dirname, '../..'),
      env: {
        PATH: process.env.PATH,
        VOXLINK_HOST: '127.0.0.1',
        VOXLINK_PORT: String(NODE_B_PORT),
        VOXLINK_SECRET: SECRET,
        VOXLINK_MEDIA: 'false',
        VOXLINK_DATA_DIR: join(root, 'node-b'),
        VOXLINK_RECORDING_STORAGE: 's3',
        VOXLINK_S3_BUCKET: BUCKET,
        VOXLINK_S3_PREFIX: 'calls',
        VOXLINK_S3_ENDPOINT: s3.endpoint,
        VOXLINK_S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    nodeB.stdout!.on('data', (d: Buffer) => (nodeBOutput += d.toString()));
    nodeB.stderr!.on('data', (d: Buffer) => (nodeBOutput += d.toString()));
    await waitFor(() => nodeBOutput.includes('VoxLink ready'), 30_000, `node B ready (${nodeBOutput})`);
    const base = `http://127.0.0.1:${NODE_B_PORT}`;
    const token = (grants: ('record' | 'join')[], room = ROOM): Promise<string> => mintToken({ key: SECRET, userId: 'auditor', room, grants });
    const get = (path: string, bearer?: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${base}${path}`, { ...init, headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } });
    const withGrant = await token(['record']);

    const list = `/recordings?room=${ROOM}`;
    expect((await get(list)).status).toBe(401);
    expect((await get(list, await token(['join']))).status).toBe(403);
    const listed = (await (await get(list, withGrant)).json()) as { recordings: StoredRecording[] };
    expect(listed.recordings.map((r) => r.id)).toEqual([recordingId]);
    const rec = listed.recordings[0]!;
    expect(rec.stoppedAt).toBe(manifest.stoppedAt);
    expect(rec.segments).toEqual(manifest.segments);
    expect(rec.files.map((f) => [f.file, f.bytes, f.segment, f.offsetMs])).toEqual(
      manifest.files.map((f) => [f.file, f.bytes, f.segment, Math.round(f.offsetSamples! / 48)]),
    );

    // A file: a 302 to a short-lived signed link into the bucket, never the bytes through node B.
    const file = manifest.files.find((f) => f.name === 'Host' && f.segment === 1)!;
    const path = `/recordings/${recordingId}/${file.file}`;
    expect((await get(path)).status).toBe(401);
    expect((await get(path, await token(['record'], 'elsewhere'))).status).toBe(404);
    expect((await get(`/recordings/${recordingId}/99-nobody.opus`, withGrant)).status).toBe(404);
    const redirect = await get(path, withGrant, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    const location = redirect.headers.get('location')!;
    expect(location.startsWith(`${s3.endpoint}/${BUCKET}/calls/${recordingId}/${file.file}?`)).toBe(true);
    expect(location).toMatch(/X-Amz-Expires=300/);
    // Followed (fetch drops the Authorization header on the cross-origin hop): the same bytes as recorded.
    for (const f of manifest.files) {
      const response = await get(`/recordings/${recordingId}/${f.file}`, withGrant);
      expect(response.status, f.file).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(readFileSync(join(recordingDir, recordingId, f.file))), f.file).toBe(true);
    }
    // And what it serves is the host's voice in segment 1: 440 Hz, not the guest's 660 Hz.
    const audio = Buffer.from(await (await get(path, withGrant)).arrayBuffer());
    const { file: ogg, pcm } = decodeRecording(audio);
    expect(ogg.ended).toBe(true);
    expect(powerAt(seconds(pcm, 0.3, 1.7), 48000, 440)).toBeGreaterThan(PRESENT);
    expect(powerAt(seconds(pcm, 0.3, 1.7), 48000, 660)).toBeLessThan(ABSENT);
  }, 60_000);

  /** The bucket's keys, refreshed in the background for waitFor (which takes a synchronous check). */
  let s3KeysSync: string[] = [];
  const refresh = setInterval(() => {
    if (s3?.running) void s3.keys(BUCKET, 'calls/').then((k) => (s3KeysSync = k), () => undefined);
  }, 200);
  afterAll(() => clearInterval(refresh));
});
