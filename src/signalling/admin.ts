import { logger } from '../log.ts';
import type { ParticipantInfo, RecordingInfo, RoomMode } from '../protocol/messages.ts';
import { toParticipantInfo } from '../rooms/registry.ts';
import type { SignallingContext } from './context.ts';

const log = logger('signalling');

/** One room as the admin API lists it. */
export interface AdminRoomSummary {
  room: string;
  mode: RoomMode;
  participants: number;
  recording: RecordingInfo | null;
  metadata: string;
}

/** Why an admin operation did nothing; the HTTP layer turns it into a 404. */
export type AdminMiss = 'ROOM_NOT_FOUND' | 'PARTICIPANT_NOT_FOUND';

/**
 * The operations behind the admin API (src/admin/routes.ts; docs/api.md), on the signalling side.
 * They change rooms the way ops do: membership through `ctx.rooms`, per-participant flags through
 * `ctx.presence`'s setters with the matching protocol event, so each change is told once to the
 * room and once to the observer. Authorization is the caller's: these act on any room.
 */
export class RoomAdmin {
  readonly #ctx: SignallingContext;

  constructor(ctx: SignallingContext) {
    this.#ctx = ctx;
  }

  hasRoom(roomId: string): boolean {
    return this.#ctx.presence.get(roomId) !== undefined;
  }

  /** The participant id of `userId` in the room (one per identity per room), if there. */
  findByUser(roomId: string, userId: string): string | undefined {
    return this.#ctx.presence.findByUser(roomId, userId)?.participantId;
  }

  /** The rooms `visible` lets through, sorted by id. */
  listRooms(visible: (roomId: string) => boolean): AdminRoomSummary[] {
    const list: AdminRoomSummary[] = [];
    for (const room of this.#ctx.presence.rooms()) {
      if (!visible(room.id)) continue;
      list.push({
        room: room.id,
        mode: room.mode,
        participants: room.participants.size,
        recording: room.recording,
        metadata: this.#ctx.rooms.metadata(room.id) ?? '',
      });
    }
    return list.sort((a, b) => (a.room < b.room ? -1 : a.room > b.room ? 1 : 0));
  }

  listParticipants(roomId: string): ParticipantInfo[] | AdminMiss {
    if (!this.#ctx.presence.get(roomId)) return 'ROOM_NOT_FOUND';
    return this.#ctx.presence.snapshot(roomId);
  }

  /** Out of the room: it and the room hear participant_left `removed`, its media stops. */
  removeParticipant(roomId: string, participantId: string): true | AdminMiss {
    if (!this.#ctx.presence.get(roomId)) return 'ROOM_NOT_FOUND';
    return this.#ctx.rooms.evict(roomId, participantId, 'removed') ? true : 'PARTICIPANT_NOT_FOUND';
  }

  /**
   * Server-side mute: presence says muted (the room, the participant included, gets
   * participant_updated) and the media plane stops forwarding and mixing its audio. The
   * participant may unmute itself, as with a `mute` op from another participant (docs/protocol.md).
   */
  muteParticipant(roomId: string, participantId: string): ParticipantInfo | AdminMiss {
    const { presence, out, mediaPlane } = this.#ctx;
    if (!presence.get(roomId)) return 'ROOM_NOT_FOUND';
    const participant = presence.participant(roomId, participantId);
    if (!participant) return 'PARTICIPANT_NOT_FOUND';
    const changed = presence.setMuted(roomId, participantId, true);
    if (changed) {
      out.broadcast(roomId, { op: 'participant_updated', room: roomId, participant: toParticipantInfo(changed) });
      if (this.#ctx.p2p.hasServerMedia(roomId, participantId)) mediaPlane?.setMuted(roomId, participantId, true).catch((err: unknown) => log.error({ err, roomId }, 'media plane setMuted failed'));
      this.#ctx.p2p.muteChanged(roomId, participantId, true);
    }
    return toParticipantInfo(changed ?? participant);
  }

  /**
   * Everyone out (participant_left `room_ended`, to each of them too); the room closes with its
   * last participant, and with it the media room and a running recording (recording_stopped
   * `room_closed`). Returns how many were removed.
   */
  endRoom(roomId: string): number | AdminMiss {
    const room = this.#ctx.presence.get(roomId);
    if (!room) return 'ROOM_NOT_FOUND';
    let removed = 0;
    for (const participantId of [...room.participants.keys()]) {
      if (this.#ctx.rooms.evict(roomId, participantId, 'room_ended')) removed++;
    }
    return removed;
  }

  /** New metadata for an existing room, told to everyone in it (`room_metadata`) and to joiners (`joined.metadata`). */
  updateRoomMetadata(roomId: string, metadata: string): AdminRoomSummary | AdminMiss {
    if (!this.#ctx.rooms.setMetadata(roomId, metadata)) return 'ROOM_NOT_FOUND';
    return this.listRooms((id) => id === roomId)[0]!;
  }

  /** A recording's transcript is ready: tells everyone in the room (`transcript`), if it is still live. */
  announceTranscript(roomId: string, recordingId: string, counts: { tracks: number; words: number; failed: number }): boolean {
    if (!this.#ctx.presence.get(roomId)) return false;
    this.#ctx.out.broadcast(roomId, { op: 'transcript', room: roomId, recordingId, ...counts });
    return true;
  }
}
