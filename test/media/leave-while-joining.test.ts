import { afterAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { isVoxError } from '../../src/errors.ts';
import { portAllocator } from '../../src/media/port-allocator.ts';
import { powerAt } from '../codec/signal.ts';
import { RoomHarness, portRange, sleep, waitFor } from './harness.ts';

const SR = 48_000;
const PORTS = portRange(46200, 200);

/**
 * Issue 17's leak: a participant who leaves while its peer is still being set up (port claim,
 * peer creation, the offer's ICE gathering) must not stay behind with its peer and port.
 */
describe('leaving while the media join is under way', () => {
  const h = new RoomHarness({ roomId: 'leave-joining', slots: 3, ...PORTS });
  const allocator = portAllocator(PORTS.rtcMinPort, PORTS.rtcMaxPort);

  afterAll(async () => {
    await h.close();
  });

  it('cancels the join, frees its peer and port, and the others still hear each other', async () => {
    const a = await h.join('a');
    const b = await h.join('b');
    await Promise.all([a.connected(), b.connected()]);
    a.publish(new ToneSource(440));
    b.publish(new ToneSource(660));
    await waitFor(() => a.heard().includes('b') && b.heard().includes('a'), 10_000, 'a and b to hear each other');
    expect(h.room.stats()).toMatchObject({ participants: 2, peers: 2, portsInUse: 2 });
    expect(allocator.inUse).toBe(2);

    // Leave at different points of the join: at once (port claim, peer creation), and a few ms
    // later (the offer gathering its candidates). Each round several times.
    const delaysMs = [0, 0, 1, 2, 5, 10, 20, 0, 3, 8];
    const outcomes: string[] = [];
    for (let i = 0; i < delaysMs.length; i++) {
      const id = `j${i}`;
      const join = h.join(id, undefined, { decode: false }).then(
        () => 'joined',
        (error: unknown) => (isVoxError(error, 'MEDIA_UNKNOWN_PARTICIPANT') ? 'cancelled' : `failed: ${String(error)}`),
      );
      if (delaysMs[i]! > 0) await sleep(delaysMs[i]!);
      await h.room.leave(id);
      // The join settles (no hang on a closed peer's gathering), as cancelled or — if the leave
      // came after it finished — joined, and then that leave removed it.
      const outcome = await Promise.race([join, sleep(10_000).then(() => 'hung')]);
      outcomes.push(outcome);
      // One leave, as the media plane sends it: nothing of the participant may stay in the room.
      expect(h.room.stats().participants, `${id} after ${outcome}`).toBe(2);
      const client = h.clients.get(id);
      h.clients.delete(id);
      await client?.close();
    }
    expect(outcomes.filter((o) => o !== 'joined' && o !== 'cancelled')).toEqual([]);
    // Leaving at once always lands in the join's set-up.
    expect(outcomes[0]).toBe('cancelled');

    // Nothing of the cancelled joins is left: no peer, no port claim, and not in the room.
    await waitFor(() => h.room.stats().peers === 2, 5000, 'the cancelled peers to close');
    expect(h.room.stats()).toMatchObject({ participants: 2, peers: 2, portsInUse: 2 });
    expect(allocator.inUse).toBe(2);

    // a and b still hear each other, the right tone each.
    a.clearRecordings();
    b.clearRecordings();
    await waitFor(() => a.audioFrom('b').length >= SR / 2 && b.audioFrom('a').length >= SR / 2, 10_000, 'half a second of audio each way');
    expect(powerAt(a.audioFrom('b', 0.5), SR, 660)).toBeGreaterThan(0.01);
    expect(powerAt(b.audioFrom('a', 0.5), SR, 440)).toBeGreaterThan(0.01);
    expect(powerAt(a.audioFrom('b', 0.5), SR, 440)).toBeLessThan(0.001);

    await h.leave('a');
    await h.leave('b');
    expect(h.room.stats()).toMatchObject({ participants: 0, peers: 0, portsInUse: 0 });
    expect(allocator.inUse).toBe(0);
  }, 90_000);

  it('a room closed during a join closes the joining peer too', async () => {
    const { createMediaRoom } = await import('../../src/media/room.ts');
    const ports = portRange(46400, 50);
    const room = createMediaRoom({ roomId: 'close-joining', slots: 3, announcedIp: '127.0.0.1', mode: 'sfu', ...ports }, () => undefined);
    const join = room.join({ roomId: 'close-joining', participantId: 'x', name: 'x', grants: { publish: true, subscribe: true, record: false, admin: false } });
    const settled = join.then(
      () => 'joined',
      (error: unknown) => (isVoxError(error, 'CLOSED') ? 'closed' : `failed: ${String(error)}`),
    );
    await room.close();
    expect(await settled).toBe('closed');
    expect(room.stats()).toMatchObject({ participants: 0, peers: 0, portsInUse: 0 });
    expect(portAllocator(ports.rtcMinPort, ports.rtcMaxPort).inUse).toBe(0);
  }, 30_000);
});
