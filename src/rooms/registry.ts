import type { Grant, ParticipantInfo, ParticipantState, RecordingInfo, RoomMode } from '../protocol/messages.ts';

/**
 * Presence: who is in which room, their mute/speaking state and the room's running recording.
 * Signalling is given a `Presence` (createSignallingCore `presence`, default the in-memory
 * RoomRegistry below) and is its only writer: every change goes through signalling's room
 * membership (src/signalling/rooms.ts), which turns it into exactly one protocol event and one
 * observer event. That is what keeps presence consistent across join, leave, drop, resume and
 * grace expiry.
 *
 * The interface is synchronous on purpose: a room is served by one node (the cluster work's room
 * lease), so that node's copy of the room is the truth and every read answers from it. A shared
 * (Redis) implementation keeps this local copy and writes each change behind to the shared store
 * for the other nodes (routing, listings); it never waits for the store on the signalling path.
 * docs/architecture.md "Presence and adding a cluster implementation" has the rest.
 */
export interface Presence {
  readonly roomCount: number;
  readonly participantCount: number;
  get(roomId: string): RoomPresence | undefined;
  rooms(): IterableIterator<RoomPresence>;
  size(roomId: string): number;
  participant(roomId: string, participantId: string): Participant | undefined;
  /**
   * The room's newest participant with this identity. One per identity per room unless
   * signalling.replaceIdentity is false (then the newest of them).
   */
  findByUser(roomId: string, userId: string): Participant | undefined;
  /** Add a participant, creating the room (with `mode`) when it does not exist. */
  add(roomId: string, mode: RoomMode, participant: Participant): { room: RoomPresence; created: boolean };
  /** Remove a participant; an empty room is deleted (`roomClosed`). Undefined when there was no such participant. */
  remove(roomId: string, participantId: string): { participant: Participant; room: RoomPresence; roomClosed: boolean } | undefined;
  setMuted(roomId: string, participantId: string, muted: boolean): Participant | undefined;
  setSpeaking(roomId: string, participantId: string, speaking: boolean): Participant | undefined;
  /** Connected, or reconnecting (resume grace); undefined when unchanged or no such participant. */
  setState(roomId: string, participantId: string, state: ParticipantState): Participant | undefined;
  /** Sets the room's running recording (null: none); returns the one it replaced, undefined without such a room. */
  setRecording(roomId: string, recording: RecordingInfo | null): RecordingInfo | null | undefined;
  snapshot(roomId: string): ParticipantInfo[];
}

export interface Participant {
  participantId: string;
  userId: string;
  name: string;
  muted: boolean;
  speaking: boolean;
  grants: Grant[];
  joinedAt: number;
  /** reconnecting: the owning session lost its connection and waits for `resume` (grace period). */
  state: ParticipantState;
  /** The signalling session that owns this participant. */
  sessionId: string;
}

export interface RoomPresence {
  readonly id: string;
  readonly mode: RoomMode;
  readonly participants: Map<string, Participant>;
  /** userId → the newest participantId with that identity in the room. */
  readonly byUser: Map<string, string>;
  /** The running recording (`record` op), told to joiners in `joined`. Ends with the room. */
  readonly recording: RecordingInfo | null;
}

interface MutableRoom extends RoomPresence {
  recording: RecordingInfo | null;
}

/** The in-memory Presence: one process, one node (the default). */
export class RoomRegistry implements Presence {
  readonly #rooms = new Map<string, MutableRoom>();
  #participantCount = 0;

  get roomCount(): number {
    return this.#rooms.size;
  }

  get participantCount(): number {
    return this.#participantCount;
  }

  get(roomId: string): RoomPresence | undefined {
    return this.#rooms.get(roomId);
  }

  rooms(): IterableIterator<RoomPresence> {
    return this.#rooms.values();
  }

  size(roomId: string): number {
    return this.#rooms.get(roomId)?.participants.size ?? 0;
  }

  participant(roomId: string, participantId: string): Participant | undefined {
    return this.#rooms.get(roomId)?.participants.get(participantId);
  }

  findByUser(roomId: string, userId: string): Participant | undefined {
    const room = this.#rooms.get(roomId);
    const pid = room?.byUser.get(userId);
    return pid === undefined ? undefined : room?.participants.get(pid);
  }

  add(roomId: string, mode: RoomMode, participant: Participant): { room: RoomPresence; created: boolean } {
    let room = this.#rooms.get(roomId);
    const created = room === undefined;
    if (!room) {
      room = { id: roomId, mode, participants: new Map(), byUser: new Map(), recording: null };
      this.#rooms.set(roomId, room);
    }
    room.participants.set(participant.participantId, participant);
    room.byUser.set(participant.userId, participant.participantId);
    this.#participantCount++;
    return { room, created };
  }

  remove(roomId: string, participantId: string): { participant: Participant; room: RoomPresence; roomClosed: boolean } | undefined {
    const room = this.#rooms.get(roomId);
    const participant = room?.participants.get(participantId);
    if (!room || !participant) return undefined;
    room.participants.delete(participantId);
    if (room.byUser.get(participant.userId) === participantId) {
      room.byUser.delete(participant.userId);
      // Two participants of one identity (signalling.replaceIdentity false): the newest left points there.
      let newest: Participant | undefined;
      for (const p of room.participants.values()) if (p.userId === participant.userId && (!newest || p.joinedAt >= newest.joinedAt)) newest = p;
      if (newest) room.byUser.set(newest.userId, newest.participantId);
    }
    this.#participantCount--;
    const roomClosed = room.participants.size === 0;
    if (roomClosed) this.#rooms.delete(roomId);
    return { participant, room, roomClosed };
  }

  setRecording(roomId: string, recording: RecordingInfo | null): RecordingInfo | null | undefined {
    const room = this.#rooms.get(roomId);
    if (!room) return undefined;
    const previous = room.recording;
    room.recording = recording;
    return previous;
  }

  setMuted(roomId: string, participantId: string, muted: boolean): Participant | undefined {
    const participant = this.participant(roomId, participantId);
    if (!participant || participant.muted === muted) return undefined;
    participant.muted = muted;
    return participant;
  }

  setSpeaking(roomId: string, participantId: string, speaking: boolean): Participant | undefined {
    const participant = this.participant(roomId, participantId);
    if (!participant || participant.speaking === speaking) return undefined;
    participant.speaking = speaking;
    return participant;
  }

  setState(roomId: string, participantId: string, state: ParticipantState): Participant | undefined {
    const participant = this.participant(roomId, participantId);
    if (!participant || participant.state === state) return undefined;
    participant.state = state;
    return participant;
  }

  snapshot(roomId: string): ParticipantInfo[] {
    const room = this.#rooms.get(roomId);
    if (!room) return [];
    const out: ParticipantInfo[] = [];
    for (const p of room.participants.values()) out.push(toParticipantInfo(p));
    return out;
  }
}

export function toParticipantInfo(p: Participant): ParticipantInfo {
  return {
    participantId: p.participantId,
    userId: p.userId,
    name: p.name,
    muted: p.muted,
    speaking: p.speaking,
    grants: p.grants,
    joinedAt: p.joinedAt,
    state: p.state,
  };
}
