import { describe, expect, it } from 'vitest';
import { TypedEmitter } from '../../src/client/index.ts';

describe('TypedEmitter', () => {
  it('keeps delivering to other listeners when one throws, and reports the throw', () => {
    const reported: unknown[] = [];
    const emitter = new TypedEmitter<{ tick: [n: number] }>((error) => reported.push(error));
    const seen: number[] = [];
    emitter.on('tick', () => {
      throw new Error('app bug');
    });
    emitter.on('tick', (n) => seen.push(n));
    emitter.emit('tick', 1);
    emitter.emit('tick', 2);
    expect(seen).toEqual([1, 2]);
    expect(reported).toHaveLength(2);
    expect((reported[0] as Error).message).toBe('app bug');
  });

  it('once() fires a single time and off() removes a listener, even mid-emit', () => {
    const emitter = new TypedEmitter<{ e: [] }>(() => {});
    let once = 0;
    let other = 0;
    const remover = () => emitter.off('e', counter);
    const counter = () => other++;
    emitter.once('e', () => once++);
    emitter.on('e', remover);
    emitter.on('e', counter);
    emitter.emit('e');
    emitter.emit('e');
    expect(once).toBe(1);
    // Removed during the first emit: the snapshot still reached it once, never again.
    expect(other).toBe(1);
    expect(emitter.listenerCount('e')).toBe(1);
  });
});
