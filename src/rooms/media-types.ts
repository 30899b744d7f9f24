/**
 * The media contracts the rooms layer is built against: protocol messages (src/protocol), the
 * MediaRoom that runs inside a worker (src/media/room.ts), and the MediaPlane the signalling
 * layer calls (src/signalling/media-plane.ts). One import point for src/rooms.
 */
import type { ClientMediaMessage, ServerMediaMessage } from '../protocol/index.ts';

export type { ClientMediaMessage, ServerMediaMessage };
export type {
  MediaGrants,
  MediaParticipant,
  MediaRoom,
  MediaRoomEvent,
  MediaRoomOptions,
  MediaRoomStats,
  RecordingState,
} from '../media/room.ts';

export type { MediaPlane, MediaSink } from '../signalling/media-plane.ts';
