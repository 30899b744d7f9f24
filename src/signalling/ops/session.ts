import { verifyToken, type Identity } from '../../auth/tokens.ts';
import { isVoxError } from '../../errors.ts';
import { logger } from '../../log.ts';
import { signallingMetrics as metrics } from '../../metrics/registry.ts';
import { CloseCode } from '../../protocol/close-codes.ts';
import { iceServersFor } from '../../turn/credentials.ts';
import type { ConnState, SignallingContext } from '../context.ts';
import type { ConnectionOpHandler, OpMessage, SessionOpHandler } from './types.ts';

const log = logger('signalling');

/**
 * `hello`: verify the token, open a session, answer `ready`. Frames that arrive while the token is
 * being verified wait in the connection's queue and are handled, in order, right after.
 */
export const hello: ConnectionOpHandler<'hello'> = (ctx, state, msg) => {
  if (state.session) {
    ctx.out.sendError(state, 'ALREADY_AUTHENTICATED', 'this connection already has a session', msg.ref, { about: 'hello' });
    return;
  }
  state.pending = true;
  openSession(ctx, state, msg)
    .catch((err: unknown) => ctx.out.internalError(state, err, msg.ref))
    .finally(() => {
      state.pending = false;
      const queued = state.queue;
      state.queue = null;
      if (queued) for (const bytes of queued) ctx.handleFrame(state, bytes);
    });
};

async function openSession(ctx: SignallingContext, state: ConnState, msg: OpMessage<'hello'>): Promise<void> {
  const { out, connections, sessions, config } = ctx;
  let identity: Identity;
  try {
    identity = await verifyToken(msg.token, ctx.keys.verify);
  } catch (err) {
    const reason = isVoxError(err) ? err.message : 'token rejected';
    metrics.authFailures.inc({ reason });
    log.info({ reason }, 'hello rejected');
    connections.close(state, CloseCode.POLICY_VIOLATION, reason);
    return;
  }
  if (state.closed) return;
  if (state.session) {
    out.sendError(state, 'ALREADY_AUTHENTICATED', 'this connection already has a session', msg.ref, { about: 'hello' });
    return;
  }
  if (sessions.size >= config.limits.maxSessions) {
    ctx.limitLog.warn(null, 'max_sessions', { sessions: sessions.size }, 'session limit reached');
    connections.close(state, CloseCode.TRY_AGAIN_LATER, 'server full');
    return;
  }
  const session = sessions.create(state, identity);
  const sig = config.signalling;
  out.sendControl(state, {
    op: 'ready',
    ref: msg.ref,
    sessionId: session.id,
    resumeToken: session.resumeToken,
    heartbeatIntervalMs: sig.heartbeatIntervalMs,
    resumeGraceMs: sig.resumeGraceMs,
    userId: identity.userId,
    name: identity.name,
    server: ctx.serverInfo,
    iceServers: iceServersFor(config.turn, ctx.turnSecret, identity.userId),
    tokenExpiresAt: identity.expiresAt,
  });
  log.debug({ sessionId: session.id, userId: identity.userId }, 'session ready');
}

/** `resume`: sessions.ts does it (replay, or invalid_session). */
export const resume: ConnectionOpHandler<'resume'> = (ctx, state, msg) => ctx.sessions.resume(state, msg);

/** `heartbeat`: acks what the client has (trims its replay buffer) and tells it our last seq. */
export const heartbeat: SessionOpHandler<'heartbeat'> = (ctx, state, session, msg) => {
  session.replay.ack(msg.ack);
  ctx.out.sendControl(state, { op: 'heartbeat_ack', ref: msg.ref, lastSeq: session.seq });
};

/**
 * `refresh`: a newer token for the same user, verified like hello's. The session keeps its id,
 * rooms and sequence and from now on ends at the new token's expiry; later ops are checked against
 * the new token's grants. A rejected token changes nothing (TOKEN_REJECTED): the current one stays
 * in force until it expires.
 */
export const refresh: SessionOpHandler<'refresh'> = (ctx, _state, session, msg) => {
  // Answer on the session's connection at reply time: it may have resumed elsewhere meanwhile.
  const reply = (send: (current: ConnState) => void): void => {
    const current = ctx.connections.of(session);
    if (current && !current.closed) send(current);
  };
  verifyToken(msg.token, ctx.keys.verify).then(
    (identity) => {
      if (session.ended) return;
      if (identity.userId !== session.identity.userId) {
        metrics.authFailures.inc({ reason: 'refresh for another user' });
        reply((current) => ctx.out.sendError(current, 'TOKEN_REJECTED', 'the new token is for another user', msg.ref, { about: 'refresh' }));
        return;
      }
      session.identity = identity;
      reply((current) => ctx.out.sendControl(current, { op: 'refreshed', ref: msg.ref, tokenExpiresAt: identity.expiresAt }));
    },
    (err: unknown) => {
      if (session.ended) return;
      const reason = isVoxError(err) ? err.message : 'token rejected';
      metrics.authFailures.inc({ reason });
      reply((current) => ctx.out.sendError(current, 'TOKEN_REJECTED', reason, msg.ref, { about: 'refresh' }));
    },
  );
};
