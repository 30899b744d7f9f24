import { signallingMetrics as metrics } from '../metrics/registry.ts';
import { CloseCode } from '../protocol/close-codes.ts';
import { decodeClientMessage } from '../protocol/codec.ts';
import type { ClientMessage } from '../protocol/messages.ts';
import type { ConnState, SignallingContext } from './context.ts';
import { connectionOps, sessionOps, type ConnectionOp, type SessionOp } from './ops/index.ts';
import type { ConnectionOpHandler, SessionOpHandler } from './ops/types.ts';
import { takeToken } from './token-bucket.ts';

const MAX_QUEUED_WHILE_PENDING = 32;

/**
 * One inbound frame, in order: the rate limit (token bucket, `limits.messagesPerSecond` up to
 * `limits.messageBurst`), the queue while `hello` is being verified, decoding and validation,
 * then the op's handler (ops/index.ts).
 */
export function createFrameHandler(ctx: SignallingContext): (state: ConnState, bytes: Uint8Array) => void {
  const { limits } = ctx.config;
  const tokensPerMs = limits.messagesPerSecond / 1000;

  function dispatch(state: ConnState, msg: ClientMessage): void {
    ctx.out.countIn(msg.op);
    if (msg.op === 'hello' || msg.op === 'resume') {
      (connectionOps[msg.op] as ConnectionOpHandler<ConnectionOp>)(ctx, state, msg);
      return;
    }
    const session = state.session;
    if (!session) {
      ctx.out.sendError(state, 'NOT_AUTHENTICATED', 'send hello or resume first', msg.ref, { about: msg.op });
      return;
    }
    (sessionOps[msg.op] as SessionOpHandler<SessionOp>)(ctx, state, session, msg);
  }

  return function handleFrame(state: ConnState, bytes: Uint8Array): void {
    if (state.closed) return;
    const now = Date.now();
    state.lastMessageAt = now;
    if (!takeToken(state, now, tokensPerMs, limits.messageBurst)) {
      state.dropped++;
      if (!state.limited) {
        state.limited = true;
        ctx.limitLog.warn(state.session, 'rate', {}, 'rate limited');
        ctx.out.sendError(state, 'RATE_LIMITED', `more than ${limits.messagesPerSecond} messages/s; message dropped`);
      }
      if (state.dropped > limits.rateCloseAfterDropped) ctx.connections.close(state, CloseCode.RATE_LIMITED, 'rate limit exceeded');
      return;
    }
    state.limited = false;
    state.dropped = 0;
    if (state.pending) {
      const queue = (state.queue ??= []);
      if (queue.length >= MAX_QUEUED_WHILE_PENDING) {
        ctx.connections.close(state, CloseCode.PROTOCOL_VIOLATION, 'too many messages before ready');
        return;
      }
      queue.push(Uint8Array.prototype.slice.call(bytes));
      return;
    }
    const decoded = decodeClientMessage(bytes);
    if (!decoded.ok && decoded.op === 'hello' && !state.session) {
      // A hello without a usable token is an auth failure like a bad token: 1008, not an error.
      ctx.out.countIn('invalid');
      metrics.authFailures.inc({ reason: 'token missing' });
      ctx.connections.close(state, CloseCode.POLICY_VIOLATION, `token missing or invalid hello (${decoded.message})`);
      return;
    }
    if (!decoded.ok) {
      ctx.out.countIn('invalid');
      ctx.out.sendError(state, decoded.code, decoded.message, decoded.ref, decoded.op ? { about: decoded.op } : undefined);
      return;
    }
    try {
      dispatch(state, decoded.message);
    } catch (err) {
      ctx.out.internalError(state, err, decoded.message.ref);
    }
  };
}
