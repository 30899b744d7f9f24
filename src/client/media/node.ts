/** Node entry of the SDK's media part (werift peer + wasm Opus). */
export {
  NodeMediaClient,
  type NodeMediaClientOptions,
  type NodeMediaClientEvents,
  type PublishOptions,
  type ReceivedPacket,
  type SlotReceiveStats,
} from './node-media-client.ts';
export { ToneSource, type PcmSource } from './pcm-source.ts';
export { PcmRecorder } from './pcm-recorder.ts';
export { SlotMap } from './slot-map.ts';
export { audioLevelOf } from './audio-level.ts';
export type { MediaSignalChannel } from './media-signal.ts';
