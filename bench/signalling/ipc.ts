/** Messages between the bench orchestrator (index.ts), the server process and the load generators. */
/** uws-batched is an experiment (see uws-batched.ts), only run when named with --only=. */
export type ServerKind = 'uws' | 'ws' | 'socketio' | 'uws-batched';

export type ServerToParent =
  | { type: 'listening'; port: number }
  | { type: 'memory'; rss: number; heapUsed: number }
  | { type: 'cpu'; micros: number };

export type ParentToServer = { type: 'measure' } | { type: 'cpu' };

export interface LoadConfig {
  kind: ServerKind;
  port: number;
  /** throughput: join, then presence updates + heartbeats; idle: join and sit still. */
  mode: 'throughput' | 'idle';
  roomPrefix: string;
  rooms: number;
  roomSize: number;
  heartbeatMs: number;
  window: number;
}

export type ParentToLoad = { type: 'config'; config: LoadConfig } | { type: 'start' } | { type: 'reset' } | { type: 'report' };

export type LoadToParent =
  | { type: 'ready'; clients: number }
  | { type: 'report'; delivered: number; sent: number; heartbeatAcks: number; histogram: number[]; cpuMicros: number };
