import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../auth/tokens.ts';
import type { VoxConfig } from '../config.ts';
import { signallingMetrics as metrics } from '../metrics/registry.ts';
import { CloseCode, isResumableClose } from '../protocol/close-codes.ts';
import type { InvalidSessionMessage, ResumeMessage } from '../protocol/messages.ts';
import { iceServersFor } from '../turn/credentials.ts';
import type { ConnState, SignallingContext } from './context.ts';
import { Session } from './session.ts';
import { roomTopic } from './transport.ts';

const ENDED_SESSIONS_REMEMBERED = 10_000;

export type SessionEndReason = 'disconnected' | 'replaced' | 'kicked';

/** Whether the session's token has expired (exp plus the configured clock tolerance) at `now`. */
export function tokenExpired(session: Session, clockToleranceSec: number, now: number): boolean {
  return now >= session.identity.expiresAt + clockToleranceSec * 1000;
}

function saveBucket(state: ConnState, session: Session): void {
  session.bucketTokens = state.tokens;
  session.bucketAt = state.tokensAt;
  session.bucketDropped = state.dropped;
  session.bucketLimited = state.limited;
}

/**
 * The rate limit follows the session across connections: the new connection's bucket is cut to
 * what the session's saved bucket holds by now (refilled for the time in between), less the
 * `resume` frame this connection already spent, and dropped counts carry over, so a client closed
 * with 4003 cannot reconnect into a fresh burst.
 */
function restoreBucket(state: ConnState, session: Session, limits: VoxConfig['limits'], now: number): void {
  if (session.bucketAt === 0) return;
  const refilled = Math.min(limits.messageBurst, session.bucketTokens + Math.max(0, now - session.bucketAt) * (limits.messagesPerSecond / 1000));
  const spentHere = Math.max(0, limits.messageBurst - state.tokens);
  state.tokens = Math.max(0, Math.min(state.tokens, refilled - spentHere));
  state.tokensAt = now;
  state.dropped = session.bucketDropped;
  state.limited = session.bucketLimited;
}

