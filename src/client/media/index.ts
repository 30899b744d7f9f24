/**
 * The SDK's media part. Browser code imports `BrowserMediaClient` (no Node APIs); Node code
 * (tests, load generators, bots) imports `NodeMediaClient` from './node.ts', which pulls in werift
 * and the wasm Opus codec.
 */
export { BrowserMediaClient, type BrowserMediaClientOptions, type BrowserMediaClientEvents, type AudioPath } from './browser-media-client.ts';
export { SlotMap } from './slot-map.ts';
export { audioLevelOf } from './audio-level.ts';
export type { MediaSignalChannel } from './media-signal.ts';
