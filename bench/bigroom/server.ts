/**
 * The bigroom bench's server process: the real media plane (src/rooms/media-plane.ts) with its
 * piscina worker pool, one shared UDP port per worker, talking to the bench over IPC. Everything
 * the server does (main thread + media worker threads) is in this process, so its
 * `process.cpuUsage()` is the server's CPU.
 */
import { createMediaPlane, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';

export type BigRoomServerCommand =
  | { t: 'start'; workers: number; capacity: number; slots: number; udpBase: number; rtcMinPort: number; rtcMaxPort: number; transport: 'ring' | 'batch' }
  | { t: 'join'; roomId: string; participantId: string; publish: boolean }
  | { t: 'signal'; roomId: string; participantId: string; message: unknown }
  | { t: 'stats'; id: number; roomId: string }
  | { t: 'close' };

let plane: PooledMediaPlane | null = null;

function send(message: unknown): void {
  process.send?.(message);
}

process.on('message', (raw) => {
  const cmd = raw as BigRoomServerCommand;
  void (async () => {
    switch (cmd.t) {
      case 'start': {
        plane = createMediaPlane({
          room: {
            slots: cmd.slots,
            announcedIp: '127.0.0.1',
            rtcMinPort: cmd.rtcMinPort,
            rtcMaxPort: cmd.rtcMaxPort,
            mode: 'sfu',
            udpPort: { base: cmd.udpBase, count: cmd.workers },
          },
          // udpBatch: what config `media.udpBatch` (default) gives a pool with one port per worker.
          pool: { workers: cmd.workers, requestTimeoutMs: 30_000, udpBatch: true },
          roomWorkerCapacity: cmd.capacity,
          spillTransport: cmd.transport,
        });
        plane.attach({
          toParticipant: (roomId, participantId, message) => send({ t: 'event', roomId, to: 'participant', participantId, message }),
          toRoom: (roomId, message) => send({ t: 'event', roomId, to: 'room', message }),
        });
        await plane.pool.ready();
        send({ t: 'started' });
        return;
      }
      case 'join':
        await plane!.join({
          roomId: cmd.roomId,
          participantId: cmd.participantId,
          name: cmd.participantId,
          grants: { publish: cmd.publish, subscribe: true, record: false, admin: false },
        });
        return;
      case 'signal':
        await plane!.signal(cmd.roomId, cmd.participantId, cmd.message as never);
        return;
      case 'stats': {
        const cpu = process.cpuUsage();
        const room = await plane!.roomStats(cmd.roomId);
        send({ t: 'stats', id: cmd.id, cpuMs: (cpu.user + cpu.system) / 1000, room, loads: plane!.pool.loads() });
        return;
      }
      case 'close':
        await plane?.close();
        process.exit(0);
    }
  })().catch((error: unknown) => send({ t: 'error', message: String(error) }));
});
process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
