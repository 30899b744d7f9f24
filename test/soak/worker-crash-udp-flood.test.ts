import { createSocket, type Socket } from 'node:dgram';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { isVoxError } from '../../src/errors.ts';
import { PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { RoomMetrics } from '../../src/rooms/metrics.ts';
import type { MediaParticipant, ServerMediaMessage } from '../../src/rooms/media-types.ts';
import { FULL_GRANTS, waitFor } from '../media/harness.ts';

/**
 * What broke in the soak: a media worker thread died while datagrams kept arriving on its UDP
 * sockets, and Node 20 aborted the whole server ("FATAL ERROR: v8::FromJust Maybe value is
 * Nothing" in UDPWrap::OnRecv → AddressToJS, on the dying thread). The worker's crash guard
 * (src/rooms/room-worker.ts `installCrashGuard`) closes every UDP socket of the thread before it
 * exits. Here a room's thread crashes (RoomRequests `crash`, VOXLINK_CHAOS=1) while its peers'
 * ports are flooded: the guard's exit (code 1, not Node's uncaught-error path) is what the pool
 * sees, this process lives on, and the room is re-placed on the other thread.
 */
const participant = (roomId: string, participantId: string): MediaParticipant => ({ roomId, participantId, name: participantId, grants: FULL_GRANTS });

function plane(ports: number): PooledMediaPlane {
  return new PooledMediaPlane({
    room: { slots: 3, announcedIp: '127.0.0.1', bindIp: '127.0.0.1', rtcMinPort: ports, rtcMaxPort: ports + 49, mode: 'sfu' },
    pool: { workers: 2, statsIntervalMs: 100, replacementHoldMs: 0, metrics: new RoomMetrics(new Registry()) },
  });
}

let current: PooledMediaPlane | null = null;
let flood: Socket | null = null;
afterEach(async () => {
  flood?.close();
  flood = null;
  await current?.close();
  current = null;
  delete process.env.VOXLINK_CHAOS;
});

describe('a media worker thread crashing under a UDP flood', () => {
  it('closes its sockets before it exits: the process survives and the room moves', { timeout: 60_000 }, async () => {
    process.env.VOXLINK_CHAOS = '1'; // read by the threads, which copy the environment when they start
    const p = (current = plane(46620));
    const offers: string[] = [];
    p.attach({
      toParticipant: (_room, _id, m: ServerMediaMessage) => {
        if (m.op === 'media' && m.kind === 'offer' && m.sdp !== undefined) offers.push(m.sdp);
      },
      toRoom: () => {},
    });
    await p.pool.ready(30_000);
    for (const id of ['a', 'b', 'c']) await p.join(participant('flooded', id));
    await waitFor(() => offers.length === 3, 10_000, 'three offers');
    const ports = [...new Set(offers.flatMap((sdp) => [...sdp.matchAll(/a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/g)].map((m) => Number(m[1]))))];
    expect(ports.length).toBeGreaterThan(0);

    const deaths: { threadId: number; message: string }[] = [];
    p.pool.on('workerdied', (threadId, error) => deaths.push({ threadId, message: error.message }));
    const doomed = p.workerOf('flooded')!;
    flood = createSocket('udp4');
    const sender = flood;
    // RTP-looking garbage (first byte 0x80) and STUN-looking garbage, at every port of the room.
    const rtp = Buffer.alloc(120, 0x80);
    const stun = Buffer.alloc(40, 0x00);
    let flooding = true;
    let sent = 0;
    const pump = (): void => {
      if (!flooding) return;
      for (let i = 0; i < 64; i++) {
        sender.send(i & 1 ? rtp : stun, ports[i % ports.length]!, '127.0.0.1');
        sent++;
      }
      setImmediate(pump);
    };
    pump();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await p.crashWorkerOf('flooded');
    await waitFor(() => deaths.length === 1, 10_000, 'the thread’s death');
    await new Promise((resolve) => setTimeout(resolve, 300)); // the flood goes on past the death
    flooding = false;

    expect(sent).toBeGreaterThan(1000);
    expect(deaths[0]!.threadId).toBe(doomed);
    // The crash guard's exit, not Node's uncaught-error path (which the pool reports as `uncaught …`).
    expect(deaths[0]!.message).toMatch(/exit code 1$/);
    await waitFor(() => p.workerOf('flooded') !== undefined && p.workerOf('flooded') !== doomed, 10_000, 'the room re-placed');
    expect(p.pool.workerCount).toBeGreaterThanOrEqual(1);
  });

  it('refuses the crash request without VOXLINK_CHAOS=1', { timeout: 60_000 }, async () => {
    delete process.env.VOXLINK_CHAOS;
    const p = (current = plane(46680));
    p.attach({ toParticipant: () => {}, toRoom: () => {} });
    await p.pool.ready(30_000);
    await p.join(participant('calm', 'a'));
    const thread = p.workerOf('calm');
    const error = await p.crashWorkerOf('calm').then(
      () => null,
      (e: unknown) => e,
    );
    expect(isVoxError(error, 'MEDIA_NOT_ALLOWED')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(p.workerOf('calm')).toBe(thread);
  });
});
