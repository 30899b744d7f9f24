import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { isVoxError } from '../../src/errors.ts';
import { powerAt } from '../codec/signal.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, waitFor } from './harness.ts';

const SR = 48_000;
const TONES: Record<string, number> = { a: 440, b: 660, c: 880, d: 1200 };
/** A 0.3-amplitude sine has power 0.045; decoded Opus keeps most of it. */
const PRESENT = 0.01;
const ABSENT = 0.0005;

function udpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

/** Power of each test tone in `pcm`. */
function tonePowers(pcm: Float32Array): Record<string, number> {
  return Object.fromEntries(Object.entries(TONES).map(([id, f]) => [id, powerAt(pcm, SR, f)]));
}

describe('media room with three werift clients publishing tones', () => {
  let h: RoomHarness;
  let baselineUdp: number;

  beforeAll(async () => {
    baselineUdp = udpHandles();
    h = new RoomHarness({ roomId: 'tones', slots: 3, ...portRange(41000) });
    for (const id of ['a', 'b', 'c']) await h.join(id);
    // d may listen but not speak: its tone must never reach anyone.
    await h.join('d', { ...FULL_GRANTS, publish: false });
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const [id, c] of h.clients) {
      if (id === 'd') {
        // The server offered its mic m-line inactive; publishing is refused before any packet leaves.
        expect(() => c.publish(new ToneSource(TONES[id]))).not.toThrow();
      } else {
        c.publish(new ToneSource(TONES[id]));
      }
    }
    // Wait for a second of decoded audio from every expected speaker at every client (a fixed sleep
    // is not enough on a CPU-starved CI box, where publishers skip frames).
    await waitFor(
      () =>
        [...h.clients].every(([id, c]) =>
          ['a', 'b', 'c'].filter((p) => p !== id).every((p) => c.audioFrom(p, 1).length >= SR),
        ),
      20_000,
      'a second of audio from every speaker at every client',
    );
  }, 40_000);

  afterAll(async () => {
    await h?.close();
  });

  it('every client hears the others, never itself, and the slot map names who is heard', () => {
    for (const [id, c] of h.clients) {
      const expected = ['a', 'b', 'c'].filter((p) => p !== id);
      expect(c.slotMap.slots.filter((s) => s !== null).sort(), `slots of ${id}`).toEqual(expected);
      expect(c.heard().sort(), `heard by ${id}`).toEqual(expected);
      for (const other of expected) {
        const powers = tonePowers(c.audioFrom(other, 1));
        expect(powers[other], `${id} hears ${other}`).toBeGreaterThan(PRESENT);
        for (const [p, power] of Object.entries(powers)) {
          if (p !== other) expect(power, `${id}: ${other}'s audio carries ${p}`).toBeLessThan(ABSENT);
        }
      }
      // Its own voice never comes back on any slot; d's tone reaches nobody.
      for (let slot = 0; slot < c.slotCount; slot++) {
        const powers = tonePowers(c.audioOfSlot(slot, 2));
        if (id !== 'd') expect(powers[id], `${id} hears itself on slot ${slot}`).toBeLessThan(ABSENT);
        expect(powers.d).toBeLessThan(ABSENT);
      }
    }
    expect(h.errors).toEqual([]);
  });

  it('slot streams are continuous and the room counts what it forwarded', async () => {
    const c = h.clients.get('a')!;
    for (let slot = 0; slot < 2; slot++) {
      const st = c.slotStats(slot)!;
      // 2.5 s of 20 ms frames is 125; a CPU-starved box skips frames in the publisher (it never bursts stale audio).
      expect(st.packets).toBeGreaterThan(10);
      expect(st.timestampRegressions).toBe(0);
      expect(st.seqGaps).toBeLessThanOrEqual(2);
    }
    const before = h.room.stats();
    await sleep(500);
    const stats = h.room.stats();
    expect(stats.participants).toBe(4);
    expect(stats.packetsIn).toBeGreaterThan(100);
    // Each of the 3 publishers goes to the 3 others. Counted over a steady half second: packets that
    // arrived before the first slot mapping (start-up) were never forwarded.
    expect(stats.packetsOut - before.packetsOut).toBeGreaterThan((stats.packetsIn - before.packetsIn) * 2.5);
    // Same payloads out as in; the outgoing header carries fewer extensions (mid + level only).
    expect(stats.bytesOut / stats.packetsOut).toBeGreaterThan((0.7 * stats.bytesIn) / stats.packetsIn);
    expect(stats.bytesOut / stats.packetsOut).toBeLessThanOrEqual(stats.bytesIn / stats.packetsIn);
    expect(stats.lossPct).toBeLessThan(1);
    expect(stats.jitterMs).toBeGreaterThanOrEqual(0);
    expect(stats.offers - stats.reconnects).toBe(4); // one per participant
  });

  it('emits speaking events for the tones', () => {
    const speaking = h.roomEvents.filter((m) => m.op === 'speaking' && m.speaking).map((m) => (m as { participantId: string }).participantId);
    expect(new Set(speaking)).toEqual(new Set(['a', 'b', 'c']));
  });

  it('server-side mute stops forwarding at once and unmute brings the voice back', async () => {
    const b = h.clients.get('b')!;
    const slotOfA = b.slotMap.slotOf('a');
    expect(slotOfA).toBeGreaterThanOrEqual(0);
    let lastOnSlot = performance.now();
    let packetsOnSlot = 0;
    b.on('rtp', (p) => {
      if (p.slot !== slotOfA) return;
      lastOnSlot = p.arrivalMs;
      packetsOnSlot++;
    });
    await h.room.setMuted('a', true);
    await waitFor(() => b.slotMap.slotOf('a') < 0, 2000, 'a to leave b’s slots');
    expect(h.roomEvents.some((m) => m.op === 'speaking' && m.participantId === 'a' && !m.speaking)).toBe(true);
    // What was already in flight drains; after that a's slot stays silent (nobody else to put there).
    await waitFor(() => performance.now() - lastOnSlot > 300, 5000, 'a’s slot to go quiet');
    const count = packetsOnSlot;
    await sleep(600);
    expect(packetsOnSlot).toBe(count);
    await h.room.setMuted('a', false);
    await waitFor(() => b.slotMap.slotOf('a') >= 0, 2000, 'a back in b’s slots');
    b.clearRecordings();
    await waitFor(() => b.audioFrom('a').length >= SR / 2, 10_000, 'half a second of a again');
    expect(powerAt(b.audioFrom('a', 0.4), SR, TONES.a)).toBeGreaterThan(PRESENT);
  });

  it('a media reconnect gives one participant a fresh peer; audio resumes both ways, nobody else renegotiates', async () => {
    const c = h.clients.get('c')!;
    const b = h.clients.get('b')!;
    const offersOfB = b.offersReceived;
    await h.room.signal('c', { op: 'media', room: 'tones', kind: 'ice_restart' });
    await waitFor(() => c.offersReceived === 2, 5000, 'the restart offer');
    await c.connected(15_000);
    c.clearRecordings();
    b.clearRecordings();
    await waitFor(() => c.audioFrom('a').length >= SR / 2 && b.audioFrom('c').length >= SR / 2, 15_000, 'audio after reconnect');
    expect(powerAt(c.audioFrom('a', 0.4), SR, TONES.a)).toBeGreaterThan(PRESENT);
    expect(powerAt(b.audioFrom('c', 0.4), SR, TONES.c)).toBeGreaterThan(PRESENT);
    expect(b.offersReceived).toBe(offersOfB);
  });

  it('answers unknown participants and client offers with error codes', async () => {
    await expect(h.room.signal('nobody', { op: 'media', room: 'tones', kind: 'ice_restart' })).rejects.toSatisfy((e) =>
      isVoxError(e, 'MEDIA_UNKNOWN_PARTICIPANT'),
    );
    await expect(h.room.signal('a', { op: 'media', room: 'tones', kind: 'offer', sdp: 'v=0' })).rejects.toSatisfy((e) =>
      isVoxError(e, 'MEDIA_UNSUPPORTED'),
    );
    await expect(h.room.join({ roomId: 'tones', participantId: 'a', name: 'a', grants: FULL_GRANTS })).rejects.toSatisfy((e) =>
      isVoxError(e, 'MEDIA_ALREADY_JOINED'),
    );
  });

  it('leave and close free every peer, UDP socket and timer', async () => {
    await h.leave('d');
    expect(h.room.stats().participants).toBe(3);
    await h.close();
    await h.close(); // idempotent
    await expect(h.room.join({ roomId: 'tones', participantId: 'z', name: 'z', grants: FULL_GRANTS })).rejects.toSatisfy((e) =>
      isVoxError(e, 'CLOSED'),
    );
    // werift closes its sockets asynchronously after pc.close() resolves.
    await waitFor(() => udpHandles() <= baselineUdp, 3000, 'UDP sockets to close');
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(2);
  });
});
