import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ALL_ROOMS_LABEL, RoomMetrics } from '../../src/rooms/metrics.ts';
import type { MediaRoomStats } from '../../src/rooms/media-types.ts';

/**
 * `metrics.roomLabels` (docs/configuration.md "Metrics"): on, each room is its own series; off,
 * no room name reaches the text: counters are summed over rooms, participants and recording
 * bytes summed over live rooms, loss/jitter/RTT averaged over them, all under room="_all".
 */

const stats = (over: Partial<MediaRoomStats>): MediaRoomStats => ({
  participants: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, lossPct: 0, jitterMs: 0, rttMs: 0,
  slotSwitches: 0, offers: 0, reconnects: 0, packetsDropped: 0, ...over,
});

async function feed(roomLabels: boolean): Promise<string> {
  const registry = new Registry();
  const m = new RoomMetrics(registry, { roomLabels });
  m.roomStats('team/alpha', stats({ participants: 2, packetsIn: 100, lossPct: 2, rttMs: 40, recording: { id: 'r1', bytes: 1000 } }));
  m.roomStats('team/beta', stats({ participants: 3, packetsIn: 50, lossPct: 4, rttMs: 80 }));
  m.roomStats('team/alpha', stats({ participants: 2, packetsIn: 160, lossPct: 2, rttMs: 40, recording: { id: 'r1', bytes: 1500 } }));
  return registry.metrics();
}

describe('metrics.roomLabels', () => {
  it('on: one series per room, named', async () => {
    const text = await feed(true);
    expect(text).toContain('voxlink_room_participants{room="team/alpha"} 2');
    expect(text).toContain('voxlink_room_packets_in_total{room="team/beta"} 50');
  });

  it('off: no room names; sums and means under room="_all"; a closed room leaves the gauges, not the counters', async () => {
    const registry = new Registry();
    const m = new RoomMetrics(registry, { roomLabels: false });
    m.roomStats('team/alpha', stats({ participants: 2, packetsIn: 100, lossPct: 2, rttMs: 40, recording: { id: 'r1', bytes: 1000 } }));
    m.roomStats('team/beta', stats({ participants: 3, packetsIn: 50, lossPct: 4, rttMs: 80 }));
    m.roomStats('team/alpha', stats({ participants: 2, packetsIn: 160, lossPct: 2, rttMs: 40, recording: { id: 'r1', bytes: 1500 } }));
    let text = await registry.metrics();
    expect(text).not.toContain('team/');
    const all = `{room="${ALL_ROOMS_LABEL}"}`;
    expect(text).toContain(`voxlink_room_participants${all} 5`);
    expect(text).toContain(`voxlink_room_packets_in_total${all} 210`);
    expect(text).toContain(`voxlink_room_loss_percent${all} 3`);
    expect(text).toContain(`voxlink_room_rtt_seconds${all} 0.06`);
    expect(text).toContain(`voxlink_room_recording_bytes${all} 1500`);
    expect(text).toContain('voxlink_recordings_active 1');
    m.roomClosed('team/alpha');
    text = await registry.metrics();
    expect(text).toContain(`voxlink_room_participants${all} 3`);
    expect(text).toContain(`voxlink_room_packets_in_total${all} 210`);
    expect(text).toContain(`voxlink_room_recording_bytes${all} 0`);
    expect(text).toContain('voxlink_recordings_active 0');
    expect(await feed(false)).not.toContain('team/');
  });
});
