import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { RawClient, startTestServer, type TestServer } from '../signalling/harness.ts';

/**
 * `join.options.mode` reaches the media plane: real signalling server, real MediaPlane (worker
 * thread, werift peers), server configured for `sfu`. The room's mode shows in the server's offer
 * (docs/media.md): `sfu` → K sendonly slot tracks, `mix` → one sendonly track (the mix, mixSlot 0),
 * `hybrid` → K slots + the mix (mixSlot K). `p2p` has no server media: no offer (test/p2p covers it).
 */

const K = 3;

type MediaOffer = Extract<ServerMessage, { op: 'media' }>;

/** Audio m-sections of an SDP the server sends on (slot and mix tracks; the mic is recvonly). */
function sendonlyAudio(sdp: string): number {
  return sdp
    .split(/\r?\n(?=m=)/)
    .filter((section) => section.startsWith('m=audio') && /\r?\na=sendonly\r?$/m.test(section)).length;
}

describe('room mode from join.options.mode (real media plane)', () => {
  let plane: PooledMediaPlane;
  let t: TestServer;
  const clients: RawClient[] = [];

  beforeAll(async () => {
    plane = createMediaPlane({
      room: { slots: K, announcedIp: '127.0.0.1', rtcMinPort: 46500, rtcMaxPort: 46599, mode: 'sfu' },
      pool: { workers: 1 },
    });
    await plane.pool.ready();
    t = await startTestServer({ signalling: { defaultRoomMode: 'sfu' } }, { mediaPlane: plane });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await t?.close();
    await plane?.close();
  });

  async function join(userId: string, room: string, mode?: 'sfu' | 'mix' | 'hybrid' | 'p2p'): Promise<{ client: RawClient; reply: ServerMessage }> {
    const client = await RawClient.connect(t.wsUrl);
    clients.push(client);
    await client.hello(await t.token(userId));
    const reply = await client.request({ op: 'join', room, ...(mode === undefined ? {} : { options: { mode, direct: true } }) });
    return { client, reply };
  }

  async function offerFor(client: RawClient): Promise<MediaOffer> {
    return client.waitOp('media', (m) => m.kind === 'offer', 10_000);
  }

  it("a room joined with mode 'mix' gets a mix room: one outgoing audio track, the mix in slot 0", async () => {
    const { client, reply } = await join('m1', 'room-mix', 'mix');
    expect(reply).toMatchObject({ op: 'joined', mode: 'mix' });
    const offer = await offerFor(client);
    expect(sendonlyAudio(offer.sdp ?? '')).toBe(1);
    expect(offer.options?.mixSlot).toBe(0);
  });

  it("a later joiner asking for 'sfu' gets the room's mode (mix)", async () => {
    const { client, reply } = await join('m2', 'room-mix', 'sfu');
    expect(reply).toMatchObject({ op: 'joined', mode: 'mix' });
    const offer = await offerFor(client);
    expect(sendonlyAudio(offer.sdp ?? '')).toBe(1);
  });

  it("the mix room's clock and work reach Prometheus (voxlink_room_mix_*)", async () => {
    const registry = plane.pool.metrics.registry;
    const ticks = async (): Promise<number> => {
      const text = await registry.getSingleMetricAsString('voxlink_room_mix_ticks_total');
      const line = text.split('\n').find((l) => l.startsWith('voxlink_room_mix_ticks_total{room="room-mix"}'));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const deadline = Date.now() + 10_000;
    while ((await ticks()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await ticks()).toBeGreaterThan(0);
    expect(await registry.getSingleMetricAsString('voxlink_room_mix_late_ticks_total')).toContain('room="room-mix"');
  });

  it("mode 'sfu' gets K slot tracks and no mix", async () => {
    const { client, reply } = await join('s1', 'room-sfu', 'sfu');
    expect(reply).toMatchObject({ op: 'joined', mode: 'sfu' });
    const offer = await offerFor(client);
    expect(sendonlyAudio(offer.sdp ?? '')).toBe(K);
    expect(offer.options?.mixSlot).toBeUndefined();
  });

  it("mode 'hybrid' on an sfu-configured server gets K slots plus the mix in slot K", async () => {
    const { client, reply } = await join('h1', 'room-hybrid', 'hybrid');
    expect(reply).toMatchObject({ op: 'joined', mode: 'hybrid' });
    const offer = await offerFor(client);
    expect(sendonlyAudio(offer.sdp ?? '')).toBe(K + 1);
    expect(offer.options?.mixSlot).toBe(K);
  });

  it("mode 'p2p' joins without a media room: the client is told to go direct, the server makes no offer", async () => {
    const { client, reply } = await join('p1', 'room-p2p', 'p2p');
    expect(reply).toMatchObject({ op: 'joined', mode: 'p2p' });
    expect(await client.waitOp('transport')).toMatchObject({ transport: 'direct' });
    await new Promise((r) => setTimeout(r, 300));
    expect(client.received.some((m) => m.op === 'media')).toBe(false);
    expect(plane.workerOf('room-p2p')).toBeUndefined();
  });

  it("the plane itself refuses roomMode 'p2p' (signalling's, never a media room's)", async () => {
    const grants = { publish: true, subscribe: true, record: false, admin: false };
    await expect(plane.join({ roomId: 'direct-p2p', participantId: 'x', name: 'x', grants, roomMode: 'p2p' })).rejects.toMatchObject({
      code: 'MEDIA_UNSUPPORTED',
    });
    expect(plane.workerOf('direct-p2p')).toBeUndefined();
  });
});
