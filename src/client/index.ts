/**
 * Public surface of the VoxLink client SDK (browser-safe: no Node-only APIs; the WebSocket
 * implementation is injected or taken from `globalThis.WebSocket`). In Node 20 import
 * `src/client/node.ts`, which passes `ws`. Nothing else under src/client is imported from outside.
 */
export { VoxClient } from './vox-client.ts';
export type {
  ConnectionState,
  JoinOptions,
  TokenSource,
  ClientLogger,
  VoxClientOptions,
  VoxClientEvents,
  SessionInfo,
  RoomEventReason,
} from './vox-client.ts';
export type { RoomState, SlotAssignment } from './room.ts';
export { ExponentialBackoffPolicy, noReconnect } from './reconnect-policy.ts';
export type { ReconnectPolicy, ReconnectContext, BackoffOptions } from './reconnect-policy.ts';
export { SignallingError, errorSentences } from './errors.ts';
export type { ErrorSentenceKey, SignallingErrorDetails } from './errors.ts';
export { TypedEmitter } from './emitter.ts';
export type { EventMap, Listener } from './emitter.ts';
export type { WebSocketLike, WebSocketConstructor } from './transport.ts';
export { CloseCode, closeCodeTable, isResumableClose } from '../protocol/index.ts';
export type { ParticipantInfo, ProtocolErrorCode, RoomMode } from '../protocol/index.ts';
