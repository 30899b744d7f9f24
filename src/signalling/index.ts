/** Public surface of src/signalling. */
export { createSignallingCore } from './core.ts';
export type { SignallingCore, SignallingCoreOptions, SignallingStats } from './core.ts';
export { startServer, VERSION } from './server.ts';
export type { RouteInstaller, StartServerOptions, VoxServer } from './server.ts';
export { reportWorkerDeaths, ServerObserver } from './observer.ts';
export type { ServerEventListener, ServerEventName, ServerEvents, WorkerDeathSource } from './observer.ts';
export { roomTopic } from './transport.ts';
export type { Connection, Transport } from './transport.ts';
export type { MediaGrants, MediaParticipant, MediaPlane, MediaSink } from './media-plane.ts';
export { uwsNative } from './uws.ts';
