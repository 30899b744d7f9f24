import type { VoxConfig } from '../config.ts';
import { resolveAuthKeys, type AuthKeys } from '../auth/keys.ts';
import { logger } from '../log.ts';
import { signallingMetrics as metrics } from '../metrics/registry.ts';
import { CloseCode } from '../protocol/close-codes.ts';
import type { RecordingInfo } from '../protocol/messages.ts';
import { RoomRegistry, type Presence } from '../rooms/registry.ts';
import { ConnectionTable } from './connections.ts';
import { RoomAdmin } from './admin.ts';
import type { ConnState, SignallingContext } from './context.ts';
import { createFrameHandler } from './inbound.ts';
import type { JoinRouter } from './join-router.ts';
import { LimitLog } from './limit-log.ts';
import type { MediaPlane } from './media-plane.ts';
import { createMediaSink } from './media-sink.ts';
import { ServerObserver } from './observer.ts';
import { Outbound } from './outbound.ts';
import { PeerToPeer } from './p2p.ts';
import type { RecordingContinuation } from '../recording/layout.ts';
import { continueRecording } from './room-recording.ts';
import { RoomMembership } from './rooms.ts';
import { SessionTable } from './sessions.ts';
import type { Connection, Transport } from './transport.ts';

const log = logger('signalling');

export interface SignallingCoreOptions {
  /** Verification key; default resolveAuthKeys(config) (configured key or the dev secret). */
  keys?: AuthKeys;
  mediaPlane?: MediaPlane;
  /** Who is in which room; default a new in-memory RoomRegistry (rooms/registry.ts). */
  presence?: Presence;
  /** Cluster join routing (src/cluster/node.ts); without it every join is served here. */
  router?: JoinRouter;
  /** Where room, participant and recording events go (observer.ts); default a new one. */
  observer?: ServerObserver;
  /** Transport-wide publish (uWS app.publish); without it room events go out per connection. */
  transport?: Transport;
  /** TURN shared secret (config or dev data dir); without it no TURN credentials are handed out. */
  turnSecret?: string;
  /** Reported in `ready`. */
  serverInfo?: { version: string; native: boolean };
}

export interface SignallingStats {
  connections: number;
  sessions: number;
  sessionsInGrace: number;
  rooms: number;
  participants: number;
}

/**
 * The transport-independent signalling handler: auth, sessions with resume, presence and room
 * fan-out, limits. Feed it connections through `onOpen/onMessage/onClose` (see transport.ts).
 * docs/architecture.md "Signalling folders and what each may import" maps its parts.
 */
export interface SignallingCore {
  onOpen(conn: Connection): void;
  onMessage(conn: Connection, bytes: Uint8Array, isBinary: boolean): void;
  onClose(conn: Connection, code: number): void;
  /** Presence (the name is the in-memory implementation's, kept for callers). */
  readonly registry: Presence;
  readonly observer: ServerObserver;
  /** The operations of the admin API (admin.ts; its HTTP routes are src/admin/routes.ts). */
  readonly admin: RoomAdmin;
  /**
   * Closes a session's current connection with `code` (e.g. 1001 while draining a node): a
   * resumable code keeps the session for the resume grace period, a terminal one ends it. False
   * when there is no such session or it has no connection.
   */
  disconnect(sessionId: string, code: number, reason: string): boolean;
  /**
   * Cluster drain: tells every session in the room that it moved to another node (`redirect`,
   * reason `moving`, no ref). Returns how many sessions were told.
   */
  redirectRoom(roomId: string, url: string, ticket: string): number;
  /**
   * Cluster move: starts again here a recording the room had on its previous node
   * (room-recording.ts). Null when there is nothing to continue.
   */
  continueRecording(roomId: string, continues?: RecordingContinuation): Promise<RecordingInfo | null>;
  stats(): SignallingStats;
  /** Close every connection with 1001, drop all sessions (no grace), stop timers. Idempotent. */
  close(): void;
}

export function createSignallingCore(config: VoxConfig, options: SignallingCoreOptions = {}): SignallingCore {
  const { limits } = config;
  // The parts take the context and reach each other through it only at call time, so it is
  // filled in here, once, before any connection exists.
  const ctx = {
    config,
    keys: options.keys ?? resolveAuthKeys(config),
    presence: options.presence ?? new RoomRegistry(),
    observer: options.observer ?? new ServerObserver(),
    mediaPlane: options.mediaPlane,
    router: options.router,
    turnSecret: options.turnSecret,
    serverInfo: { version: options.serverInfo?.version ?? '0.0.0', protocol: 1 as const, native: options.serverInfo?.native ?? false },
    limitLog: new LimitLog(),
  } as { -readonly [K in keyof SignallingContext]: SignallingContext[K] };
  ctx.out = new Outbound(ctx, options.transport);
  ctx.sessions = new SessionTable(ctx);
  ctx.rooms = new RoomMembership(ctx);
  ctx.p2p = new PeerToPeer(ctx);
  ctx.connections = new ConnectionTable(ctx);
  ctx.handleFrame = createFrameHandler(ctx);
  const { connections, sessions, presence, handleFrame } = ctx;
  let closed = false;

  options.mediaPlane?.attach(createMediaSink(ctx));
  sessions.updateGauges();

  return {
    registry: presence,
    observer: ctx.observer,
    admin: new RoomAdmin(ctx),
    onOpen(conn: Connection): void {
      if (closed) {
        conn.close(CloseCode.GOING_AWAY, 'server shutting down');
        return;
      }
      connections.open(conn, Date.now());
    },
    onMessage(conn: Connection, bytes: Uint8Array, isBinary: boolean): void {
      const state: ConnState | undefined = connections.get(conn);
      if (!state || state.closed) return;
      try {
        if (!isBinary) {
          connections.close(state, CloseCode.UNSUPPORTED_DATA, 'binary frames only (MessagePack)');
          return;
        }
        if (bytes.byteLength > limits.maxPayloadBytes) {
          connections.close(state, CloseCode.MESSAGE_TOO_BIG, `frame larger than ${limits.maxPayloadBytes} bytes`);
          return;
        }
        handleFrame(state, bytes);
      } catch (err) {
        ctx.out.internalError(state, err);
      }
    },
    onClose(conn: Connection, code: number): void {
      try {
        connections.closed(conn, code);
      } catch (err) {
        metrics.internalErrors.inc();
        log.error({ err }, 'close handling failed');
      }
    },
    disconnect: (sessionId, code, reason) => sessions.disconnect(sessionId, code, reason),
    redirectRoom(roomId: string, url: string, ticket: string): number {
      const room = presence.get(roomId);
      if (!room) return 0;
      const told = new Set<string>();
      for (const p of room.participants.values()) {
        const session = sessions.get(p.sessionId);
        if (!session || told.has(session.id)) continue;
        told.add(session.id);
        ctx.out.sendTo(session, { op: 'redirect', room: roomId, url, ticket, reason: 'moving' });
      }
      return told.size;
    },
    continueRecording(roomId: string, continues?: RecordingContinuation): Promise<RecordingInfo | null> {
      return continueRecording(ctx, roomId, continues);
    },
    stats(): SignallingStats {
      return {
        connections: connections.size,
        sessions: sessions.size,
        sessionsInGrace: sessions.inGrace,
        rooms: presence.roomCount,
        participants: presence.participantCount,
      };
    },
    close(): void {
      if (closed) return;
      closed = true;
      connections.closeAll();
      sessions.endAll();
      ctx.p2p.close();
      connections.forget();
      sessions.updateGauges();
    },
  };
}
