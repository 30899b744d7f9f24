import type { ClientMediaMessage, RoomMode, ServerMediaMessage } from '../protocol/messages.ts';
import type { RecordingManifest } from '../recording/layout.ts';
import type { RoomRequests } from './room-protocol.ts';

/**
 * The contract between signalling (main thread, src/signalling) and the media plane (this folder
 * and src/media: werift peers in piscina workers). Signalling owns presence and delivery; the
 * media plane owns RTP. Signalling imports these types from here; nothing in src/rooms or
 * src/media imports from src/signalling (docs/architecture.md, "Media folders and what each may
 * import"). The plane's calls are the room task's requests (room-protocol.ts) with the room id in
 * front, so their arguments and results are derived from `RoomRequests` rather than restated.
 *
 * Optional: without a plane, the server does presence only and answers `media` messages with
 * error MEDIA_UNAVAILABLE.
 */

/** A recording as the media plane reports it (the manifest the room's recorder keeps). */
export type RecordingState = RecordingManifest;

/**
 * The room modes a media room runs in (RoomMode is defined once, in the protocol). `p2p` rooms have
 * no server media; an `auto` room's media room, while it has one, runs as `sfu` (signalling/p2p.ts).
 */
export type MediaRoomMode = Exclude<RoomMode, 'p2p' | 'auto'>;

export interface MediaGrants {
  publish: boolean;
  subscribe: boolean;
  record: boolean;
  admin: boolean;
}

export interface MediaParticipant {
  roomId: string;
  participantId: string;
  /** The token's `sub`: recordings say whose voice a file is (absent: the file names only the participant). */
  userId?: string;
  /** Display name (recordings: file name, manifest, OpusTags ARTIST). */
  name: string;
  grants: MediaGrants;
  /**
   * The room's mode as signalling holds it (`join.options.mode` of the room's first joiner, else
   * signalling.defaultRoomMode). Used only when this join opens the media room; unset → the
   * plane's configured mode. `p2p`/`auto` have no media room of their own: the plane refuses them (MEDIA_UNSUPPORTED).
   */
  roomMode?: RoomMode;
  /**
   * The participant's number in a room spread over several workers (1…65535, given by the media
   * plane, the same on every worker): how the workers name its packets to each other.
   */
  memberNumber?: number;
}

/** What the media plane may send to clients; signalling stamps seq and delivers (or buffers for resume). */
export interface MediaSink {
  /** media / slots / speaking / media_reconnect for one participant. */
  toParticipant(roomId: string, participantId: string, message: ServerMediaMessage): void;
  toRoom(roomId: string, message: ServerMediaMessage): void;
}

type Data<K extends keyof RoomRequests> = RoomRequests[K]['data'];
type Result<K extends keyof RoomRequests> = Promise<RoomRequests[K]['result'] extends null ? void : RoomRequests[K]['result']>;

export interface MediaPlane {
  attach(sink: MediaSink): void;
  join(p: Data<'join'>['participant']): Result<'join'>;
  /** Called on leave and on grace expiry, NOT on a signalling drop. */
  leave(roomId: string, participantId: Data<'leave'>['participantId']): Result<'leave'>;
  signal(roomId: string, participantId: Data<'signal'>['participantId'], message: Data<'signal'>['message']): Result<'signal'>;
  setMuted(roomId: string, participantId: Data<'setMuted'>['participantId'], muted: Data<'setMuted'>['muted']): Result<'setMuted'>;
  /** Starts/stops the room's recording (`record` op, docs/recording.md); signalling checked the grant. */
  record(roomId: string, participantId: Data<'record'>['participantId'], action: Data<'record'>['action'], continues?: Data<'record'>['continues']): Result<'record'>;
  stats(): { workers: number; rooms: number };
  close(): Promise<void>;
}

export type { ClientMediaMessage, ServerMediaMessage };
