import { Socket as DgramSocket } from 'node:dgram';
import { isMainThread, parentPort, threadId, workerData } from 'node:worker_threads';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { sharedPortUnknownSourceTotal } from '../media/shared-port.ts';
import { udpBatching } from '../media/udp-direct.ts';
import { ChannelServer } from './channel.ts';
import type { MediaRoom, MediaRoomEvent, MediaRoomOptions, SpillLinkEnd } from './media-types.ts';
import type {
  RoomEvents,
  RoomRequests,
  RoomTaskArgument,
  RoomTaskResult,
  RoomWorkerData,
  WorkerLoadReport,
} from './room-protocol.ts';

/**
 * The worker half of a room: one long-lived piscina task per room. It owns the room's channel
 * and its MediaRoom, answers the main thread's requests, forwards the room's events, and
 * resolves only when the room closes. Loaded inside worker threads (workers/room.ts); the
 * per-thread load reporter below starts when this module is imported in a worker.
 */

export interface RoomFactoryContext {
  opusModule: WebAssembly.Module | null;
}

export type RoomFactory = (
  options: MediaRoomOptions,
  onEvent: (event: MediaRoomEvent) => void,
  context: RoomFactoryContext,
) => MediaRoom | Promise<MediaRoom>;

const log = logger('room-worker');

interface LiveRoom {
  room: MediaRoom;
  channel: ChannelServer<RoomRequests, RoomEvents>;
  lastPackets: number;
}

/** Rooms running on this thread, for the load report and the stats poll. */
const liveRooms = new Set<LiveRoom>();

export async function runRoomTask(arg: RoomTaskArgument, createRoom: RoomFactory): Promise<RoomTaskResult> {
  const channel = new ChannelServer<RoomRequests, RoomEvents>(arg.port, {
    maxMessageBytes: arg.maxMessageBytes,
    name: arg.roomId,
  });
  // Participants re-joined here after their worker died (RoomRequests.join `rejoin`), until the
  // client answers their offer. That offer goes out at once, marked `restart` (the client's peer
  // is with the dead thread): nothing waits for the client's `ice_restart`. The one `ice_restart`
  // the client sends for its `media_reconnect` reaches us after the re-join (the plane queues it
  // behind it) and is answered by the offer already sent; a second fresh peer would cost another
  // ICE and DTLS handshake and a second offer, and the client would answer the first in vain.
  const reoffered = new Set<string>();
  const forward = (event: MediaRoomEvent): void => {
    if (
      event.to === 'participant' &&
      event.message.op === 'media' &&
      event.message.kind === 'offer' &&
      reoffered.has(event.participantId) &&
      event.message.options?.restart !== true
    ) {
      channel.emit('media', { ...event, message: { ...event.message, options: { ...event.message.options, restart: true } } });
      return;
    }
    channel.emit('media', event);
  };
  let room: MediaRoom;
  try {
    room = await createRoom(arg.options, forward, { opusModule: arg.opusModule });
  } catch (error) {
    // Returned, not thrown: a thrown error looks like a dying thread and would be re-placed.
    log.error({ room: arg.roomId, err: error }, 'room creation failed');
    channel.close();
    return {
      roomId: arg.roomId,
      threadId,
      error: { code: error instanceof VoxError ? error.code : 'INTERNAL', message: String(error) },
    };
  }
  const live: LiveRoom = { room, channel, lastPackets: 0 };
  liveRooms.add(live);

  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let closing: Promise<void> | null = null;
  // Idempotent close: a `close` request and the main thread dropping the port both land here.
  const closeRoom = (): Promise<void> => {
    closing ??= (async () => {
      liveRooms.delete(live);
      try {
        await room.close();
      } catch (error) {
        log.error({ room: arg.roomId, err: error }, 'room close failed');
      }
      finish();
    })();
    return closing;
  };

  channel.handle('join', async ({ participant, muted, rejoin }) => {
    if (rejoin) reoffered.add(participant.participantId);
    try {
      await room.join(participant);
    } catch (error) {
      reoffered.delete(participant.participantId);
      throw error;
    }
    if (muted) await room.setMuted(participant.participantId, true);
    return null;
  });
  channel.handle('leave', async ({ participantId }) => {
    reoffered.delete(participantId);
    await room.leave(participantId);
    return null;
  });
  channel.handle('signal', async ({ participantId, message }) => {
    if (reoffered.has(participantId)) {
      if (message.kind === 'answer') {
        reoffered.delete(participantId);
      } else if (message.kind === 'ice_restart' && message.options?.audio === undefined) {
        // The client's reaction to media_reconnect, answered by the re-join's offer. Only the
        // first: a client whose answer failed and that asks again gets a fresh peer.
        reoffered.delete(participantId);
        return null;
      }
    }
    await room.signal(participantId, message);
    return null;
  });
  channel.handle('setMuted', async ({ participantId, muted }) => {
    await room.setMuted(participantId, muted);
    return null;
  });
  channel.handle('record', ({ action, participantId, continues }) => room.record(action, participantId, continues));
  channel.handle('stats', () => room.stats());
  channel.handle('remoteMembers', ({ add, remove }) => {
    if (room.setRemoteMembers === undefined) throw new VoxError('MEDIA_UNSUPPORTED', `room ${arg.roomId} cannot spread over workers`);
    room.setRemoteMembers(add, remove);
    return null;
  });
  channel.handle('unlinkShard', ({ shard }) => {
    room.unlinkShard?.(shard);
    return null;
  });
  channel.onAttach((name, value) => {
    if (name === 'link' && room.linkShard !== undefined) room.linkShard(value as SpillLinkEnd);
    else log.warn({ room: arg.roomId, attach: name }, 'unexpected attachment dropped');
  });
  channel.handle('close', async () => {
    await closeRoom();
    return null;
  });
  channel.handle('crash', () => {
    if (process.env.VOXLINK_CHAOS !== '1') throw new VoxError('MEDIA_NOT_ALLOWED', 'crash is for chaos tests (VOXLINK_CHAOS=1)');
    setImmediate(() => {
      throw new Error(`chaos: crash requested in room ${arg.roomId}`);
    });
    return null;
  });
  channel.onClose(() => void closeRoom());
  channel.emit('ready', { threadId });

  await finished;
  // Let the `close` reply leave before the port goes (MessagePort delivery is ordered).
  setImmediate(() => channel.close());
  return { roomId: arg.roomId, threadId };
}

