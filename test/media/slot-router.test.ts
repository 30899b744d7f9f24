import { describe, expect, it } from 'vitest';
import { SlotRouter, type SlotBinding } from '../../src/media/slot-router.ts';
import { SlotStream } from '../../src/media/slot-stream.ts';

function bindings(subscriberId: string, k: number): SlotBinding[] {
  return Array.from({ length: k }, (_, slot) => ({ subscriberId, slot, stream: new SlotStream({ ssrc: 1000 + slot }) }));
}

const everyone = (): boolean => true;

describe('SlotRouter', () => {
  it('gives each subscriber the top K without themself; the next one fills in', () => {
    const r = new SlotRouter(2);
    for (const id of ['a', 'b', 'c', 'd']) r.addSubscriber(id, bindings(id, 2));
    const changed = r.update(['a', 'b', 'c', 'd'], everyone);
    expect(changed.sort()).toEqual(['a', 'b', 'c', 'd']);
    const occupants = (id: string): (string | null)[] => r.assignments(id).map((s) => s.participantId);
    expect(occupants('a').sort()).toEqual(['b', 'c']);
    expect(occupants('b').sort()).toEqual(['a', 'c']);
    expect(occupants('c').sort()).toEqual(['a', 'b']);
    expect(occupants('d').sort()).toEqual(['a', 'b']);
    expect(r.routes('a').map((b) => b.subscriberId).sort()).toEqual(['b', 'c', 'd']);
    expect(r.routes('d')).toEqual([]);
  });

  it('without fill-in (hybrid rooms) a top-K subscriber gets K − 1 slots, never speaker K+1', () => {
    const r = new SlotRouter(2, { fillIn: false });
    for (const id of ['a', 'b', 'c', 'd']) r.addSubscriber(id, bindings(id, 2));
    r.update(['a', 'b', 'c', 'd'], everyone);
    const occupants = (id: string): (string | null)[] => r.assignments(id).map((s) => s.participantId);
    // a and b are the room's top 2: each hears the other in a slot and c (rank 3) only in the mix.
    expect(occupants('a').filter(Boolean)).toEqual(['b']);
    expect(occupants('b').filter(Boolean)).toEqual(['a']);
    expect(occupants('c').sort()).toEqual(['a', 'b']);
    expect(occupants('d').sort()).toEqual(['a', 'b']);
    expect(r.routes('c')).toEqual([]);
    // The top K skips ineligible publishers for everyone alike.
    r.update(['a', 'b', 'c', 'd'], (id) => id !== 'b');
    expect(occupants('a').filter(Boolean)).toEqual(['c']);
    expect(occupants('c').filter(Boolean)).toEqual(['a']);
    expect(r.routes('d')).toEqual([]);
  });

  it('moves as few slots as possible when the ranking changes, and reports only changed subscribers', () => {
    const r = new SlotRouter(2);
    r.addSubscriber('x', bindings('x', 2));
    r.addSubscriber('a', bindings('a', 2));
    r.update(['a', 'b', 'c'], everyone);
    const before = r.assignments('x');
    // b and a swap order: same set, nothing moves, nobody is told.
    expect(r.update(['b', 'a', 'c'], everyone)).toEqual([]);
    // c replaces a: only a's slot changes for x; b stays where it was. Subscriber a already
    // had {b, c} (it never hears itself), so it is not told anything.
    expect(r.update(['b', 'c', 'a'], everyone)).toEqual(['x']);
    const after = r.assignments('x');
    const bSlot = before.find((s) => s.participantId === 'b')!.slot;
    expect(after.find((s) => s.participantId === 'b')!.slot).toBe(bSlot);
    expect(after.find((s) => s.slot !== bSlot)!.participantId).toBe('c');
  });

  it('never forwards ineligible publishers (no grant, muted) and empties slots when nobody is left', () => {
    const r = new SlotRouter(3);
    r.addSubscriber('s', bindings('s', 3));
    const muted = new Set(['b']);
    r.update(['a', 'b'], (id) => !muted.has(id));
    expect(r.assignments('s').map((a) => a.participantId)).toEqual(['a', null, null]);
    expect(r.routes('b')).toEqual([]);
    r.update([], everyone);
    expect(r.assignments('s').map((a) => a.participantId)).toEqual([null, null, null]);
  });

  it('drops routes of a removed subscriber', () => {
    const r = new SlotRouter(1);
    r.addSubscriber('s', bindings('s', 1));
    r.update(['a'], everyone);
    expect(r.routes('a')).toHaveLength(1);
    r.removeSubscriber('s');
    expect(r.routes('a')).toHaveLength(0);
    expect(() => r.addSubscriber('t', bindings('t', 2))).toThrow(RangeError);
  });

  it('fills from the first slot: a newcomer takes the lowest free slot, a speaker who stays keeps theirs', () => {
    const r = new SlotRouter(3);
    r.addSubscriber('s', bindings('s', 3));
    const occupants = (): (string | null)[] => r.assignments('s').map((a) => a.participantId);
    r.update(['a', 'b', 'c'], everyone);
    expect(occupants()).toEqual(['a', 'b', 'c']);
    // a and b leave (or fall silent); c keeps slot 3: no move while c speaks.
    expect(r.update(['c'], everyone)).toEqual(['s']);
    expect(occupants()).toEqual([null, null, 'c']);
    // The new participant sits in slot 1, not after c.
    r.update(['c', 'd'], everyone);
    expect(occupants()).toEqual(['d', null, 'c']);
    r.update(['e', 'c', 'd'], everyone);
    expect(occupants()).toEqual(['d', 'e', 'c']);
  });

  it('several newcomers at once: the loudest gets the lowest slot; a fresh subscriber is packed from slot 1', () => {
    const r = new SlotRouter(4);
    r.addSubscriber('s', bindings('s', 4));
    r.update(['x'], everyone);
    expect(r.assignments('s').map((a) => a.participantId)).toEqual(['x', null, null, null]);
    r.update(['p', 'x', 'q'], everyone);
    expect(r.assignments('s').map((a) => a.participantId)).toEqual(['x', 'p', 'q', null]);
    r.addSubscriber('late', bindings('late', 4));
    r.update(['q', 'p', 'x'], everyone);
    expect(r.assignments('late').map((a) => a.participantId)).toEqual(['q', 'p', 'x', null]);
  });

  it('chooses by slot index whatever order the bindings come in, and lists assignments by slot', () => {
    const r = new SlotRouter(3);
    r.addSubscriber('s', bindings('s', 3).reverse());
    r.update(['a'], everyone);
    expect(r.assignments('s')).toEqual([
      { slot: 0, participantId: 'a' },
      { slot: 1, participantId: null },
      { slot: 2, participantId: null },
    ]);
    r.update(['a', 'b'], everyone);
    expect(r.assignments('s').map((a) => a.participantId)).toEqual(['a', 'b', null]);
  });
});
