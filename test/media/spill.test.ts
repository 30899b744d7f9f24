import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OpusDecoder, readOggOpus } from '../../src/codec/index.ts';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import type { ServerMediaMessage } from '../../src/rooms/media-types.ts';
import { powerAt } from '../codec/signal.ts';

/**
 * One room over two media workers (docs/media.md "Rooms over several workers"), end to end
 * through the MediaPlane with the real worker entry and werift clients publishing Opus tones.
 * Capacity 4 peers per worker: a, b, c, d join the home worker, e and f spill onto the other.
 * Publishers a and d (home) and e (spill) each send their own tone; b, c, f only listen. Every
 * listener must hear every publisher but themself, each on the slot the `slots` messages name,
 * with the publisher's frequency, and no publisher may hear its own tone. Then the spill worker
 * is killed (e and f come back), then the home worker (everyone comes back).
 */

const SR = 48_000;
const ROOM = 'town-hall';
const TONES: Record<string, number> = { a: 440, d: 660, e: 880 };
const ORDER = ['a', 'b', 'c', 'd', 'e', 'f'];
/** A 0.3-amplitude sine has power 0.045; decoded Opus keeps most of it. */
const PRESENT = 0.01;
/** Power at a frequency nobody sends to this listener: leakage of the other tones only. */
const ABSENT = 0.002;

