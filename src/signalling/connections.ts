import { logger } from '../log.ts';
import { signallingMetrics as metrics } from '../metrics/registry.ts';
import { CloseCode } from '../protocol/close-codes.ts';
import type { ConnState, SignallingContext } from './context.ts';
import type { Session } from './session.ts';
import { tokenExpired } from './sessions.ts';
import type { Connection } from './transport.ts';

const log = logger('signalling');

/**
 * The open connections and their state, closing them, and the one timer that reaps connections
 * without a hello in time and zombies without heartbeats (one sweep, no timer per connection).
 */
export class ConnectionTable {
  readonly #ctx: SignallingContext;
  readonly #states = new Map<Connection, ConnState>();
  readonly #sweep: NodeJS.Timeout;

  constructor(ctx: SignallingContext) {
    this.#ctx = ctx;
    const sig = ctx.config.signalling;
    const every = Math.max(50, Math.min(1000, Math.floor(Math.min(sig.heartbeatTimeoutMs, sig.helloTimeoutMs) / 4)));
    this.#sweep = setInterval(() => this.#reap(Date.now()), every);
    this.#sweep.unref();
  }

  get size(): number {
    return this.#states.size;
  }

  open(conn: Connection, now: number): void {
    this.#states.set(conn, {
      conn,
      session: null,
      openedAt: now,
      lastMessageAt: now,
      tokens: this.#ctx.config.limits.messageBurst,
      tokensAt: now,
      limited: false,
      dropped: 0,
      pending: false,
      queue: null,
      closed: false,
    });
  }

  get(conn: Connection): ConnState | undefined {
    return this.#states.get(conn);
  }

  /** The state of the session's current connection, if it has one. */
  of(session: Session): ConnState | undefined {
    return session.connection ? this.#states.get(session.connection) : undefined;
  }

  /** The server closes a connection with `code`; the session's fate follows from the code (SessionTable.detach). */
  close(state: ConnState, code: number, reason: string): void {
    if (state.closed) return;
    state.closed = true;
    metrics.closes.inc({ code: String(code) });
    // Detach first: transports may call onClose synchronously inside close(), and that call must
    // not decide the session's fate without knowing the server chose this code.
    this.#ctx.sessions.detach(state, code, true);
    try {
      state.conn.close(code, truncateReason(reason));
    } catch (err) {
      log.debug({ err }, 'close on a dead connection');
    }
  }

  /** The transport reports the connection closed (by either side). */
  closed(conn: Connection, code: number): void {
    const state = this.#states.get(conn);
    if (!state) return;
    this.#states.delete(conn);
    state.closed = true;
    this.#ctx.sessions.detach(state, code, false);
  }

  /** Shutdown: every connection closed with 1001, no grace for their sessions (`forget` drops them after). */
  closeAll(): void {
    clearInterval(this.#sweep);
    for (const state of [...this.#states.values()]) {
      state.session = null;
      this.close(state, CloseCode.GOING_AWAY, 'server shutting down');
    }
  }

  forget(): void {
    this.#states.clear();
  }

  #reap(now: number): void {
    const { signalling: sig, auth } = this.#ctx.config;
    for (const state of this.#states.values()) {
      if (state.closed) continue;
      const session = state.session;
      if (!session && !state.pending && now - state.openedAt > sig.helloTimeoutMs) {
        this.close(state, CloseCode.HELLO_TIMEOUT, 'no hello in time');
      } else if (session && tokenExpired(session, auth.clockToleranceSec, now)) {
        // Expiry is enforced for the session's whole life, not only at hello: 1008 is terminal,
        // so the session ends now and the SDK reports "token expired" (docs/protocol.md "Token expiry").
        metrics.authFailures.inc({ reason: 'token expired' });
        log.info({ sessionId: session.id, userId: session.identity.userId }, 'session token expired');
        this.close(state, CloseCode.POLICY_VIOLATION, 'token expired');
      } else if (session && now - state.lastMessageAt > sig.heartbeatTimeoutMs) {
        this.#ctx.limitLog.warn(session, 'zombie', { idleMs: now - state.lastMessageAt }, 'heartbeat timeout');
        this.close(state, CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
      }
    }
  }
}

function truncateReason(reason: string): string {
  // RFC 6455 §5.5: control frame payload ≤ 125 bytes, 2 of which are the code.
  const buf = Buffer.from(reason, 'utf8');
  return buf.length <= 123 ? reason : buf.subarray(0, 120).toString('utf8') + '…';
}
