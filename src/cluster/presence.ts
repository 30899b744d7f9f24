import type { ParticipantInfo, ParticipantState, RecordingInfo, RoomMode } from '../protocol/messages.ts';
import { RoomRegistry, type Participant, type Presence, type RoomPresence } from '../rooms/registry.ts';

/**
 * Presence on a cluster node (docs/architecture.md "Presence and adding a cluster
 * implementation"): the node owns the rooms it serves, so its local RoomRegistry is the truth and
 * every read answers from it. Changes that other nodes care about (a room's participant count,
 * mode, recording, the room opening or closing) only mark the room dirty; ClusterNode writes the
 * dirty rooms behind to Redis in one loop, and retries what failed. Nothing here waits for Redis.
 * `setSpeaking` is too frequent to matter to other nodes and stays local. A room opening here and
 * a room closing (with whether it was recording) are told to the node (`PresenceHooks`): a room
 * that moved here may have a recording to continue (docs/cluster.md "Recording across a move").
 */
export interface PresenceHooks {
  opened(roomId: string): void;
  closed(roomId: string, recording: RecordingInfo | null): void;
}

export class ClusterPresence implements Presence {
  readonly #local = new RoomRegistry();
  /** Rooms whose summary changed since the last write to Redis. */
  readonly dirty = new Set<string>();
  readonly #hooks: PresenceHooks;

  constructor(hooks: PresenceHooks = { opened: () => undefined, closed: () => undefined }) {
    this.#hooks = hooks;
  }

  get roomCount(): number {
    return this.#local.roomCount;
  }

  get participantCount(): number {
    return this.#local.participantCount;
  }

  get(roomId: string): RoomPresence | undefined {
    return this.#local.get(roomId);
  }

  rooms(): IterableIterator<RoomPresence> {
    return this.#local.rooms();
  }

  size(roomId: string): number {
    return this.#local.size(roomId);
  }

  participant(roomId: string, participantId: string): Participant | undefined {
    return this.#local.participant(roomId, participantId);
  }

  findByUser(roomId: string, userId: string): Participant | undefined {
    return this.#local.findByUser(roomId, userId);
  }

  add(roomId: string, mode: RoomMode, participant: Participant): { room: RoomPresence; created: boolean } {
    const result = this.#local.add(roomId, mode, participant);
    this.dirty.add(roomId);
    if (result.created) this.#hooks.opened(roomId);
    return result;
  }

  remove(roomId: string, participantId: string): { participant: Participant; room: RoomPresence; roomClosed: boolean } | undefined {
    const result = this.#local.remove(roomId, participantId);
    if (result) {
      this.dirty.add(roomId);
      if (result.roomClosed) this.#hooks.closed(roomId, result.room.recording);
    }
    return result;
  }

  setMuted(roomId: string, participantId: string, muted: boolean): Participant | undefined {
    return this.#local.setMuted(roomId, participantId, muted);
  }

  setSpeaking(roomId: string, participantId: string, speaking: boolean): Participant | undefined {
    return this.#local.setSpeaking(roomId, participantId, speaking);
  }

  setState(roomId: string, participantId: string, state: ParticipantState): Participant | undefined {
    return this.#local.setState(roomId, participantId, state);
  }

  setRecording(roomId: string, recording: RecordingInfo | null): RecordingInfo | null | undefined {
    const previous = this.#local.setRecording(roomId, recording);
    if (previous !== undefined) this.dirty.add(roomId);
    return previous;
  }

  snapshot(roomId: string): ParticipantInfo[] {
    return this.#local.snapshot(roomId);
  }
}
