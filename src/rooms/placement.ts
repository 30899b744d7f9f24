/**
 * Where a new room goes: the worker thread with the lowest MEASURED load, not the fewest tasks.
 * A room of 200 speakers and a room of 2 listeners are one task each; what matters is the
 * packets each thread forwards and how busy its event loop is, both reported by the thread
 * itself every stats interval (room-task.ts). Pure functions, so the policy is testable without
 * threads.
 */

/** One worker thread's load: measured by the thread (room-protocol.ts `WorkerLoadReport`) plus what the main thread placed since. */
export interface WorkerLoad {
  threadId: number;
  rooms: number;
  participants: number;
  /** RTP packets in + out per second over the last report interval. */
  pps: number;
  /** Event-loop utilisation over the last report interval, 0..1 (`performance.eventLoopUtilization()`). */
  elu: number;
  /** Open UDP sockets on the thread (`process.getActiveResourcesInfo()`; not used for placement; a leak shows here). */
  udpSockets: number;
  /** Datagrams the thread's shared UDP port dropped from unknown addresses, since the thread started (config `media.udpPort`). */
  unknownSource?: number;
  /** The thread sends UDP in batches (RoomPoolOptions.udpBatch: it runs with Node's `--test-udp-no-try-send`). */
  udpBatch?: boolean;
  /** Rooms placed here since its last report: their load is not measured yet. */
  placedSinceReport: number;
}

export interface PlacementOptions {
  /**
   * Packets per second one thread is taken to handle at full load; turns pps into the same 0..1
   * scale as ELU. Default 20000. Lower it to weigh traffic more than measured loop time.
   */
  ppsCapacity?: number;
  /**
   * Load charged for each room placed since a thread's last report (default 0.05), so a burst of
   * new rooms within one interval spreads out instead of piling onto the thread that looked idle.
   */
  unmeasuredRoomCost?: number;
}

export const DEFAULT_PPS_CAPACITY = 20_000;
export const DEFAULT_UNMEASURED_ROOM_COST = 0.05;

/** The load placement compares: ELU plus traffic share plus the guess for unmeasured rooms. */
export function loadScore(load: WorkerLoad, options: PlacementOptions = {}): number {
  const capacity = options.ppsCapacity ?? DEFAULT_PPS_CAPACITY;
  const roomCost = options.unmeasuredRoomCost ?? DEFAULT_UNMEASURED_ROOM_COST;
  return load.elu + load.pps / capacity + load.placedSinceReport * roomCost;
}

/**
 * The least-loaded thread, or null when there is none. Ties (e.g. all idle) go to the thread with
 * fewer rooms, then the lower thread id, so placement is deterministic.
 */
export function pickWorker(loads: Iterable<WorkerLoad>, options: PlacementOptions = {}): WorkerLoad | null {
  let best: WorkerLoad | null = null;
  let bestScore = Infinity;
  for (const load of loads) {
    const score = loadScore(load, options);
    if (
      best === null ||
      score < bestScore - 1e-9 ||
      (Math.abs(score - bestScore) <= 1e-9 &&
        (load.rooms < best.rooms || (load.rooms === best.rooms && load.threadId < best.threadId)))
    ) {
      best = load;
      bestScore = score;
    }
  }
  return best;
}
