import type { VoxConfig } from '../config.ts';
import type { AuthKeys } from '../auth/keys.ts';
import type { Presence } from '../rooms/registry.ts';
import type { ConnectionTable } from './connections.ts';
import type { JoinRouter } from './join-router.ts';
import type { LimitLog } from './limit-log.ts';
import type { MediaPlane } from './media-plane.ts';
import type { ServerObserver } from './observer.ts';
import type { PeerToPeer } from './p2p.ts';
import type { Outbound } from './outbound.ts';
import type { RoomMembership } from './rooms.ts';
import type { Session } from './session.ts';
import type { SessionTable } from './sessions.ts';
import type { BucketState } from './token-bucket.ts';
import type { Connection } from './transport.ts';

/**
 * Per-connection state. Kept flat (the token bucket inline, no queue until needed): with thousands
 * of idle connections every object and array per connection shows up in RSS.
 */
export interface ConnState extends BucketState {
  conn: Connection;
  session: Session | null;
  openedAt: number;
  lastMessageAt: number;
  /** Currently rate limited (one RATE_LIMITED error per episode). */
  limited: boolean;
  dropped: number;
  /** hello being verified: later frames wait in `queue`. */
  pending: boolean;
  queue: Uint8Array[] | null;
  closed: boolean;
}

/**
 * What the signalling parts share, made once per core (core.ts). Each part reaches the others
 * through it at call time, so none of them needs the others at construction.
 */
export interface SignallingContext {
  readonly config: VoxConfig;
  readonly keys: AuthKeys;
  readonly presence: Presence;
  readonly observer: ServerObserver;
  readonly mediaPlane: MediaPlane | undefined;
  /** Cluster join routing (src/cluster); undefined: one node, every join is served here. */
  readonly router: JoinRouter | undefined;
  /** TURN shared secret for `ready`/`resumed` iceServers; undefined: none handed out. */
  readonly turnSecret: string | undefined;
  readonly serverInfo: { version: string; protocol: 1; native: boolean };
  readonly connections: ConnectionTable;
  readonly sessions: SessionTable;
  readonly rooms: RoomMembership;
  /** p2p and auto rooms: direct or through the server, and the peer relay (p2p.ts). */
  readonly p2p: PeerToPeer;
  readonly out: Outbound;
  readonly limitLog: LimitLog;
  /** Handle one inbound frame (inbound.ts); frames queued during `hello` come back through it. */
  handleFrame(state: ConnState, bytes: Uint8Array): void;
}
