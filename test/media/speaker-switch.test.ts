import { afterAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { powerAt } from '../codec/signal.ts';
import { FULL_GRANTS, RoomHarness, portRange, sleep, stallMonitor, waitFor } from './harness.ts';

const SR = 48_000;
const TONES = { a: 440, b: 660, c: 880 } as const;
type Speaker = keyof typeof TONES;
const LOUD = 0.5; // ≈ -9 dBov
const QUIET = 0.01; // ≈ -43 dBov: present, ranked, but clearly below the loud one
/** Smoothing (250 ms) + margin + one rank tick + delivery, on an idle machine well under this. */
const MAX_SWITCH_MS = 1000;

describe('speaker switching with one slot', () => {
  const h = new RoomHarness({ roomId: 'switch', slots: 1, ...portRange(41400) });

  afterAll(async () => {
    await h.close();
  });

  it('the slot follows the loudest speaker, without flapping, as one continuous stream', async () => {
    const sources = new Map<Speaker, ToneSource>();
    for (const id of Object.keys(TONES) as Speaker[]) {
      // Speakers only publish: no subscribe grant means no slots in their offer.
      const c = await h.join(id, { ...FULL_GRANTS, subscribe: false });
      await c.connected();
      expect(c.slotCount).toBe(0);
      sources.set(id, new ToneSource(TONES[id], { gain: id === 'a' ? LOUD : QUIET }));
    }
    const listener = await h.join('x', { ...FULL_GRANTS, publish: false });
    await listener.connected();
    const changes: { at: number; who: string | null }[] = [];
    listener.on('slots', (slots) => changes.push({ at: performance.now(), who: slots[0] }));
    const ssrcs = new Set<number>();
    listener.on('rtp', (p) => ssrcs.add(p.ssrc));
    for (const [id, src] of sources) h.clients.get(id)!.publish(src);
    await waitFor(() => listener.slotMap.occupant(0) === 'a', 10_000, 'a, the loudest, in the slot');

    const stalls = stallMonitor();
    const order: Speaker[] = ['b', 'c', 'a'];
    for (const [i, who] of order.entries()) {
      for (const [id, src] of sources) src.gain = id === who ? LOUD : QUIET;
      const start = performance.now();
      const changesBefore = changes.length;
      await waitFor(() => listener.slotMap.occupant(0) === who, 10_000, `${who} in the slot`);
      const switchMs = changes[changes.length - 1].at - start;
      expect(switchMs, `phase ${i}: time to switch to ${who}`).toBeLessThan(MAX_SWITCH_MS + stalls.maxMs());
      // Let what was in flight from the previous speaker drain, then listen to the slot.
      await sleep(400);
      listener.clearRecordings();
      await waitFor(() => listener.audioOfSlot(0).length >= 0.6 * SR, 10_000, 'audio on the slot');
      const pcm = listener.audioOfSlot(0, 0.6);
      const heard = powerAt(pcm, SR, TONES[who]);
      expect(heard, `phase ${i}: ${who} heard`).toBeGreaterThan(0.02);
      for (const other of Object.keys(TONES) as Speaker[]) {
        if (other !== who) expect(powerAt(pcm, SR, TONES[other]), `phase ${i}: ${other} absent`).toBeLessThan(heard / 20);
      }
      // No flapping: the slot moves to the new loudest and stays, however long we listened. On a
      // CPU-starved box a publisher can stall past the idle threshold and let the third speaker
      // in for a moment; that is one intermediate step, never a return to an earlier occupant.
      const seq = [order[i - 1] ?? 'a', ...changes.slice(changesBefore).map((c) => c.who)];
      expect(new Set(seq).size, `phase ${i} slot sequence ${seq.join(' → ')}`).toBe(seq.length);
      expect(seq.length, `phase ${i} slot sequence ${seq.join(' → ')}`).toBeLessThanOrEqual(3);
      expect(seq[seq.length - 1]).toBe(who);
    }
    stalls.stop();

    const st = listener.slotStats(0)!;
    expect(ssrcs.size).toBe(1); // one SSRC for the slot, whoever speaks
    expect(st.seqGaps).toBe(0);
    expect(st.timestampRegressions).toBe(0);
    expect(st.duplicates).toBe(0);
    expect(h.room.stats().slotSwitches).toBeGreaterThanOrEqual(4);
  }, 90_000);
});
