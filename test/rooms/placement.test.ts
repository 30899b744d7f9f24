import { describe, expect, it } from 'vitest';
import { loadScore, pickWorker, type WorkerLoad } from '../../src/rooms/placement.ts';

const load = (threadId: number, rest: Partial<WorkerLoad>): WorkerLoad => ({
  threadId,
  rooms: 0,
  participants: 0,
  pps: 0,
  elu: 0,
  udpSockets: 0,
  placedSinceReport: 0,
  ...rest,
});

describe('placement by measured load', () => {
  it('picks the thread with less measured load even when it hosts more rooms', () => {
    const busyFewRooms = load(1, { rooms: 1, participants: 200, pps: 9000, elu: 0.6 });
    const idleManyRooms = load(2, { rooms: 12, participants: 24, pps: 600, elu: 0.05 });
    expect(pickWorker([busyFewRooms, idleManyRooms])?.threadId).toBe(2);
  });

  it('counts packets per second, not only event-loop time', () => {
    const sameElu = { elu: 0.2, rooms: 3 };
    expect(pickWorker([load(1, { ...sameElu, pps: 15_000 }), load(2, { ...sameElu, pps: 1000 })])?.threadId).toBe(2);
    expect(loadScore(load(1, { pps: 20_000 }), { ppsCapacity: 20_000 })).toBeCloseTo(1);
  });

  it('spreads a burst of rooms placed within one report interval', () => {
    const loads = [load(1, {}), load(2, {}), load(3, {})];
    const placed: number[] = [];
    for (let i = 0; i < 6; i++) {
      const best = pickWorker(loads)!;
      best.placedSinceReport += 1;
      placed.push(best.threadId);
    }
    expect(placed.sort()).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('breaks ties by fewer rooms, then lower thread id, and returns null without threads', () => {
    expect(pickWorker([load(5, { rooms: 2 }), load(7, { rooms: 1 })])?.threadId).toBe(7);
    expect(pickWorker([load(7, {}), load(5, {})])?.threadId).toBe(5);
    expect(pickWorker([])).toBeNull();
  });
});
