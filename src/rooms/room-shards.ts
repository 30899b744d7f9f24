import { MessageChannel } from 'node:worker_threads';
import { VoxError } from '../errors.ts';
import { createSpillRing } from '../media/spill-ring.ts';
import type { MediaParticipant, MediaRoomStats, RemoteMember, SpillLinkEnd } from './media-types.ts';
import type { RoomTask } from './room-task.ts';

/**
 * The main thread's side of a room spread over several workers (docs/media.md "Rooms over
 * several workers"; mediasoup's pipeToRouter is the model). A room is one task per worker it
 * uses, a "shard": the home (shard 0, opened with the room: it ranks the speakers, mixes and
 * records) and spill shards opened when every shard holds `roomWorkerCapacity` peers. Every pair
 * of shards is linked (spill-ring.ts or spill-batch.ts, handed over with `RoomTask.attach`), and
 * every shard knows the participants on the others as numbered `RemoteMember`s.
 */

export type SpillTransport = 'ring' | 'batch';

export interface Shard {
  /** 0 is the home. */
  readonly id: number;
  task: RoomTask;
  /** Participant ids whose peers are on this shard. */
  readonly members: Set<string>;
  /** The shard's last `MediaRoom.stats()`. */
  stats: MediaRoomStats | null;
}

export interface SpilledRoom {
  home: Shard;
  readonly spills: Map<number, Shard>;
  nextShard: number;
  readonly numbers: MemberNumbers;
}

/** Where a room runs: one row per worker it uses (for diagnostics, tests and metrics). */
export interface ShardSummary {
  shard: number;
  home: boolean;
  threadId: number;
  participants: number;
}

export function allShards(room: SpilledRoom): Shard[] {
  return [room.home, ...room.spills.values()];
}

export function shardSummary(room: SpilledRoom): ShardSummary[] {
  return allShards(room).map((s) => ({ shard: s.id, home: s.id === 0, threadId: s.task.threadId, participants: s.members.size }));
}

/** Numbers 1…65535 for a room's participants: how its workers name a publisher's packets to each other. */
export class MemberNumbers {
  readonly #used = new Set<number>();
  #next = 1;

  take(): number {
    if (this.#used.size >= 0xffff) throw new VoxError('MEDIA_UNSUPPORTED', 'a media room holds at most 65535 participants');
    while (this.#used.has(this.#next)) this.#next = this.#next >= 0xffff ? 1 : this.#next + 1;
    const n = this.#next;
    this.#used.add(n);
    this.#next = n >= 0xffff ? 1 : n + 1;
    return n;
  }

  release(n: number | undefined): void {
    if (n !== undefined) this.#used.delete(n);
  }
}

export function remoteMember(participant: MediaParticipant, muted: boolean): RemoteMember {
  return {
    participantId: participant.participantId,
    number: participant.memberNumber ?? 0,
    name: participant.name,
    ...(participant.userId === undefined ? {} : { userId: participant.userId }),
    publish: participant.grants.publish,
    muted,
  };
}

/** Links two shards both ways: each gets its sending end and the other's. */
export function linkShards(a: Shard, b: Shard, transport: SpillTransport): void {
  if (transport === 'batch') {
    const { port1, port2 } = new MessageChannel();
    a.task.attach('link', { peer: b.id, transport, port: port1 } satisfies SpillLinkEnd, [port1]);
    b.task.attach('link', { peer: a.id, transport, port: port2 } satisfies SpillLinkEnd, [port2]);
    return;
  }
  const ab = createSpillRing();
  const ba = createSpillRing();
  a.task.attach('link', { peer: b.id, transport, send: ab, receive: ba } satisfies SpillLinkEnd);
  b.task.attach('link', { peer: a.id, transport, send: ba, receive: ab } satisfies SpillLinkEnd);
}

/** One room's stats over its shards: counters summed, link quality averaged over the shards that report it. */
export function sumShardStats(shards: readonly Shard[]): MediaRoomStats | null {
  let sum: MediaRoomStats | null = null;
  let n = 0;
  for (const shard of shards) {
    const s = shard.stats;
    if (s === null) continue;
    n++;
    if (sum === null) {
      sum = { ...s, srtpRejected: s.srtpRejected === undefined ? undefined : { ...s.srtpRejected } };
      continue;
    }
    sum.participants += s.participants;
    sum.packetsIn += s.packetsIn;
    sum.packetsOut += s.packetsOut;
    sum.packetsOutFast = (sum.packetsOutFast ?? 0) + (s.packetsOutFast ?? 0);
    sum.packetsInFast = (sum.packetsInFast ?? 0) + (s.packetsInFast ?? 0);
    sum.bytesIn += s.bytesIn;
    sum.bytesOut += s.bytesOut;
    sum.lossPct += s.lossPct;
    sum.jitterMs += s.jitterMs;
    sum.rttMs += s.rttMs;
    sum.slotSwitches += s.slotSwitches;
    sum.offers += s.offers;
    sum.reconnects += s.reconnects;
    sum.packetsDropped += s.packetsDropped;
    if (sum.srtpRejected !== undefined && s.srtpRejected !== undefined) {
      for (const k of Object.keys(s.srtpRejected) as (keyof typeof s.srtpRejected)[]) sum.srtpRejected[k] += s.srtpRejected[k];
    }
  }
  if (sum !== null && n > 1) {
    sum.lossPct /= n;
    sum.jitterMs /= n;
    sum.rttMs /= n;
  }
  return sum;
}
