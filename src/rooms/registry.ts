import type { Grant, ParticipantInfo, RecordingInfo, RoomMode } from '../protocol/messages.ts';

/**
 * Presence: who is in which room and their mute/speaking state. Pure data, main thread only; the
 * signalling core is the only writer and turns every change into exactly one protocol event, which
 * is what keeps presence consistent across join, leave, drop, resume and grace expiry.
 */
export interface Participant {
  participantId: string;
  userId: string;
  name: string;
  muted: boolean;
  speaking: boolean;
  grants: Grant[];
  joinedAt: number;
  /** The signalling session that owns this participant. */
  sessionId: string;
}

export interface RoomPresence {
  readonly id: string;
  readonly mode: RoomMode;
  readonly participants: Map<string, Participant>;
  /** userId → participantId (one participant per identity per room: newest wins). */
  readonly byUser: Map<string, string>;
  /** The running recording (`record` op), told to joiners in `joined`. Ends with the room. */
  recording: RecordingInfo | null;
}

export class RoomRegistry {
  readonly #rooms = new Map<string, RoomPresence>();
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

  /** Add a participant, creating the room (with `mode`) when it does not exist. */
  add(roomId: string, mode: RoomMode, participant: Participant): RoomPresence {
    let room = this.#rooms.get(roomId);
    if (!room) {
      room = { id: roomId, mode, participants: new Map(), byUser: new Map(), recording: null };
      this.#rooms.set(roomId, room);
    }
    room.participants.set(participant.participantId, participant);
    room.byUser.set(participant.userId, participant.participantId);
    this.#participantCount++;
    return room;
  }

  /** Remove a participant; an empty room is deleted. Returns the removed participant. */
  remove(roomId: string, participantId: string): Participant | undefined {
    const room = this.#rooms.get(roomId);
    const participant = room?.participants.get(participantId);
    if (!room || !participant) return undefined;
    room.participants.delete(participantId);
    if (room.byUser.get(participant.userId) === participantId) room.byUser.delete(participant.userId);
    this.#participantCount--;
    if (room.participants.size === 0) this.#rooms.delete(roomId);
    return participant;
  }

  /** Returns the participant when the flag changed, undefined when it did not (or no such participant). */
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
  };
}
