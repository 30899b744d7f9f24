import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RoomMetrics } from '../../src/rooms/metrics.ts';
import type { MediaRoomStats } from '../../src/rooms/media-types.ts';

function stats(mix?: { ticks: number; late: number; skipped: number; busyMs: number; encodes: number; plc: number; fec: number; dred: number; latePackets: number }): MediaRoomStats {
  return {
    participants: 3,
    packetsIn: 100,
    packetsOut: 200,
    bytesIn: 1000,
    bytesOut: 2000,
    lossPct: 0,
    jitterMs: 4,
    rttMs: 20,
    slotSwitches: 1,
    offers: 3,
    reconnects: 0,
    packetsDropped: 0,
    ...(mix === undefined
      ? {}
      : {
          mix: {
            mode: 'mix' as const,
            participants: 3,
            forwarded: 0,
            packetsIn: 100,
            packetsOut: 150,
            bytesOut: 9000,
            mixer: {
              inputs: 3,
              ticks: mix.ticks,
              speakers: 1,
              encodes: mix.encodes,
              encodesLastTick: 2,
              decodeMs: 1,
              mixMs: 1,
              encodeMs: 1,
              lastTick: { decodeMs: 0.1, mixMs: 0.01, encodeMs: 0.3 },
              concealed: mix.plc,
              fecRecovered: mix.fec,
              dredRecovered: mix.dred,
              lost: mix.plc + mix.fec + mix.dred,
              late: mix.latePackets,
              decodeErrors: 0,
              limitedFrames: 0,
              dredListeners: 0,
              dredEncodes: mix.ticks,
              dredPackets: 2 * mix.ticks,
              dredEncodeMs: 0,
            },
            clock: { ticks: mix.ticks, lateTicks: mix.late, skippedTicks: mix.skipped, maxLatenessMs: 3, busyMs: mix.busyMs },
          },
        }),
  };
}

async function value(metrics: RoomMetrics, name: string, labels: string): Promise<number | undefined> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('RoomMetrics: mixer clock and work', () => {
  it('exports late/skipped ticks, busy time, encodes and recovered frames as counters per room', async () => {
    const m = new RoomMetrics(new Registry());
    m.roomStats('r1', stats({ ticks: 50, late: 2, skipped: 1, busyMs: 400, encodes: 100, plc: 3, fec: 4, dred: 1, latePackets: 2 }));
    m.roomStats('r1', stats({ ticks: 100, late: 5, skipped: 1, busyMs: 900, encodes: 210, plc: 3, fec: 6, dred: 1, latePackets: 3 }));
    expect(await value(m, 'voxlink_room_mix_ticks_total', 'room="r1"')).toBe(100);
    expect(await value(m, 'voxlink_room_mix_late_ticks_total', 'room="r1"')).toBe(5);
    expect(await value(m, 'voxlink_room_mix_skipped_ticks_total', 'room="r1"')).toBe(1);
    expect(await value(m, 'voxlink_room_mix_busy_seconds_total', 'room="r1"')).toBeCloseTo(0.9, 6);
    expect(await value(m, 'voxlink_room_mix_encodes_total', 'room="r1"')).toBe(210);
    expect(await value(m, 'voxlink_room_mix_recovered_frames_total', 'room="r1",recovery="fec"')).toBe(6);
    expect(await value(m, 'voxlink_room_mix_recovered_frames_total', 'room="r1",recovery="plc"')).toBe(3);
    expect(await value(m, 'voxlink_room_mix_late_packets_total', 'room="r1"')).toBe(3);
    // DRED in the mix: the fixture has one DRED encode per tick, for two listeners.
    expect(await value(m, 'voxlink_room_mix_dred_encodes_total', 'room="r1"')).toBe(100);
    expect(await value(m, 'voxlink_room_mix_dred_packets_total', 'room="r1"')).toBe(200);
  });

  it('a mixer that closes and comes back (sfu rooms) adds its new totals; closing the room drops its series', async () => {
    const m = new RoomMetrics(new Registry());
    m.roomStats('r2', stats({ ticks: 40, late: 1, skipped: 0, busyMs: 100, encodes: 40, plc: 0, fec: 0, dred: 0, latePackets: 0 }));
    m.roomStats('r2', stats()); // the last mix listener left: no mixer
    m.roomStats('r2', stats({ ticks: 10, late: 0, skipped: 0, busyMs: 20, encodes: 10, plc: 1, fec: 0, dred: 0, latePackets: 0 }));
    expect(await value(m, 'voxlink_room_mix_ticks_total', 'room="r2"')).toBe(50);
    expect(await value(m, 'voxlink_room_mix_encodes_total', 'room="r2"')).toBe(50);
    m.roomClosed('r2');
    expect(await value(m, 'voxlink_room_mix_ticks_total', 'room="r2"')).toBeUndefined();
    expect(await value(m, 'voxlink_room_mix_recovered_frames_total', 'room="r2",recovery="plc"')).toBeUndefined();
  });

  it('exports running recordings: bytes per room and how many rooms record', async () => {
    const m = new RoomMetrics(new Registry());
    const plain = async (name: string): Promise<number> => {
      const text = await m.registry.getSingleMetricAsString(name);
      return Number(text.trim().split('\n').at(-1)!.split(' ').at(-1));
    };
    m.roomStats('a', { ...stats(), recording: { id: 'x1234567', bytes: 4096 } });
    m.roomStats('b', { ...stats(), recording: { id: 'y1234567', bytes: 100 } });
    expect(await value(m, 'voxlink_room_recording_bytes', 'room="a"')).toBe(4096);
    expect(await plain('voxlink_recordings_active')).toBe(2);
    m.roomStats('a', stats()); // stopped
    expect(await value(m, 'voxlink_room_recording_bytes', 'room="a"')).toBeUndefined();
    expect(await plain('voxlink_recordings_active')).toBe(1);
    m.roomClosed('b');
    expect(await value(m, 'voxlink_room_recording_bytes', 'room="b"')).toBeUndefined();
    expect(await plain('voxlink_recordings_active')).toBe(0);
  });
});
