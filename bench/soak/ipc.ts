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
  | { type: 'memory'; rss: number; heapUsed: number; connections: number; sessions: number }
  /** A media worker thread was terminated at `at` (epoch ms); `rooms`: the asked-about rooms it hosted. */
  | { type: 'worker-killed'; threadId: number | null; at: number; rooms: string[] };

export type ParentToSoakServer = { type: 'measure' } | { type: 'kill-worker'; rooms: string[]; target: string };

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
  /** Fuzz frames sent on connections that never said hello (part of fuzzFrames), and those connections. */
  preauthFrames: number;
  preauthConnections: number;
  /** Hostile datagrams sent to the media ports. */
  datagrams: number;
}

export type LoadToParent = { type: 'ready'; open: number } | { type: 'report'; report: LoadReport };
export type ParentToLoad = { type: 'report' } | { type: 'stop' };

/** The tone rooms (media-load.ts). */
export interface MediaLoadReport {
  clients: number;
  /** Slot RTP packets received, and sequence numbers missing inside continuous streams. */
  received: number;
  lost: number;
  /** Packets the other publishers of each client's room sent since counting began. */
  expected: number;
  /** Frames the publishers sent against 50/s each: below 100 when the load process itself is starved. */
  publisherFramesPct: number;
  /** Per chaos event: how long until every affected client heard everyone again (null: not within 30 s). */
  recoveries: { event: string; at: number; rooms: string[]; perClientMs: (number | null)[]; audioBackMs: number | null }[];
  /** SDK errors by code, signalling socket closes by code, connection states entered. */
  errors: Record<string, number>;
  closes: Record<string, number>;
  states: Record<string, number>;
  mediaReconnects: number;
  recordings: string[];
  /** Slot packets received in each second since counting began (all clients): outages show as dips. */
  perSecond: number[];
}

export type MediaLoadToParent =
  | { type: 'ready'; open: number; hearing: boolean; rooms: string[] }
  | { type: 'report'; report: MediaLoadReport }
  | { type: 'recovered'; event: string }
  | { type: 'recording'; action: 'start' | 'stop'; ids: (string | null)[]; error?: string };

export type ParentToMediaLoad =
  | { type: 'report' }
  | { type: 'stop' }
  /** Something took the rooms' media down at `at` (epoch ms): measure until everyone hears everyone. */
  | { type: 'recover'; event: string; at: number; rooms?: string[] }
  | { type: 'record'; action: 'start' | 'stop' };
