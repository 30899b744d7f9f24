import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { workerData } from 'node:worker_threads';
import type { RoomTaskArgument, RoomTaskResult, RoomWorkerData } from '../src/rooms/room-protocol.ts';

/**
 * Piscina entry point of the media worker threads. It loads the media code (workers/room-thread.ts)
 * at once, except in a thread piscina starts to replace one that died: that thread first waits until
 * the pool's replacement hold ends (RoomPool `replacementHoldMs`, docs/media.md "Media
 * reconnect"). Loading the media code and making the thread's DTLS certificate cost about a core-second;
 * started at the moment of the death, that competed with the re-placed rooms' re-joins and DTLS
 * handshakes on the surviving threads, and on a loaded host it stretched the time until the
 * clients heard each other again. The hold is read from shared memory the pool writes when a
 * thread dies, so the initial threads never wait; the pool lifts it as soon as it places a room on
 * a thread that is still held (no other thread could take it: a spilled room's next worker).
 */
const MAX_HOLD_MS = 60_000;
const HOLD_POLL_MS = 25;

type RoomTask = (argument: RoomTaskArgument) => Promise<RoomTaskResult>;

async function load(): Promise<RoomTask> {
  const data = workerData as Partial<RoomWorkerData> | undefined;
  if (data?.replacementHold !== undefined) {
    // Polled, not slept: the pool lifts the hold early (writes 0) when it needs this thread.
    const hold = new Float64Array(data.replacementHold);
    const giveUpAt = Date.now() + MAX_HOLD_MS;
    while (Date.now() < hold[0]! && Date.now() < giveUpAt) await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
  }
  // From source, tsx runs this file as CommonJS in the worker (piscina requires it), and there only
  // `require` goes through tsx: a dynamic import() of a .ts file fails. In the bundle a computed
  // specifier keeps dist/workers/room-thread.js a separate runtime import instead of inlining it
  // (and its npm imports) into this file.
  const fromSource = import.meta.url.endsWith('.ts');
  const url = new URL(fromSource ? './room-thread.ts' : './room-thread.js', import.meta.url);
  const thread = (fromSource ? createRequire(import.meta.url)(fileURLToPath(url)) : await import(url.href)) as { default: RoomTask };
  return thread.default;
}

// Started when piscina loads this module, not on the first task (no top-level await: piscina
// cannot load a .ts entry that has one through tsx). Until the media code is loaded the thread
// sends no load report, so the pool places no room on it while another thread is up.
const loaded = load();

export default async function roomTask(argument: RoomTaskArgument): Promise<RoomTaskResult> {
  return (await loaded)(argument);
}
