import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { reportWorkerDeaths, type ServerEventName, type ServerEvents } from '../../src/signalling/observer.ts';
import type { VoxServer } from '../../src/signalling/server.ts';
import { participant, RawClient, sleep, startTestServer, until, type TestServer } from './harness.ts';

/**
 * The server observer against real servers and raw protocol clients: every happening is told
 * once, in order, after the change; drops within the grace period and resumes are not happenings;
 * a throwing listener breaks nothing.
 */

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Every observer event as one line, in emit order; participants by user id. */
function eventLog(server: VoxServer): string[] {
  const lines: string[] = [];
  const users = new Map<string, string>();
  const line: { [K in ServerEventName]: (e: ServerEvents[K]) => string } = {
    room_created: (e) => `room_created ${e.roomId} ${e.mode}`,
    room_closed: (e) => `room_closed ${e.roomId}`,
    participant_joined: (e) => {
      users.set(e.participantId, e.userId);
      return `joined ${e.roomId} ${e.userId}`;
    },
    participant_left: (e) => `left ${e.roomId} ${e.userId} ${e.reason}`,
    recording_started: (e) => `recording_started ${e.roomId} by ${users.get(e.startedBy)}`,
    recording_stopped: (e) => `recording_stopped ${e.roomId} ${e.reason}${e.stoppedBy ? ` by ${users.get(e.stoppedBy)}` : ''}`,
    recording_uploaded: (e) => `recording_uploaded ${e.roomId} ${e.objects} objects`,
    transcript_ready: (e) => `transcript_ready ${e.roomId}`,
    worker_died: () => 'worker_died',
    media_reconnect: (e) => `media_reconnect ${e.roomId} ${users.get(e.participantId)} ${e.reason}`,
  };
  for (const name of Object.keys(line) as ServerEventName[]) {
    server.observer.on(name, (e) => lines.push((line[name] as (e: unknown) => string)(e)));
  }
  return lines;
}

async function server(overrides: Parameters<typeof startTestServer>[0] = {}, options: Parameters<typeof startTestServer>[1] = {}): Promise<TestServer> {
  const t = await startTestServer(overrides, options);
  cleanup.push(() => t.close());
  return t;
}

function client(c: RawClient): RawClient {
  cleanup.push(() => c.close());
  return c;
}

