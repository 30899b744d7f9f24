import type { ParticipantInfo, RecordingInfo, RoomMode } from '../protocol/index.ts';

export type SlotAssignment = { slot: number; participantId: string | null };

/**
 * What the app reads about one joined room, at any time. The SDK applies every sequenced server
 * event to it before emitting the matching client event, so a listener always sees the model
 * already updated (and a `room` event carries the full state after a resume or re-join).
 */
export interface RoomState {
  readonly id: string;
  readonly mode: RoomMode;
  /** Your own participant id in this room (changes after a re-join on a fresh session). */
  readonly participantId: string;
  /** Everyone in the room, yourself included, keyed by participant id. */
  readonly participants: ReadonlyMap<string, ParticipantInfo>;
  /** Which participant occupies each outgoing audio slot (docs/media.md "Audio slots"). */
  readonly slots: readonly SlotAssignment[];
  /** Your own entry in `participants`. */
  readonly self: ParticipantInfo | undefined;
  /** Set while the room is being recorded (everyone in it is told; docs/recording.md). */
  readonly recording: RecordingInfo | null;
  /** The room's metadata, set by an admin (docs/api.md UpdateRoomMetadata); '' when none. */
  readonly metadata: string;
}

/** The SDK's mutable copy of a room; only VoxClient writes to it. */
export class LocalRoom implements RoomState {
  readonly id: string;
  mode: RoomMode;
  participantId: string;
  readonly participants = new Map<string, ParticipantInfo>();
  slots: SlotAssignment[] = [];
  recording: RecordingInfo | null = null;
  metadata = '';
  /** The join options to repeat when the SDK has to re-join on a fresh session. */
  joinOptions: { muted?: boolean; mode?: RoomMode; direct?: boolean };

  constructor(id: string, mode: RoomMode, participantId: string, joinOptions: { muted?: boolean; mode?: RoomMode; direct?: boolean }) {
    this.id = id;
    this.mode = mode;
    this.participantId = participantId;
    this.joinOptions = joinOptions;
  }

  get self(): ParticipantInfo | undefined {
    return this.participants.get(this.participantId);
  }

  replaceParticipants(list: readonly ParticipantInfo[]): void {
    this.participants.clear();
    for (const p of list) this.participants.set(p.participantId, p);
  }

  /** A plain snapshot for logging and `toJSON()`. */
  toJSON(): { id: string; mode: RoomMode; participantId: string; participants: ParticipantInfo[]; slots: SlotAssignment[]; metadata: string } {
    return {
      id: this.id,
      mode: this.mode,
      participantId: this.participantId,
      participants: [...this.participants.values()],
      slots: this.slots,
      metadata: this.metadata,
    };
  }
}

/** Whether two participant records differ in anything an app could display. */
export function participantChanged(a: ParticipantInfo, b: ParticipantInfo): boolean {
  return (
    a.muted !== b.muted ||
    a.speaking !== b.speaking ||
    a.state !== b.state ||
    a.name !== b.name ||
    a.userId !== b.userId ||
    a.grants.length !== b.grants.length ||
    a.grants.some((g, i) => b.grants[i] !== g)
  );
}
