import { logger } from '../log.ts';
import type { ParticipantState, RecordingInfo } from '../protocol/messages.ts';
import { toParticipantInfo, type Participant, type RoomPresence } from '../rooms/registry.ts';
import type { ConnState, SignallingContext } from './context.ts';
import type { ServerEvents } from './observer.ts';
import { isPeerRoomMode } from './p2p.ts';
import type { Session } from './session.ts';
import { roomTopic } from './transport.ts';

const log = logger('signalling');

export type LeaveReason = ServerEvents['participant_left']['reason'];

/**
 * Room membership: the one writer of presence for joins, leaves and the room's recording. Each
 * change here is made once and told once: to the room (protocol events, by the callers that
 * own the reply) and to the server observer (here, after the change).
 */
export class RoomMembership {
  readonly #ctx: SignallingContext;
  /** roomId → metadata set by an admin (UpdateRoomMetadata); dropped when the room closes. */
  readonly #metadata = new Map<string, string>();

  constructor(ctx: SignallingContext) {
    this.#ctx = ctx;
  }

  /** Puts the session's participant into the room (created with `mode` if new). */
  add(state: ConnState, session: Session, roomId: string, mode: RoomPresence['mode'], participant: Participant): RoomPresence {
    const { presence, observer } = this.#ctx;
    const { room, created } = presence.add(roomId, mode, participant);
    session.rooms.set(roomId, participant.participantId);
    state.conn.subscribe?.(roomTopic(roomId));
    if (created) observer.emit('room_created', { roomId, mode: room.mode });
    observer.emit('participant_joined', {
      roomId,
      participantId: participant.participantId,
      userId: participant.userId,
      name: participant.name,
      sessionId: session.id,
    });
    return room;
  }

  /** Takes the participant out: the room hears participant_left, the media plane a leave. */
  remove(session: Session, roomId: string, participantId: string, reason: LeaveReason): void {
    const { presence, observer, out, mediaPlane } = this.#ctx;
    session.rooms.delete(roomId);
    this.#ctx.connections.of(session)?.conn.unsubscribe?.(roomTopic(roomId));
    const removed = presence.remove(roomId, participantId);
    if (!removed) return;
    out.broadcast(roomId, { op: 'participant_left', room: roomId, participantId, reason });
    if (isPeerRoomMode(removed.room.mode)) {
      // A p2p or auto room: its server peers, if any, are p2p.ts's.
      this.#ctx.p2p.leave(roomId, participantId);
    } else if (mediaPlane) {
      mediaPlane.leave(roomId, participantId).catch((err: unknown) => log.error({ err, roomId }, 'media plane leave failed'));
    }
    this.#ctx.sessions.updateGauges();
    observer.emit('participant_left', { roomId, participantId, userId: removed.participant.userId, sessionId: session.id, reason });
    if (removed.roomClosed) {
      this.#metadata.delete(roomId);
      const recording = removed.room.recording;
      if (recording !== null) observer.emit('recording_stopped', { roomId, recordingId: recording.id, reason: 'room_closed' });
      observer.emit('room_closed', { roomId });
    }
  }

  /**
   * Takes a participant out on an admin's word (`removed`, `room_ended`): the room hears
   * participant_left like any leave, and the participant itself gets the same message about
   * itself (the SDK drops the room on it). False when there is no such participant.
   */
  evict(roomId: string, participantId: string, reason: 'removed' | 'room_ended'): boolean {
    const { presence, sessions, out } = this.#ctx;
    const participant = presence.participant(roomId, participantId);
    if (!participant) return false;
    const session = sessions.get(participant.sessionId);
    if (!session || session.rooms.get(roomId) !== participantId) {
      // Presence without a live session should not happen; take the entry out all the same.
      presence.remove(roomId, participantId);
      return true;
    }
    this.remove(session, roomId, participantId, reason);
    out.sendTo(session, { op: 'participant_left', room: roomId, participantId, reason });
    return true;
  }

  /** The room's metadata (joined.metadata), undefined when none was set. */
  metadata(roomId: string): string | undefined {
    return this.#metadata.get(roomId);
  }

  /** Sets the metadata of an existing room and tells everyone in it (`room_metadata`). False without such a room. */
  setMetadata(roomId: string, metadata: string): boolean {
    if (!this.#ctx.presence.get(roomId)) return false;
    if (metadata === '') this.#metadata.delete(roomId);
    else this.#metadata.set(roomId, metadata);
    this.#ctx.out.broadcast(roomId, { op: 'room_metadata', room: roomId, metadata });
    return true;
  }

  /**
   * The session's connection dropped into the resume grace period (`reconnecting`) or came back
   * (`connected`): every room it is in hears participant_updated with the new state.
   */
  setConnectionState(session: Session, state: ParticipantState): void {
    const { presence, out } = this.#ctx;
    for (const [roomId, participantId] of session.rooms) {
      const changed = presence.setState(roomId, participantId, state);
      if (changed) out.broadcast(roomId, { op: 'participant_updated', room: roomId, participant: toParticipantInfo(changed) }, participantId);
    }
  }

  /**
   * The room's running recording as joiners see it (`joined.recording`): the one place it is set,
   * from a `record` reply and from the media plane's own `recording` messages. A new id stops the
   * old one (`replaced`); `stop` says why a running one ends without a successor.
   */
  setRecording(roomId: string, next: RecordingInfo | null, stop: { reason: 'stopped' | 'lost'; stoppedBy?: string }): void {
    const previous = this.#ctx.presence.setRecording(roomId, next);
    if (previous === undefined) return;
    const observer = this.#ctx.observer;
    if (previous !== null && previous.id !== next?.id) {
      observer.emit('recording_stopped', {
        roomId,
        recordingId: previous.id,
        ...(next !== null ? { reason: 'replaced' as const } : stop),
      });
    }
    if (next !== null && previous?.id !== next.id) {
      observer.emit('recording_started', { roomId, recordingId: next.id, startedBy: next.startedBy, startedAt: next.startedAt });
    }
  }
}
