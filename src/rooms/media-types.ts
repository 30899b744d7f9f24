/**
 * The media contracts the rooms layer is built against: protocol messages (src/protocol), the
 * MediaRoom that runs inside a worker (src/media/room.ts), and the main↔media contract
 * (media-contract.ts, which signalling imports). One import point for src/rooms.
 */
export type {
  ClientMediaMessage,
  MediaGrants,
  MediaParticipant,
  MediaPlane,
  MediaRoomMode,
  MediaSink,
  RecordingState,
  ServerMediaMessage,
} from './media-contract.ts';
export type { MediaRoom, MediaRoomEvent, MediaRoomOptions, MediaRoomStats, RemoteMember, SpillLinkEnd } from '../media/room.ts';
