import '../src/js-only.ts';
import { threadId, workerData } from 'node:worker_threads';
import { RTCDtlsTransport } from 'werift';
import { instantiateOpus } from '../src/codec/wasm.ts';
import { usePortClaims } from '../src/media/port-allocator.ts';
import { createMediaRoom } from '../src/media/room.ts';
import type { RoomTaskArgument, RoomTaskResult, RoomWorkerData } from '../src/rooms/room-protocol.ts';
import { runRoomTask } from '../src/rooms/room-worker.ts';

/**
 * The media worker threads' code, loaded by their piscina entry point (workers/room.ts, which may
 * hold a replacement thread first): one long-lived task per room (src/rooms/pool.ts places them). The Opus module arrives compiled with the task; the first
 * room on a thread instantiates it as the thread's runtime (later calls return the same one).
 */
// werift makes one DTLS certificate per thread, on the first peer. Make it now, while the thread
// is idle, so the first join here (a new room, or a room re-placed after a worker died) does not
// wait for key generation.
void RTCDtlsTransport.SetupCertificate();

// Every media thread claims UDP ports in one shared table, so two threads never probe the same port.
const data = workerData as Partial<RoomWorkerData> | undefined;
if (data?.portClaims !== undefined) usePortClaims(data.portClaims, threadId);

export default function roomTask(argument: RoomTaskArgument): Promise<RoomTaskResult> {
  return runRoomTask(argument, (options, onEvent, { opusModule }) => {
    if (opusModule !== null) instantiateOpus(opusModule);
    return createMediaRoom(options, onEvent);
  });
}
