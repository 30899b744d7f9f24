import type { ClientMessage, ClientOp } from '../../protocol/messages.ts';
import type { ConnState, SignallingContext } from '../context.ts';
import type { Session } from '../session.ts';

export type OpMessage<K extends ClientOp> = Extract<ClientMessage, { op: K }>;

/** Ops a connection may send before it has a session. */
export type ConnectionOp = 'hello' | 'resume';
/** Ops that need a session (hello or resume first, else NOT_AUTHENTICATED). */
export type SessionOp = Exclude<ClientOp, ConnectionOp>;

export type ConnectionOpHandler<K extends ConnectionOp> = (ctx: SignallingContext, state: ConnState, msg: OpMessage<K>) => void;

/**
 * One op of an authenticated connection. Handlers answer with `ctx.out` (reply with the
 * message's `ref`, or `sendError`), change rooms only through `ctx.rooms`, and never throw for
 * bad input; a throw is caught and answered INTERNAL (inbound.ts).
 */
export type SessionOpHandler<K extends SessionOp> = (ctx: SignallingContext, state: ConnState, session: Session, msg: OpMessage<K>) => void;
