import type { ChainableCommander } from 'ioredis';
import { logger } from '../log.ts';
import type { RecordingInfo } from '../protocol/messages.ts';
import type { RoomPresence } from '../rooms/registry.ts';
import type { SignallingCore } from '../signalling/core.ts';
import { forgetRecordingIn, keys, parseRoomRecording, type ClusterRedis, type RoomRecording } from './store.ts';

const log = logger('cluster');

export interface RecordingHandoverHost {
  readonly id: string;
  readonly redis: ClusterRedis;
  readonly available: boolean;
  readonly draining: boolean;
  readonly core: SignallingCore | undefined;
  /** Lifetime of a room's recording entry (2 × cluster.leaseMs): longer than a dead owner's lease. */
  readonly ttlMs: number;
  /** Counts Redis commands (voxlink_cluster_redis_commands_total). */
  count(purpose: 'route' | 'writeback' | 'registry', n?: number): void;
}

/**
 * A recording follows its room to the next node (docs/cluster.md "Recording across a move").
 *
 * The node recording a room keeps `rec:<room>` in Redis (written behind with the room list,
 * refreshed with the heartbeat, 2 × leaseMs). When a room opens on a node and that entry says it
 * was being recorded elsewhere (a SIGTERM drain handed it over, or its owner was killed), the node
 * starts a new recording of the room here: a new id, announced to the room with a `recording`
 * message, chained to the first one (`first`, `part`) in the entry and the log. The old node's
 * recording ends cleanly when its last client has moved (drain), or at its last flushed page
 * (kill -9). A room closed or a recording stopped on its owner forgets the entry; a draining node
 * never does, so the new owner finds it.
 */
export class RecordingHandover {
  readonly #host: RecordingHandoverHost;
  /** Rooms whose entry this node wrote (refreshed on every heartbeat, forgotten when they end here). */
  readonly #written = new Set<string>();
  /** The chain a continued recording belongs to, per room. */
  readonly #chain = new Map<string, { first: string; part: number }>();
  /** Rooms whose recording ended here and whose entry is not forgotten yet: a quick re-open must not continue it. */
  readonly #endedHere = new Set<string>();

  constructor(host: RecordingHandoverHost) {
    this.#host = host;
  }

  /** A room opened on this node: continue its recording if it was recording on another node. */
  opened(roomId: string): void {
    const host = this.#host;
    if (!host.available || this.#endedHere.has(roomId)) return;
    host.count('route');
    host.redis.get(keys.recording(roomId)).then(
      (raw) => {
        const previous = parseRoomRecording(raw);
        if (previous && previous.room === roomId) void this.#continue(roomId, previous);
      },
      (err: unknown) => log.warn({ roomId, err: (err as Error).message }, 'could not read whether the room was recording on another node'),
    );
  }

  /** A room closed here; with a recording running, its entry goes (unless this node is handing its rooms over). */
  closed(roomId: string, recording: RecordingInfo | null): void {
    this.#chain.delete(roomId);
    if (recording !== null && !this.#host.draining) this.#endedHere.add(roomId);
  }

  /** Queues the entry's write (or removal) for a room in the write-behind batch; returns the commands queued. */
  writeIn(multi: ChainableCommander, roomId: string, room: RoomPresence | undefined): number {
    const { id: self, ttlMs, draining } = this.#host;
    const recording = room?.recording ?? null;
    if (recording !== null) {
      const chain = this.#chain.get(roomId) ?? { first: recording.id, part: 0 };
      const entry: RoomRecording = { room: roomId, node: self, id: recording.id, startedAt: recording.startedAt, ...chain };
      multi.set(keys.recording(roomId), JSON.stringify(entry), 'PX', ttlMs);
      this.#written.add(roomId);
      return 1;
    }
    if (!this.#written.has(roomId) || draining) return 0; // draining: the node the room moved to holds the entry now
    forgetRecordingIn(multi, roomId, self);
    return 1;
  }

  /** The batch went through: rooms whose entry was removed are no longer this node's. */
  committed(roomIds: readonly string[], room: (roomId: string) => RoomPresence | undefined): void {
    for (const roomId of roomIds) {
      if ((room(roomId)?.recording ?? null) !== null) continue;
      this.#written.delete(roomId);
      this.#endedHere.delete(roomId);
    }
  }

  /** Keeps the entries of rooms recording here alive (heartbeat). */
  refreshIn(multi: ChainableCommander): number {
    for (const roomId of this.#written) multi.pexpire(keys.recording(roomId), this.#host.ttlMs);
    return this.#written.size;
  }

  async #continue(roomId: string, previous: RoomRecording): Promise<void> {
    const core = this.#host.core;
    if (!core) return;
    try {
      const chain = { first: previous.first, part: previous.part + 1 };
      const next = await core.continueRecording(roomId, { previous: previous.id, ...chain, reason: 'room_moved', node: previous.node });
      if (next === null) return;
      this.#chain.set(roomId, chain);
      log.info({ roomId, from: previous.node, previous: previous.id, id: next.id, ...chain }, 'recording continued after the room moved here');
    } catch (err) {
      log.error({ roomId, previous: previous.id, err: (err as Error).message }, 'the room was recording on another node but the recording could not be continued here');
    }
  }
}