/**
 * Every `statsIntervalMs` (default 1 s): poll each room's stats and send them on its channel, and
 * post this thread's measured load (packets per second and event-loop utilisation) to the main
 * thread, where placement reads it. One timer per thread, not per room; unref'd so it never keeps
 * a thread alive on its own.
 */
function startLoadReporter(intervalMs: number): void {
  let lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  let lastAt = performance.now();
  const report: WorkerLoadReport = { voxlinkLoad: 1, threadId, rooms: 0, participants: 0, pps: 0, elu: 0, udpSockets: 0 };
  const tick = (measured = true): void => {
    const now = performance.now();
    const seconds = Math.max((now - lastAt) / 1000, 0.001);
    lastAt = now;
    let packets = 0;
    let participants = 0;
    for (const live of liveRooms) {
      try {
        const stats = live.room.stats();
        const total = stats.packetsIn + stats.packetsOut;
        packets += Math.max(total - live.lastPackets, 0);
        live.lastPackets = total;
        participants += stats.participants;
        live.channel.emit('stats', stats);
      } catch (error) {
        log.warn({ err: error }, 'room stats failed');
      }
    }
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    report.rooms = liveRooms.size;
    report.participants = participants;
    // The first report covers only module loading (event loop ~100 % busy, no packets yet): it says
    // "nothing measured" rather than claim a load no room caused.
    report.pps = measured ? Math.round(packets / seconds) : 0;
    report.elu = measured ? elu.utilization : 0;
    let udp = 0;
    for (const resource of process.getActiveResourcesInfo()) if (resource === 'UDPWrap') udp++;
    report.udpSockets = udp;
    report.unknownSource = sharedPortUnknownSourceTotal();
    report.udpBatch = udpBatching;
    parentPort?.postMessage(report);
  };
  setInterval(tick, intervalMs).unref();
  // A first report right away, so a fresh thread is placeable before its first full interval.
  setImmediate(() => tick(false));
}

/**
 * A thread that dies of an uncaught error stops receiving UDP before it exits. Node 20 (checked
 * 20.20.2) aborts the whole process when a datagram arrives on a worker's socket while the worker
 * is being stopped: `UDPWrap::OnRecv` builds the sender's address object, which fails once the
 * thread's JavaScript is terminated, and `FromJust` on that failure is fatal ("FATAL ERROR:
 * v8::FromJust Maybe value is Nothing"). The soak hit it once in 44 worker kills under a datagram
 * flood: one dead room thread took the server down. Closing every UDP socket first (uv_close stops
 * the reads at once) leaves nothing to arrive. Then the thread exits with code 1, which the pool
 * handles as any death (re-placing its rooms).
 */
export function installCrashGuard(): void {
  process.on('uncaughtException', (error) => {
    let closed = 0;
    try {
      const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
      for (const handle of handles) {
        if (handle instanceof DgramSocket) {
          try {
            handle.close();
            closed++;
          } catch {
            // already closing
          }
        }
      }
    } catch {
      // no handle list on this Node: exit anyway
    }
    try {
      log.fatal({ err: error, threadId, udpSocketsClosed: closed }, 'media worker thread crashed');
    } finally {
      process.exit(1);
    }
  });
}

if (!isMainThread && parentPort !== null) {
  const data = workerData as Partial<RoomWorkerData> | undefined;
  startLoadReporter(data?.statsIntervalMs ?? 1000);
  installCrashGuard();
}
