/**
 * The main↔media contract lives in src/rooms/media-contract.ts (below signalling, so nothing in
 * src/rooms or src/media imports upward). Re-exported here so signalling's imports stay short.
 */
export type {
  ClientMediaMessage,
  MediaGrants,
  MediaParticipant,
  MediaPlane,
  MediaSink,
  RecordingState,
  ServerMediaMessage,
} from '../rooms/media-contract.ts';
