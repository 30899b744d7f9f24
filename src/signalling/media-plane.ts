import type { ClientMediaMessage, ServerMediaMessage } from '../protocol/messages.ts';
import type { RecordingManifest } from '../recording/recorder.ts';

/** A recording as the media plane reports it (the manifest the room's recorder keeps). */
export type RecordingState = RecordingManifest;

/**
 * The boundary between signalling (main thread, this folder) and the media plane (src/media,
 * src/rooms/pool.ts: werift peers in piscina workers). Signalling owns presence and delivery;
 * the media plane owns RTP. Optional: without one, the server does presence only and answers
 * `media` messages with error MEDIA_UNAVAILABLE.
 */
export interface MediaGrants {
  publish: boolean;
  subscribe: boolean;
  record: boolean;
  admin: boolean;
}

export interface MediaParticipant {
  roomId: string;
  participantId: string;
  name: string;
  grants: MediaGrants;
  /**
   * The room's mode as signalling holds it (`join.options.mode` of the room's first joiner, else
   * signalling.defaultRoomMode). Used only when this join opens the media room; unset → the
   * plane's configured mode. `p2p` has no media room: the plane refuses it (MEDIA_UNSUPPORTED).
   */
  roomMode?: 'sfu' | 'mix' | 'hybrid' | 'p2p';
}

/** What the media plane may send to clients; signalling stamps seq and delivers (or buffers for resume). */
export interface MediaSink {
  toParticipant(roomId: string, participantId: string, message: ServerMediaMessage): void; // media/slots/speaking/media_reconnect
  toRoom(roomId: string, message: ServerMediaMessage): void;
}

export interface MediaPlane {
  attach(sink: MediaSink): void;
  join(p: MediaParticipant): Promise<void>;
  leave(roomId: string, participantId: string): Promise<void>; // called on leave and on grace expiry, NOT on a drop
  signal(roomId: string, participantId: string, message: ClientMediaMessage): Promise<void>;
  setMuted(roomId: string, participantId: string, muted: boolean): Promise<void>;
  /** Starts/stops the room's recording (`record` op, docs/recording.md); signalling checked the grant. */
  record(roomId: string, participantId: string, action: 'start' | 'stop'): Promise<RecordingState | null>;
  stats(): { workers: number; rooms: number };
  close(): Promise<void>;
}

export type { ClientMediaMessage, ServerMediaMessage };