describe('server observer (presence)', () => {
  it('tells joins, leaves, room creation and closing once each; a drop and its resume are no happening; grace expiry and shutdown are', async () => {
    const t = await server({ signalling: { resumeGraceMs: 400 } });
    const log = eventLog(t.server);

    const alice = client(await participant(t, 'alice', 'r1'));
    const bob = client(await participant(t, 'bob', 'r1'));
    expect(log).toEqual(['room_created r1 sfu', 'joined r1 alice', 'joined r1 bob']);

    await bob.request({ op: 'leave', room: 'r1' });
    expect(log.slice(3)).toEqual(['left r1 bob left']);

    // A drop within the grace period, then a resume: presence never changed, nothing to tell.
    const ready = alice.received.find((m) => m.op === 'ready') as Extract<typeof alice.received[number], { op: 'ready' }>;
    alice.drop();
    await sleep(150);
    const back = client(await RawClient.connect(t.wsUrl));
    const resumed = await back.request({ op: 'resume', sessionId: ready.sessionId, resumeToken: ready.resumeToken, lastSeq: alice.lastSeq() });
    expect(resumed.op).toBe('resumed');
    expect(log).toHaveLength(4);

    // A drop that outlives the grace period: the participant leaves and, last one out, the room closes.
    back.drop();
    await until(() => log.length === 6, 3000, 'grace expiry');
    expect(log.slice(4)).toEqual(['left r1 alice disconnected', 'room_closed r1']);

    // Duplicate identity: the older session is replaced (the room stays, dave is in it).
    client(await participant(t, 'dave', 'r2'));
    client(await participant(t, 'carol', 'r2'));
    const carolAgain = client(await participant(t, 'carol', 'r2'));
    expect(log.slice(6)).toEqual(['room_created r2 sfu', 'joined r2 dave', 'joined r2 carol', 'left r2 carol replaced', 'joined r2 carol']);

    // Shutdown: everyone still in a room leaves, each room closes, once.
    await t.close();
    await carolAgain.closed;
    expect(log.slice(11).sort()).toEqual(['left r2 carol disconnected', 'left r2 dave disconnected', 'room_closed r2'].sort());
    expect(log.at(-1)).toBe('room_closed r2');
    await sleep(50);
    expect(log).toHaveLength(14);
  });

  it('feeds the Prometheus counters (metrics subscribe to the observer)', async () => {
    const t = await server();
    const value = async (series: string): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${t.server.port}/metrics`)).text();
      const match = new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
      return match ? Number(match[1]) : 0;
    };
    const joins = await value('voxlink_participant_joins_total');
    const leaves = await value('voxlink_participant_leaves_total{reason="left"}');
    const created = await value('voxlink_rooms_created_total');
    const alice = client(await participant(t, 'alice', 'counted'));
    client(await participant(t, 'bob', 'counted'));
    await alice.request({ op: 'leave', room: 'counted' });
    expect(await value('voxlink_participant_joins_total')).toBe(joins + 2);
    expect(await value('voxlink_participant_leaves_total{reason="left"}')).toBe(leaves + 1);
    expect(await value('voxlink_rooms_created_total')).toBe(created + 1);
  });

  it('a listener that throws is logged; the other listeners and the client are unaffected', async () => {
    const t = await server();
    const metricsListeners = t.server.observer.listenerCount('participant_joined');
    t.server.observer.on('participant_joined', () => {
      throw new Error('listener bug');
    });
    const seen: string[] = [];
    const off = t.server.observer.on('participant_joined', (e) => seen.push(e.userId));
    const alice = client(await participant(t, 'alice', 'room'));
    expect(alice.received.some((m) => m.op === 'joined')).toBe(true);
    off();
    client(await participant(t, 'bob', 'room'));
    expect(seen).toEqual(['alice']);
    expect(t.server.observer.listenerCount('participant_joined')).toBe(metricsListeners + 1);
  });
});

describe('server observer (real media plane)', () => {
  let plane: PooledMediaPlane | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await plane?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('recording start/stop, a worker death (once), media reconnects (once per participant) and the restarted recording', async () => {
    dir = mkdtempSync(join(tmpdir(), 'voxlink-observer-'));
    plane = createMediaPlane(
      mediaPlaneOptionsFromConfig({ workers: 1, announcedIp: '127.0.0.1', rtcMinPort: 48600, rtcMaxPort: 48699, slots: 3, recordingDir: dir }),
    );
    await plane.pool.ready();
    const t = await server({}, { mediaPlane: plane });
    const log = eventLog(t.server);
    cleanup.push(reportWorkerDeaths(t.server.observer, plane.pool));
    const grants: ('join' | 'publish' | 'subscribe' | 'record')[] = ['join', 'publish', 'subscribe', 'record'];
    const host = client(await participant(t, 'host', 'rec', { grants }));
    client(await participant(t, 'guest', 'rec', { grants }));
    const start = await host.request({ op: 'record', room: 'rec', action: 'start' });
    expect(start).toMatchObject({ op: 'recording', recording: true });
    // A second start finds it running: nothing changed, nothing told.
    await host.request({ op: 'record', room: 'rec', action: 'start' });
    expect(log).toEqual(['room_created rec sfu', 'joined rec host', 'joined rec guest', 'recording_started rec by host']);

    const doomed = plane.workerOf('rec')!;
    await plane.pool.threads.find((thread) => thread.threadId === doomed)!.terminate();
    await until(() => log.includes('recording_started rec by host', 4), 15_000, 'the recording restarted in the new worker');
    await sleep(200);
    expect(log.slice(4).sort()).toEqual(
      [
        'worker_died',
        'media_reconnect rec host worker_died',
        'media_reconnect rec guest worker_died',
        'recording_stopped rec replaced',
        'recording_started rec by host',
      ].sort(),
    );
    expect(log.indexOf('recording_stopped rec replaced')).toBeLessThan(log.lastIndexOf('recording_started rec by host'));

    await host.request({ op: 'record', room: 'rec', action: 'stop' });
    expect(log.slice(9)).toEqual(['recording_stopped rec stopped by host']);

    // A recording still running when everyone leaves stops with its room.
    await host.request({ op: 'record', room: 'rec', action: 'start' });
    await t.close();
    expect(log.slice(10)).toEqual([
      'recording_started rec by host',
      'left rec host disconnected',
      'left rec guest disconnected',
      'recording_stopped rec room_closed',
      'room_closed rec',
    ]);
  }, 40_000);
});
