/** Public surface of the media package (runs inside a room worker). */
export {
  createMediaRoom,
  type MediaRoom,
  type MediaRoomEvent,
  type MediaRoomOptions,
  type MediaRoomStats,
  type MediaParticipant,
  type MediaGrants,
} from './room.ts';
export { SpeakerDetector, type SpeakerDetectorOptions, type SpeakingChange } from './speaker-detector.ts';
export { SlotRouter, type SlotAssignment, type SlotBinding } from './slot-router.ts';
export { SlotStream, type SlotHeader, type SlotStreamOptions, type SlotStreamStats } from './slot-stream.ts';
export { mediaPeerConfig, clientPeerConfig, keepHostCandidates, type MediaPeerOptions } from './peer-config.ts';
export { PortAllocator, portAllocator } from './port-allocator.ts';
export { RoomMixer, type RoomMixerOptions, type MixInputOptions, type MixPacket, type RoomMixerStats } from './mix.ts';
export { MixClock, type MixClockOptions, type MixClockStats } from './mix-clock.ts';
export { createMixCodecs, rtpClockRate, type MixCodecs, type MixInputCodec, type MixOutputFormat } from './mix-codecs.ts';
export { MixRoomAudio, type MixRoomAudioOptions, type MixRoomAudioStats, type MixRoomMode } from './mix-room.ts';
export { Transcoder, type TranscoderOptions, type TranscodedPacket, type TranscoderStats } from './transcode.ts';
export { type AudioTap, type InboundAudio } from './audio-tap.ts';
export { ROOM_MODES, type RoomModeRow } from './room-modes.ts';
export { SlotForwarder, type SlotForwarderOptions } from './slot-forwarder.ts';
export { RecordingTap, type RecordingTapOptions } from './recording-tap.ts';
