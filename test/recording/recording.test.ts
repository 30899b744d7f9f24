import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { recordingDirOf } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import type { StoredRecording } from '../../src/recording/store.ts';
import { powerAt } from '../codec/signal.ts';
import { sleep, waitFor } from '../media/harness.ts';
import { RawClient, startTestServer, type TestServer } from '../signalling/harness.ts';
import { decodeRecording, seconds } from './decode.ts';

/**
 * Recording end to end: the SDK (VoxClient + NodeMediaClient, real werift peers) against a real
 * server and worker pool. A participant with the `record` grant starts and stops it; everyone in
 * the room is told, joiners too; the files are listed and downloaded over HTTP with a token that
 * has the grant, and the downloaded Ogg Opus is valid for Debian's opusinfo and decodes (opusdec
 * and our decoder) to the speaker's tone.
 */

const ROOM = 'rec-e2e';
const PRESENT = 0.01;
const ABSENT = 0.0005;

interface Member {
  client: VoxClient;
  media: NodeMediaClient;
}

describe('recording over signalling and HTTP (SDK, real media)', () => {
  let dataDir: string;
  let plane: PooledMediaPlane;
  let t: TestServer;
  const members = new Map<string, Member>();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'voxlink-rec-'));
    plane = createMediaPlane(
      mediaPlaneOptionsFromConfig({
        workers: 1,
        announcedIp: '127.0.0.1',
        rtcMinPort: 48200,
        rtcMaxPort: 48399,
        slots: 3,
        // Where the server's config puts them by default: <dataDir>/recordings.
        recordingDir: recordingDirOf({ dataDir, recording: { enabled: true } }),
      }),
    );
    await plane.pool.ready();
    t = await startTestServer({ dataDir }, { mediaPlane: plane });
  });

  afterAll(async () => {
    for (const m of members.values()) {
      await m.media.close();
      await m.client.disconnect();
    }
    await t?.close();
    await plane?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A participant through the SDK: signalling client plus werift media client, publishing `toneHz`. */
  /** Display names: the host's folds to ASCII, the guest's is hostile to file systems. */
  const NAMES: Record<string, string> = { host: 'Hôst Smith', guest: '../../etc/passwd 🎧' };

  async function member(userId: string, grants: ('join' | 'publish' | 'subscribe' | 'record')[], toneHz: number): Promise<Member> {
    const client = createNodeClient();
    const media = new NodeMediaClient({ room: ROOM, signal: { send: (m) => client.sendMedia(m) } });
    client.on('media', (m) => void media.handle(m));
    await client.connect(t.wsUrl, await t.token(userId, { grants, ...(NAMES[userId] ? { name: NAMES[userId] } : {}) }));
    await client.join(ROOM);
    await media.connected(15_000);
    media.publish(new ToneSource(toneHz));
    const m = { client, media };
    members.set(userId, m);
    return m;
  }

  async function http(path: string, token?: string): Promise<Response> {
    return fetch(`http://127.0.0.1:${t.server.port}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  }

  let recordingId: string;

  it('needs the record grant; with it everyone in the room is told, joiners included', async () => {
    const host = await member('host', ['join', 'publish', 'subscribe', 'record'], 440);
    const guest = await member('guest', ['join', 'publish', 'subscribe'], 660);
    await waitFor(() => host.media.heard().includes(guest.client.room(ROOM)!.participantId), 10_000, 'host hears guest');

    await expect(guest.client.record(ROOM, 'start')).rejects.toMatchObject({ serverCode: 'FORBIDDEN' });

    const told: unknown[] = [];
    guest.client.on('recording', (e) => told.push(e));
    recordingId = (await host.client.record(ROOM, 'start'))!;
    expect(recordingId).toMatch(/^[a-z0-9]+-[0-9a-f]{12}$/);
    expect(host.client.room(ROOM)?.recording).toMatchObject({ id: recordingId, startedBy: host.client.room(ROOM)!.participantId });
    await waitFor(() => told.length === 1, 5000, 'the guest is told');
    expect(told[0]).toMatchObject({ room: ROOM, recording: { id: recordingId }, by: host.client.room(ROOM)!.participantId });
    expect(guest.client.room(ROOM)?.recording?.id).toBe(recordingId);

    // A raw joiner sees it in `joined`.
    const late = await RawClient.connect(t.wsUrl);
    await late.hello(await t.token('late'));
    const joined = await late.request({ op: 'join', room: ROOM });
    expect(joined).toMatchObject({ op: 'joined', recording: { id: recordingId } });
    late.close();

    await sleep(2500);
    expect(await host.client.record(ROOM, 'stop')).toBeNull();
    await waitFor(() => told.length === 2, 5000, 'the guest is told it stopped');
    expect(told[1]).toMatchObject({ recording: null });
    expect(guest.client.room(ROOM)?.recording).toBeNull();
    // A stop with nothing running changes nothing: only the asker gets an answer.
    expect(await host.client.record(ROOM, 'stop')).toBeNull();
    await sleep(300);
    expect(told).toHaveLength(2);
  }, 40_000);

  it('lists and serves the files over HTTP only to tokens with the record grant for the room', async () => {
    const withGrant = await t.token('auditor', { grants: ['record'], room: ROOM });
    const otherRoom = await t.token('auditor', { grants: ['record'], room: 'elsewhere' });
    const noGrant = await t.token('auditor', { grants: ['join'], room: ROOM });
    const list = `/recordings?room=${encodeURIComponent(ROOM)}`;
    expect((await http(list)).status).toBe(401);
    expect((await http(list, 'not-a-jwt')).status).toBe(401);
    expect((await http(list, noGrant)).status).toBe(403);
    expect((await http(list, otherRoom)).status).toBe(403);
    expect((await http('/recordings', withGrant)).status).toBe(400);

    const listed = (await (await http(list, withGrant)).json()) as { room: string; recordings: StoredRecording[] };
    expect(listed.room).toBe(ROOM);
    expect(listed.recordings.map((r) => r.id)).toEqual([recordingId]);
    const rec = listed.recordings[0]!;
    expect(rec.stoppedAt).not.toBeNull();
    expect(rec.files).toHaveLength(2);

    const hostId = members.get('host')!.client.room(ROOM)!.participantId;
    const guestId = members.get('guest')!.client.room(ROOM)!.participantId;
    const hostFile = rec.files.find((f) => f.participantId === hostId)!;
    // Whose voice each file is: identity and display name, and a file name safe for any name.
    expect(rec.files.map((f) => [f.participantId, f.userId, f.name, f.file.replace(/^\d+-/, '')]).sort()).toEqual(
      [
        [hostId, 'host', 'Hôst Smith', 'host-smith.opus'],
        [guestId, 'guest', '../../etc/passwd 🎧', 'etc-passwd.opus'],
      ].sort(),
    );
    for (const f of rec.files) expect(f.file).toMatch(/^\d{2}-[a-z0-9-]+\.opus$/);
    const manifest = JSON.parse(readFileSync(join(recordingDirOf({ dataDir, recording: { enabled: true } })!, rec.id, 'manifest.json'), 'utf8')) as {
      files: { participantId: string; userId: string; name: string }[];
    };
    expect(manifest.files.find((f) => f.participantId === guestId)).toMatchObject({ userId: 'guest', name: '../../etc/passwd 🎧' });
    const url = `/recordings/${rec.id}/${hostFile.file}`;
    expect((await http(url)).status).toBe(401);
    expect((await http(url, 'not-a-jwt')).status).toBe(401);
    // Another room's token cannot tell this file from a missing one.
    const refused = await http(url, otherRoom);
    expect(refused.status).toBe(404);
    expect(await refused.text()).not.toContain(ROOM);
    // Unknown ids and anything shaped like a path are 404.
    for (const bad of [`/recordings/${rec.id}/99-nobody.opus`, `/recordings/${rec.id}/..%2Fmanifest.json`, '/recordings/short/01-a.opus']) {
      expect((await http(bad, withGrant)).status, bad).toBe(404);
    }

    const response = await http(url, withGrant);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('audio/ogg; codecs=opus');
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(bytes.length).toBe(hostFile.bytes);

    // Large files are streamed in chunks, byte for byte (a 3 MB file planted next to the real ones).
    const big = new Uint8Array(3 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    const bigFolder = join(recordingDirOf({ dataDir, recording: { enabled: true } })!, 'zz-big-0000');
    mkdirSync(bigFolder);
    writeFileSync(join(bigFolder, '01-big.opus'), big);
    const bigManifest = { id: 'zz-big-0000', roomId: ROOM, startedBy: 'x', stoppedBy: 'x', startedAt: 1, stoppedAt: 2, files: [{ participantId: 'x', file: '01-big.opus', samples: 0, packets: 0, bytes: big.length }] };
    writeFileSync(join(bigFolder, 'manifest.json'), JSON.stringify(bigManifest));
    const streamed = await http('/recordings/zz-big-0000/01-big.opus', withGrant);
    expect(streamed.status).toBe(200);
    expect(Buffer.from(await streamed.arrayBuffer()).equals(Buffer.from(big))).toBe(true);
    rmSync(bigFolder, { recursive: true });

    // Our reader and decoder: the host's 440 Hz, not the guest's 660 Hz.
    const { file, pcm } = decodeRecording(bytes);
    expect(file.ended).toBe(true);
    const middle = seconds(pcm, 0.5, 2.0);
    expect(powerAt(middle, 48000, 440)).toBeGreaterThan(PRESENT);
    expect(powerAt(middle, 48000, 660)).toBeLessThan(ABSENT);

    // Debian's opus-tools: opusinfo finds no problem, opusdec decodes the same tone.
    const dir = mkdtempSync(join(tmpdir(), 'voxlink-rec-dl-'));
    try {
      const path = join(dir, 'host.opus');
      writeFileSync(path, bytes);
      const info = execFileSync('opusinfo', [path], { encoding: 'utf8' });
      expect(info).not.toMatch(/WARNING|ERROR/i);
      // The OpusTags say whose voice and which room, as opusinfo reads them.
      expect(info).toContain('ARTIST=Hôst Smith');
      expect(info).toMatch(new RegExp(`TITLE=${ROOM} \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC`));
      expect(info).toContain('VOXLINK_USER_ID=host');
      expect(info).toContain(`VOXLINK_PARTICIPANT_ID=${hostId}`);
      // The file runs from the recording's start to its stop.
      const length = /Playback length: (\d+)m:(\d+\.\d+)s/.exec(info);
      expect(length, info).not.toBeNull();
      const playbackSec = Number(length![1]) * 60 + Number(length![2]);
      expect(Math.abs(playbackSec - (rec.stoppedAt! - rec.startedAt) / 1000)).toBeLessThan(0.3);
      const raw = execFileSync('opusdec', ['--quiet', '--rate', '48000', '--force-wav', path, '-'], { maxBuffer: 1 << 24 });
      // Skip the 44-byte RIFF header; 16-bit PCM, mono or stereo as in OpusHead.
      const samples = new Int16Array(raw.buffer, raw.byteOffset + 44, Math.floor((raw.length - 44) / 2));
      const channels = file.head.channels;
      const mono = new Float32Array(Math.floor(samples.length / channels));
      for (let i = 0; i < mono.length; i++) mono[i] = samples[i * channels]! / 32768;
      expect(powerAt(seconds(mono, 0.5, 2.0), 48000, 440)).toBeGreaterThan(PRESENT);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("a worker's death ends the recording at its last flushed second and starts a new one in the new worker", async () => {
    const host = members.get('host')!;
    const guest = members.get('guest')!;
    const told: { recording: { id: string } | null }[] = [];
    guest.client.on('recording', (e) => told.push(e));
    const first = (await host.client.record(ROOM, 'start'))!;
    await waitFor(() => told.length === 1, 5000, 'the guest is told');
    await sleep(1500);
    const doomed = plane.workerOf(ROOM)!;
    await plane.pool.threads.find((thread) => thread.threadId === doomed)!.terminate();
    // Re-placed, re-joined, recording again under a new id; the room is told.
    await waitFor(() => told.length === 2, 15_000, 'a new recording after the re-placement');
    const second = told[1]!.recording!.id;
    expect(second).not.toBe(first);
    expect(guest.client.room(ROOM)?.recording?.id).toBe(second);
    // The SDK reconnected its media by itself; the host's voice reaches the new recording.
    await host.media.connected(15_000);
    const auditor = await t.token('auditor', { grants: ['record'], room: ROOM });
    const hostId = host.client.room(ROOM)!.participantId;
    // Under load the fresh peer can take a few seconds to carry audio: wait until the new
    // recording's manifest (flushed every second) holds the host's file, then record 2 s more.
    const heardBy = Date.now() + 15_000;
    for (;;) {
      const now = (await (await http(`/recordings?room=${encodeURIComponent(ROOM)}`, auditor)).json()) as { recordings: StoredRecording[] };
      if (now.recordings.some((r) => r.id === second && r.files.some((f) => f.participantId === hostId))) break;
      if (Date.now() > heardBy) throw new Error("timed out waiting for the host's voice in the new recording");
      await sleep(200);
    }
    await sleep(2000);
    expect(await host.client.record(ROOM, 'stop')).toBeNull();

    const listed = (await (await http(`/recordings?room=${encodeURIComponent(ROOM)}`, auditor)).json()) as { recordings: StoredRecording[] };
    const byId = new Map(listed.recordings.map((r) => [r.id, r]));
    // The dead worker's recording: never stopped, its files hold what was flushed before the kill.
    const died = byId.get(first)!;
    expect(died.stoppedAt).toBeNull();
    const diedFile = died.files.find((f) => f.participantId === hostId)!;
    const before = decodeRecording(new Uint8Array(await (await http(`/recordings/${first}/${diedFile.file}`, auditor)).arrayBuffer()));
    expect(before.file.ended).toBe(false);
    expect(before.pcm.length / 48000).toBeGreaterThan(0.4);
    expect(powerAt(seconds(before.pcm, 0.1, 0.5), 48000, 440)).toBeGreaterThan(PRESENT);
    // The new one, stopped normally, with the host's tone after the reconnect.
    const resumed = byId.get(second)!;
    expect(resumed.stoppedAt).not.toBeNull();
    // The listing chains the two: the new one says which recording it continues, and why.
    expect(died.continues).toBeUndefined();
    expect(resumed.continues).toEqual({ previous: first, first, part: 1, reason: 'worker_replaced' });
    const resumedFile = resumed.files.find((f) => f.participantId === hostId)!;
    // The new worker got the participants' identities with the re-join: the files still say whose voice.
    expect(resumedFile).toMatchObject({ userId: 'host', name: 'Hôst Smith' });
    expect(resumedFile.file).toMatch(/^\d{2}-host-smith\.opus$/);
    const after = decodeRecording(new Uint8Array(await (await http(`/recordings/${second}/${resumedFile.file}`, auditor)).arrayBuffer()));
    expect(after.file.ended).toBe(true);
    const tail = seconds(after.pcm, after.pcm.length / 48000 - 1, after.pcm.length / 48000);
    expect(powerAt(tail, 48000, 440)).toBeGreaterThan(PRESENT);
  }, 60_000);

  it('refuses record for a room you are not in, and bad actions', async () => {
    const raw = await RawClient.connect(t.wsUrl);
    try {
      await raw.hello(await t.token('outsider', { grants: ['join', 'record'] }));
      expect(await raw.request({ op: 'record', room: 'not-joined', action: 'start' })).toMatchObject({ op: 'error', code: 'NOT_IN_ROOM' });
      expect(await raw.request({ op: 'record', room: ROOM, action: 'pause' } as never)).toMatchObject({ op: 'error', code: 'INVALID_MESSAGE' });
    } finally {
      raw.close();
    }
  });
});