/** Who the client's slots carry now, as its `slots` messages said. */
function slotOccupants(c: NodeMediaClient): (string | null)[] {
  return [...c.slotMap.slots];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('a room spilled over two workers (capacity 4)', () => {
  let plane: PooledMediaPlane;
  const clients = new Map<string, NodeMediaClient>();
  const errors: unknown[] = [];
  const reconnects: string[] = [];
  const speaking = new Set<string>();

  const recordingDir = mkdtempSync(join(tmpdir(), 'voxlink-spill-'));

  afterAll(async () => {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await plane?.close();
    rmSync(recordingDir, { recursive: true, force: true });
  });

  /** Decodes one recorded track (Ogg Opus) to 48 kHz mono PCM. */
  function decodeTrack(recordingId: string, file: string): Float32Array {
    const ogg = readOggOpus(readFileSync(join(recordingDir, recordingId, file)));
    const decoder = new OpusDecoder({ sampleRate: SR });
    const chunks = ogg.packets.map((packet) => decoder.decode(packet).slice());
    decoder.close();
    const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(callState())}`);
      await sleep(100);
    }
  }

  function publishersFor(listener: string): string[] {
    return Object.keys(TONES).filter((id) => id !== listener);
  }

  /** Whether the listener holds ≥ 0.1 s of audio from each other publisher, carrying that publisher's tone. */
  function hearsEveryone(listener: string): boolean {
    const c = clients.get(listener)!;
    return publishersFor(listener).every((other) => {
      const pcm = c.audioFrom(other, 0.5);
      return pcm.length >= 0.1 * SR && powerAt(pcm, SR, TONES[other]!) > PRESENT;
    });
  }

  /** The power of the listener's own tone over everything its slots carried lately (0 for non-publishers). */
  function ownTonePower(listener: string): number {
    const own = TONES[listener];
    if (own === undefined) return 0;
    const c = clients.get(listener)!;
    let max = 0;
    for (let k = 0; k < c.slotCount; k++) max = Math.max(max, powerAt(c.audioOfSlot(k, 1), SR, own));
    return max;
  }

  function callState(): unknown {
    return {
      errors: errors.map(String),
      shards: plane.shardsOf(ROOM),
      clients: [...clients.entries()].map(([id, c]) => ({
        id,
        worker: plane.workerOfParticipant(ROOM, id),
        state: c.pc.connectionState,
        slots: c.slotMap.slots,
        heard: publishersFor(id).map((o) => [o, c.audioFrom(o, 0.5).length, powerAt(c.audioFrom(o, 0.5), SR, TONES[o]!).toFixed(4)]),
      })),
    };
  }

  function connect(id: string): NodeMediaClient {
    const client = new NodeMediaClient({
      room: ROOM,
      signal: {
        send: (message) => {
          plane.signal(ROOM, id, message).catch((error: unknown) => errors.push(error));
        },
      },
    });
    clients.set(id, client);
    return client;
  }

  async function everyoneHearsEveryone(timeoutMs: number, what: string): Promise<void> {
    await waitFor(() => ORDER.every(hearsEveryone), timeoutMs, what);
    for (const id of ORDER) expect(ownTonePower(id), `${id} hears its own tone`).toBeLessThan(ABSENT);
    // What the slots messages say matches what is heard: nobody's slot names themself.
    for (const [id, c] of clients) expect(slotOccupants(c)).not.toContain(id);
  }

  it('everyone hears the right tones across workers, never themself; a dead spill worker, then a dead home worker, and they hear again', async () => {
    plane = createMediaPlane({
      room: { slots: 3, announcedIp: '127.0.0.1', rtcMinPort: 56400, rtcMaxPort: 56799, mode: 'sfu', recordingDir },
      pool: { workers: 2 },
      roomWorkerCapacity: 4,
    });
    const deliver = (participantId: string, message: ServerMediaMessage): void => {
      const client = clients.get(participantId);
      if (client === undefined) return;
      if (message.op === 'media_reconnect') reconnects.push(participantId);
      client.handle(message).catch((error: unknown) => errors.push(error));
    };
    plane.attach({
      toParticipant: (_room, participantId, message) => deliver(participantId, message),
      toRoom: (_room, message) => {
        if (message.op === 'speaking' && message.speaking) speaking.add(message.participantId);
        for (const id of clients.keys()) deliver(id, message);
      },
    });
    await plane.pool.ready();

    for (const id of ORDER) {
      const client = connect(id);
      const publish = TONES[id] !== undefined;
      await plane.join({ roomId: ROOM, participantId: id, name: id, grants: { publish, subscribe: true, record: false, admin: false } });
      await client.connected();
      if (publish) client.publish(new ToneSource(TONES[id]!));
    }
    const shards = plane.shardsOf(ROOM);
    expect(shards.map((s) => [s.home, s.participants])).toEqual([
      [true, 4],
      [false, 2],
    ]);
    expect(shards[0]!.threadId).not.toBe(shards[1]!.threadId);
    const home = plane.workerOf(ROOM)!;
    expect(ORDER.map((id) => plane.workerOfParticipant(ROOM, id) === home)).toEqual([true, true, true, true, false, false]);

    await everyoneHearsEveryone(20_000, 'everyone hears every other publisher');
    // The home ranks everyone, spilled publishers included, and tells the whole room who speaks.
    expect([...speaking].sort()).toEqual(['a', 'd', 'e']);
    // Each worker reports its share of the room.
    const perWorker = await plane.pool.metrics.registry.getSingleMetricAsString('voxlink_room_worker_participants');
    expect(perWorker).toContain(`voxlink_room_worker_participants{room="${ROOM}",worker="${shards[0]!.threadId}"} 4`);
    expect(perWorker).toContain(`voxlink_room_worker_participants{room="${ROOM}",worker="${shards[1]!.threadId}"} 2`);

    // The recorder stays home and records the spilled publisher too, from the link.
    await plane.record(ROOM, 'b', 'start');
    await sleep(2500);
    const manifest = (await plane.record(ROOM, 'b', 'stop'))!;
    const tracks = new Map(manifest.files.map((f) => [f.participantId, f]));
    expect([...tracks.keys()].sort()).toEqual(['a', 'd', 'e']);
    expect(tracks.get('e')!.name).toBe('e');
    for (const id of ['a', 'd', 'e']) {
      const pcm = decodeTrack(manifest.id, tracks.get(id)!.file);
      expect(pcm.length, `${id}'s recorded track`).toBeGreaterThan(SR);
      expect(powerAt(pcm.subarray(pcm.length - SR), SR, TONES[id]!), `${id}'s recorded tone`).toBeGreaterThan(PRESENT);
    }

    // Mute the spilled publisher: nobody hears e any more, and its slots go (slots messages).
    await plane.setMuted(ROOM, 'e', true);
    for (const c of clients.values()) c.clearRecordings();
    await sleep(1500);
    for (const id of ['a', 'b', 'c', 'd', 'f']) {
      expect(powerAt(clients.get(id)!.audioFrom('e', 1), SR, TONES.e!), `${id} still hears muted e`).toBeLessThan(ABSENT);
      expect(slotOccupants(clients.get(id)!)).not.toContain('e');
    }
    await plane.setMuted(ROOM, 'e', false);
    await everyoneHearsEveryone(10_000, 'e heard again after unmute');

    // The spill worker dies: only e and f reconnect, and everyone hears everyone again.
    const spillThread = plane.shardsOf(ROOM)[1]!.threadId;
    await plane.pool.threads.find((t) => t.threadId === spillThread)!.terminate();
    for (const c of clients.values()) c.clearRecordings();
    await everyoneHearsEveryone(30_000, 'everyone hears everyone after the spill worker died');
    expect(reconnects.sort()).toEqual(['e', 'f']);
    expect(plane.workerOf(ROOM)).toBe(home);

    // The home worker dies: the whole room moves, everyone reconnects and hears again.
    reconnects.length = 0;
    await plane.pool.threads.find((t) => t.threadId === home)!.terminate();
    for (const c of clients.values()) c.clearRecordings();
    await everyoneHearsEveryone(40_000, 'everyone hears everyone after the home worker died');
    expect(reconnects.sort()).toEqual(ORDER);
    expect(plane.workerOf(ROOM)).not.toBe(home);
    expect(errors).toEqual([]);

    for (const id of ORDER) await plane.leave(ROOM, id);
    expect(plane.stats().rooms).toBe(0);
  }, 150_000);
});
