import { afterAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.ts';
import { createNodeClient, ExponentialBackoffPolicy, type VoxClient } from '../../src/client/node.ts';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { powerAt } from '../codec/signal.ts';
import { startTestServer, SECRET, type TestServer } from '../signalling/harness.ts';

/**
 * Regression (found by the soak's restart chaos, bench/soak/chaos.ts): after the server restarted,
 * the SDK resumed in vain, re-joined on a fresh session and the server offered a new peer — without
 * `restart`, since for the new server it is a first join. The media client applied that offer to
 * its old PeerConnection, whose DTLS association was with the dead process, and never heard
 * anything again. Now an offer with another DTLS fingerprint gets a fresh peer.
 */
const PORT = 55230;
const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660 };

interface Member {
  id: string;
  signalling: VoxClient;
  media: NodeMediaClient;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function start(): Promise<{ t: TestServer; plane: PooledMediaPlane }> {
  const plane = createMediaPlane({ room: { slots: 3, announcedIp: '127.0.0.1', bindIp: '127.0.0.1', rtcMinPort: 55700, rtcMaxPort: 55739, mode: 'sfu' }, pool: { workers: 1 } });
  await plane.pool.ready(60_000);
  const t = await startTestServer({ server: { port: PORT } }, { mediaPlane: plane });
  return { t, plane };
}

describe('SDK media after a server restart', () => {
  let server: { t: TestServer; plane: PooledMediaPlane } | undefined;
  const members: Member[] = [];
  afterAll(async () => {
    await Promise.all(members.map((m) => Promise.all([m.media.close(), m.signalling.disconnect()])));
    await server?.t.close();
    await server?.plane.close();
  });

  /** Whether `m` holds 0.1 s of decoded audio with the other member's tone, from its current participant id. */
  function hearsOther(m: Member): boolean {
    const other = members.find((o) => o !== m)!;
    const pid = other.signalling.room('call')?.participantId;
    const pcm = pid === undefined ? new Float32Array(0) : m.media.audioFrom(pid, 0.5);
    return pcm.length >= 0.1 * SR && powerAt(pcm, SR, TONES[other.id]) > 0.01;
  }

  it('both members hear each other again once the restarted server is up, by themselves', { timeout: 120_000 }, async () => {
    server = await start();
    for (const id of ['a', 'b']) {
      const signalling = createNodeClient({ reconnectPolicy: new ExponentialBackoffPolicy({ initialDelayMs: 100, maxDelayMs: 500 }) });
      // The wiring docs/sdk.md shows.
      const media = new NodeMediaClient({ room: 'call', signal: { send: (m) => signalling.sendMedia(m) } });
      signalling.on('media', (m) => void media.handle(m));
      members.push({ id, signalling, media });
      await signalling.connect(`ws://127.0.0.1:${PORT}/ws`, () => mintToken({ key: SECRET, userId: id, room: '*', grants: ['join', 'publish', 'subscribe'] }));
      await signalling.join('call');
      await media.connected();
      media.publish(new ToneSource(TONES[id]));
    }
    await waitFor(() => members.every(hearsOther), 20_000, 'both hear each other');
    const before = members.map((m) => m.signalling.room('call')!.participantId);

    await server.t.close();
    await server.plane.close();
    for (const m of members) m.media.clearRecordings();
    server = await start();

    await waitFor(() => members.every((m) => m.signalling.state === 'connected'), 30_000, 'SDK re-joined on a fresh session');
    // New session, new participant ids: what they hear now came through the new server.
    expect(members.map((m) => m.signalling.room('call')!.participantId)).not.toEqual(before);
    await waitFor(() => members.every(hearsOther), 30_000, 'both hear each other after the restart');
  });
});
