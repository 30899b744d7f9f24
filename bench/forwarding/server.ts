/**
 * The bench's server process: hosts media rooms (VoxLink's slot router, or the naive werift
 * fan-out) and talks to the bench over IPC. One process = one core's worth of forwarding,
 * like one room worker.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver } from 'node:perf_hooks';
import { createMediaRoom, type MediaRoom } from '../../src/media/room.ts';
import { createNaiveRoom } from './naive-room.ts';

export type ServerCommand =
  | { t: 'create'; roomId: string; mode: 'slots' | 'naive'; slots: number; publishers: number; rtcMinPort: number; rtcMaxPort: number; fastSrtp: boolean; roomMode?: 'sfu' | 'mix'; udpPort?: number }
  | { t: 'join'; roomId: string; participantId: string; publish: boolean }
  | { t: 'signal'; roomId: string; participantId: string; message: unknown }
  | { t: 'stats'; id: number }
  /** Start V8's sampling profiler (inspector, in this process), or stop it and write the profile to `path`. */
  | { t: 'profile'; id: number; path?: string }
  | { t: 'close' };

const rooms = new Map<string, MediaRoom>();
let profiler: Session | null = null;
// GC pressure is the cost of per-packet allocation (ours and werift's): count it.
let gcCount = 0;
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

function send(message: unknown): void {
  process.send?.(message);
}

process.on('message', (raw) => {
  const cmd = raw as ServerCommand;
  void (async () => {
    switch (cmd.t) {
      case 'create': {
        const options = {
          roomId: cmd.roomId,
          slots: cmd.slots,
          announcedIp: '127.0.0.1',
          rtcMinPort: cmd.rtcMinPort,
          rtcMaxPort: cmd.rtcMaxPort,
          mode: cmd.roomMode ?? 'sfu',
          fastSrtp: cmd.fastSrtp,
          ...(cmd.udpPort === undefined ? {} : { udpPort: { base: cmd.udpPort, count: 1 } }),
        };
        const onEvent = (event: unknown): void => send({ t: 'event', roomId: cmd.roomId, event });
        rooms.set(cmd.roomId, cmd.mode === 'slots' ? createMediaRoom(options, onEvent) : createNaiveRoom({ ...options, publishers: cmd.publishers }, onEvent));
        return;
      }
      case 'join':
        await rooms.get(cmd.roomId)?.join({
          roomId: cmd.roomId,
          participantId: cmd.participantId,
          name: cmd.participantId,
          grants: { publish: cmd.publish, subscribe: true, record: false, admin: false },
        });
        return;
      case 'signal':
        await rooms.get(cmd.roomId)?.signal(cmd.participantId, cmd.message as never);
        return;
      case 'stats': {
        const cpu = process.cpuUsage();
        send({ t: 'stats', id: cmd.id, cpuMs: (cpu.user + cpu.system) / 1000, gcCount, gcMs, rooms: [...rooms.values()].map((r) => r.stats()) });
        return;
      }
      case 'profile': {
        if (cmd.path === undefined) {
          profiler = new Session();
          profiler.connect();
          await profiler.post('Profiler.enable');
          await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
          await profiler.post('Profiler.start');
        } else if (profiler !== null) {
          const { profile } = await profiler.post('Profiler.stop');
          writeFileSync(cmd.path, JSON.stringify(profile));
          profiler.disconnect();
          profiler = null;
        }
        send({ t: 'profiled', id: cmd.id });
        return;
      }
      case 'close':
        await Promise.allSettled([...rooms.values()].map((r) => r.close()));
        process.exit(0);
    }
  })().catch((error: unknown) => send({ t: 'error', message: String(error) }));
});
// If the bench dies, don't linger holding ports.
process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
