/** Messages between the soak orchestrator (index.ts), its server process and its load processes. */
export interface ServerSample {
  t: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  connections: number;
  sessions: number;
}

export type SoakServerToParent =
  | { type: 'listening'; port: number }
  | { type: 'sample'; sample: ServerSample }
  | { type: 'memory'; rss: number; heapUsed: number; connections: number; sessions: number };

export type ParentToSoakServer = { type: 'measure' };

export interface LoadReport {
  /** Messages sent and received by this process since it started. */
  sent: number;
  received: number;
  /** Server `error` messages by code. */
  errors: Record<string, number>;
  /** Closes seen by code (the load's own goodbyes, 1000, are not counted). */
  closes: Record<string, number>;
  /** Round-trip times of heartbeat → heartbeat_ack (ms), sampled. */
  latencies: number[];
  /** Connections currently open. */
  open: number;
  /** Churn actions done, by name. */
  actions: Record<string, number>;
  /** Fuzz: frames sent, and messages from the server that did not decode. */
  fuzzFrames: number;
  invalidFromServer: number;
}

export type LoadToParent = { type: 'ready'; open: number } | { type: 'report'; report: LoadReport };
export type ParentToLoad = { type: 'report' } | { type: 'stop' };