export function randomId(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * Sessions and resume. A session outlives its connection: a drop starts the grace period, a
 * `resume` within it attaches the new connection and replays what was missed, its expiry ends
 * the session (the participant leaves its rooms then, not at the drop). Meanwhile the rooms see
 * the participant as `reconnecting` (participant_updated at the drop and again at the resume).
 */
export class SessionTable {
  readonly #ctx: SignallingContext;
  readonly #sessions = new Map<string, Session>();
  /** Sessions without a connection, waiting for `resume`. */
  readonly #inGrace = new Set<Session>();
  /** Recently ended session ids → why, so a late `resume` gets a precise invalid_session reason. */
  readonly #ended = new Map<string, 'expired' | 'replaced'>();

  constructor(ctx: SignallingContext) {
    this.#ctx = ctx;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get inGrace(): number {
    return this.#inGrace.size;
  }

  get(sessionId: string): Session | undefined {
    return this.#sessions.get(sessionId);
  }

  /** A new session for a verified identity, attached to `state`. */
  create(state: ConnState, identity: Identity): Session {
    const sig = this.#ctx.config.signalling;
    const session = new Session(randomId(12), randomId(24), identity, sig.replayMaxMessages, sig.replayMaxBytes);
    this.#sessions.set(session.id, session);
    this.#attach(state, session);
    return session;
  }

  /**
   * Connection gone: the session waits for `resume` during the grace period — unless the close
   * was a goodbye (1000) or the server closed with a terminal code (the client will not resume, so
   * the others should not watch a ghost for the whole grace period).
   */
  detach(state: ConnState, code: number, byServer: boolean): void {
    const session = state.session;
    state.session = null;
    if (!session || session.connection !== state.conn) return;
    session.connection = null;
    saveBucket(state, session);
    if (session.ended) return;
    const graceMs = this.#ctx.config.signalling.resumeGraceMs;
    if (code === CloseCode.NORMAL || graceMs === 0 || (byServer && !isResumableClose(code))) {
      this.end(session, 'disconnected');
    } else {
      this.#inGrace.add(session);
      this.#ctx.rooms.setConnectionState(session, 'reconnecting');
      session.graceTimer = setTimeout(() => {
        session.graceTimer = null;
        if (!session.connection) this.end(session, 'disconnected');
      }, graceMs);
      session.graceTimer.unref();
    }
    this.updateGauges();
  }

  /** Remove a session for good: leave every room (others see participant_left now), free it. */
  end(session: Session, reason: SessionEndReason, closeCode?: number, closeReason?: string): void {
    if (session.ended) return;
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    this.#inGrace.delete(session);
    const state = this.#ctx.connections.of(session);
    for (const [roomId, participantId] of session.rooms) this.#ctx.rooms.remove(session, roomId, participantId, reason);
    session.ended = true;
    session.replay.clear();
    this.#sessions.delete(session.id);
    if (reason !== 'kicked') {
      this.#ended.set(session.id, reason === 'replaced' ? 'replaced' : 'expired');
      if (this.#ended.size > ENDED_SESSIONS_REMEMBERED) this.#ended.delete(this.#ended.keys().next().value as string);
    }
    if (state && closeCode !== undefined) this.#ctx.connections.close(state, closeCode, closeReason ?? reason);
    this.updateGauges();
  }

  /** Shutdown: every session ends now (no grace). */
  endAll(): void {
    for (const session of [...this.#sessions.values()]) this.end(session, 'disconnected');
  }

  /** `resume`: reattach the session to this connection and replay what it missed, or invalid_session. */
  resume(state: ConnState, msg: ResumeMessage): void {
    const { out, connections, config } = this.#ctx;
    if (state.session) {
      out.sendError(state, 'ALREADY_AUTHENTICATED', 'this connection already has a session', msg.ref, { about: 'resume' });
      return;
    }
    const session = this.#sessions.get(msg.sessionId);
    const invalid = (reason: InvalidSessionMessage['reason']): void => {
      metrics.resumes.inc({ outcome: reason });
      out.sendControl(state, { op: 'invalid_session', ref: msg.ref, reason });
    };
    if (!session || session.ended) return invalid(this.#ended.get(msg.sessionId) ?? 'unknown_session');
    const given = Buffer.from(msg.resumeToken);
    const expected = Buffer.from(session.resumeToken);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return invalid('bad_token');
    if (tokenExpired(session, config.auth.clockToleranceSec, Date.now())) {
      // The token ran out while the session waited: a resume would outlive it. A hello with a
      // fresh token starts over (docs/protocol.md "Token expiry").
      this.end(session, 'disconnected');
      return invalid('token_expired');
    }
    const frames = msg.lastSeq > session.seq ? null : session.replay.since(msg.lastSeq, session.seq);
    if (frames === null) {
      // The client missed messages we no longer hold: its view cannot be repaired; it re-joins.
      this.end(session, 'disconnected');
      return invalid('replay_gap');
    }
    // A resume may beat the server's detection of the old connection's death: retire it.
    const previous = connections.of(session);
    if (previous) {
      saveBucket(previous, session);
      previous.session = null;
      session.connection = null;
      connections.close(previous, CloseCode.SESSION_REPLACED, 'resumed on another connection');
    }
    this.#attach(state, session);
    restoreBucket(state, session, config.limits, Date.now());
    session.replay.ack(msg.lastSeq);
    for (const roomId of session.rooms.keys()) state.conn.subscribe?.(roomTopic(roomId));
    // Replay is contiguous: frame i carries seq lastSeq + 1 + i (replay-buffer.ts since).
    for (let i = 0; i < frames.length; i++) out.write(state, frames[i], msg.lastSeq + 1 + i);
    metrics.replayed.inc(frames.length);
    metrics.resumes.inc({ outcome: 'resumed' });
    out.sendControl(state, {
      op: 'resumed',
      ref: msg.ref,
      sessionId: session.id,
      replayed: frames.length,
      rooms: [...session.rooms.keys()],
      // Fresh TURN credentials: `ready`'s may have outlived turn.ttlSec by now.
      iceServers: iceServersFor(config.turn, this.#ctx.turnSecret, session.identity.userId),
    });
    this.#ctx.rooms.setConnectionState(session, 'connected');
  }

  /**
   * Close the session's current connection with `code` (e.g. 1001 to move a client to another
   * node): a resumable code keeps the session for the grace period, a terminal one ends it.
   * Returns false when the session does not exist or has no connection.
   */
  disconnect(sessionId: string, code: number, reason: string): boolean {
    const session = this.#sessions.get(sessionId);
    const state = session && this.#ctx.connections.of(session);
    if (!state) return false;
    this.#ctx.connections.close(state, code, reason);
    return true;
  }

  updateGauges(): void {
    const { presence } = this.#ctx;
    metrics.sessions.set({ state: 'connected' }, this.#sessions.size - this.#inGrace.size);
    metrics.sessions.set({ state: 'grace' }, this.#inGrace.size);
    metrics.rooms.set(presence.roomCount);
    metrics.participants.set(presence.participantCount);
  }

  #attach(state: ConnState, session: Session): void {
    state.session = session;
    session.connection = state.conn;
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    this.#inGrace.delete(session);
    this.updateGauges();
  }
}
