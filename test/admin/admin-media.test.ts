import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRoutes } from '../../src/admin/routes.ts';
import { AdminClient } from '../../src/client/admin.ts';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { mintToken } from '../../src/auth/tokens.ts';
import { resolveAuthKeys } from '../../src/auth/keys.ts';
import { loadConfig, recordingDirOf } from '../../src/config.ts';
import { listRecordings } from '../../src/recording/store.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { powerAt } from '../codec/signal.ts';
import { sleep, waitFor } from '../media/harness.ts';
import { SECRET, startTestServer, type TestServer } from '../signalling/harness.ts';

/**
 * The admin API's effect on real media (werift peers through the SDK, a real worker pool): a
 * server-side mute stops the participant's audio reaching a listener, a removed participant's
 * audio stops, ending a room closes its media room and its running recording.
 */

const ROOM = 'admin/media';
const PRESENT = 0.01;
const ABSENT = 0.0005;

interface Member {
  client: VoxClient;
  media: NodeMediaClient;
  id: string;
}

describe('admin API and media', () => {
  let dataDir: string;
  let plane: PooledMediaPlane;
  let t: TestServer;
  let admin: AdminClient;
  const members: Member[] = [];
  const stopped: string[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'voxlink-admin-'));
    plane = createMediaPlane(
      mediaPlaneOptionsFromConfig({
        workers: 1,
        announcedIp: '127.0.0.1',
        rtcMinPort: 44000,
        rtcMaxPort: 44199,
        slots: 3,
        recordingDir: recordingDirOf({ dataDir, recording: { enabled: true } }),
      }),
    );
    await plane.pool.ready();
    const keys = resolveAuthKeys(loadConfig({ env: {}, overrides: { auth: { hs256Secret: SECRET } } }));
    t = await startTestServer({ dataDir }, { mediaPlane: plane, keys, routes: [adminRoutes(keys)] });
    t.server.observer.on('recording_stopped', (e) => stopped.push(e.reason));
    admin = new AdminClient({ url: `http://127.0.0.1:${t.server.port}`, token: await mintToken({ key: SECRET, userId: 'ops', room: 'admin/*', grants: ['admin'] }) });
  }, 30_000);

  afterAll(async () => {
    for (const m of members) {
      await m.media.close();
      await m.client.disconnect();
    }
    await t?.close();
    await plane?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function member(userId: string, toneHz: number | null, grants: ('join' | 'publish' | 'subscribe' | 'record')[] = ['join', 'publish', 'subscribe']): Promise<Member> {
    const client = createNodeClient();
    const media = new NodeMediaClient({ room: ROOM, signal: { send: (m) => client.sendMedia(m) } });
    client.on('media', (m) => void media.handle(m));
    await client.connect(t.wsUrl, await t.token(userId, { grants }));
    await client.join(ROOM);
    await media.connected(15_000);
    if (toneHz !== null) media.publish(new ToneSource(toneHz));
    const m = { client, media, id: client.room(ROOM)!.participantId };
    members.push(m);
    return m;
  }

  it('mute stops a participant reaching the listener, remove stops its media; end room closes media and recording', async () => {
    const listener = await member('listener', null, ['join', 'subscribe', 'record']);
    const a = await member('a', 440);
    const b = await member('b', 660);
    await waitFor(() => listener.media.heard().includes(a.id) && listener.media.heard().includes(b.id), 15_000, 'listener hears a and b');
    await sleep(1500);
    const before = { a: powerAt(listener.media.audioFrom(a.id, 1), 48_000, 440), b: powerAt(listener.media.audioFrom(b.id, 1), 48_000, 660) };
    expect(before.a).toBeGreaterThan(PRESENT);
    expect(before.b).toBeGreaterThan(PRESENT);

    // Server-side mute of a: its own SDK is told, the listener stops hearing it, b goes on.
    const told: boolean[] = [];
    a.client.on('participant_updated', (e) => {
      if (e.participant.participantId === a.id) told.push(e.participant.muted);
    });
    expect(await admin.muteParticipant(ROOM, { userId: 'a' })).toMatchObject({ muted: true });
    await waitFor(() => told.includes(true), 5000, 'a is told it is muted');
    await sleep(300);
    listener.media.clearRecordings();
    await sleep(1500);
    const mutedA = powerAt(listener.media.audioFrom(a.id, 1), 48_000, 440);
    const stillB = powerAt(listener.media.audioFrom(b.id, 1), 48_000, 660);
    console.log(`admin mute: a at 440 Hz ${before.a.toExponential(2)} → ${mutedA.toExponential(2)}; b at 660 Hz ${stillB.toExponential(2)}`);
    expect(mutedA).toBeLessThan(ABSENT);
    expect(stillB).toBeGreaterThan(PRESENT);

    // Remove b: its SDK drops the room, the listener stops hearing it.
    const gone: unknown[] = [];
    b.client.on('room', (e) => {
      if (e.reason === 'left') gone.push(e.leftReason);
    });
    await admin.removeParticipant(ROOM, { participantId: b.id });
    await waitFor(() => gone.length === 1, 5000, 'b is told');
    expect(gone).toEqual(['removed']);
    await sleep(300);
    listener.media.clearRecordings();
    await sleep(1500);
    const removedB = powerAt(listener.media.audioFrom(b.id, 1), 48_000, 660);
    console.log(`admin remove: b at 660 Hz ${before.b.toExponential(2)} → ${removedB.toExponential(2)}`);
    expect(removedB).toBeLessThan(ABSENT);

    // A recording runs; EndRoom stops it with the room and closes the media room.
    const recordingId = await listener.client.record(ROOM, 'start');
    expect(recordingId).toBeTruthy();
    await sleep(1000);
    expect(plane.stats().rooms).toBe(1);
    expect(await admin.endRoom(ROOM)).toBe(2);
    await waitFor(() => plane.stats().rooms === 0, 10_000, 'media room closed');
    expect(stopped).toEqual(['room_closed']);
    await waitFor(() => listener.client.room(ROOM) === undefined, 5000, 'listener dropped the room');
    const recordingDir = recordingDirOf({ dataDir, recording: { enabled: true } })!;
    let recordings = await listRecordings(recordingDir, ROOM);
    for (let i = 0; i < 50 && recordings[0]?.stoppedAt == null; i++) {
      await sleep(100);
      recordings = await listRecordings(recordingDir, ROOM);
    }
    expect(recordings[0]).toMatchObject({ id: recordingId });
    expect(recordings[0]?.stoppedAt).toBeTypeOf('number');
  }, 60_000);
});
