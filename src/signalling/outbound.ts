import { logger } from '../log.ts';
import { signallingMetrics as metrics } from '../metrics/registry.ts';
import { CloseCode } from '../protocol/close-codes.ts';
import { encodeMessage, stampSeq } from '../protocol/codec.ts';
import type { ProtocolErrorCode } from '../protocol/error-codes.ts';
import type { UnstampedServerMessage } from '../protocol/messages.ts';
import type { ConnState, SignallingContext } from './context.ts';
import type { Session } from './session.ts';
import { roomTopic, type Transport } from './transport.ts';

const log = logger('signalling');

type CounterChild = { inc(n?: number): void };

/**
 * Everything the server sends: encoding, sequencing into the session's replay buffer, room
 * fan-out, the backpressure check on every write, and the per-op message counters.
 */
export class Outbound {
  readonly #ctx: SignallingContext;
  readonly #transport: Transport | undefined;
  readonly #maxBackpressureBytes: number;
  /**
   * Per-op counter children, resolved once: a labelled `inc({ op })` hashes its label object on
   * every call; a child is one addition. Fan-out counts once per broadcast with n = recipients.
   */
  readonly #outCounters = new Map<string, CounterChild>();
  readonly #inCounters = new Map<string, CounterChild>();

  constructor(ctx: SignallingContext, transport: Transport | undefined) {
    this.#ctx = ctx;
    this.#transport = transport;
    this.#maxBackpressureBytes = ctx.config.limits.maxBackpressureBytes;
  }

  countOut(op: string, n = 1): void {
    let child = this.#outCounters.get(op);
    if (!child) {
      child = metrics.messagesOut.labels(op);
      this.#outCounters.set(op, child);
    }
    child.inc(n);
  }

  countIn(op: string): void {
    let child = this.#inCounters.get(op);
    if (!child) {
      child = metrics.messagesIn.labels(op);
      this.#inCounters.set(op, child);
    }
    child.inc();
  }

  /**
   * Raw send with the backpressure check: a reader too slow for `maxBackpressureBytes` is closed.
   * `seq` > 0: `frame` is an unstamped body the transport stamps (sendSequenced) or we stamp here.
   */
  write(state: ConnState, frame: Uint8Array, seq = 0): void {
    if (state.closed) return;
    const conn = state.conn;
    if (seq === 0) conn.send(frame);
    else if (conn.sendSequenced) conn.sendSequenced(frame, seq);
    else conn.send(stampSeq(frame, seq));
    if (conn.bufferedAmount() > this.#maxBackpressureBytes && !state.closed) {
      this.#ctx.limitLog.warn(state.session, 'backpressure', { bufferedAmount: conn.bufferedAmount() }, 'slow consumer closed');
      this.#ctx.connections.close(state, CloseCode.BACKPRESSURE, 'backpressure limit exceeded');
    }
  }

  /** Sequenced message to one session (buffered for resume even while it has no connection). */
  sendTo(session: Session, message: UnstampedServerMessage): void {
    if (this.#deliver(session, encodeBody(message))) this.countOut(message.op);
  }

  /** Unsequenced control message on one connection (ready, resumed, heartbeat_ack, …). */
  sendControl(state: ConnState, message: UnstampedServerMessage): void {
    this.countOut(message.op);
    this.write(state, encodeMessage(message));
  }

  /** `error`: sequenced once the connection has a session, a control message before. */
  sendError(state: ConnState, code: ProtocolErrorCode, message: string, ref?: number, extra?: { room?: string; about?: string; retryAfterMs?: number }): void {
    metrics.errors.inc({ code });
    const msg: UnstampedServerMessage = { op: 'error', code, message, ref, room: extra?.room, about: extra?.about, retryAfterMs: extra?.retryAfterMs };
    if (state.session) this.sendTo(state.session, msg);
    else this.sendControl(state, msg);
  }

  /** A handler threw: logged and counted; the client gets INTERNAL (the server goes on). */
  internalError(state: ConnState, err: unknown, ref?: number): void {
    metrics.internalErrors.inc();
    log.error({ err, sessionId: state.session?.id }, 'signalling handler failed');
    if (!state.closed) this.sendError(state, 'INTERNAL', 'internal error', ref);
  }

  /**
   * Room fan-out: encode once; every recipient's replay buffer shares that body and its own seq is
   * stamped when the frame is written (protocol/codec.ts stampSeq). Per-session seq makes the bytes
   * differ per recipient, so sequenced events cannot share one uWS publish; the ephemeral `speaking`
   * events (no seq, never replayed) can go through the topic (`publishEphemeral`).
   */
  broadcast(roomId: string, message: UnstampedServerMessage, exceptParticipantId?: string): void {
    const room = this.#ctx.presence.get(roomId);
    if (!room) return;
    const body = encodeBody(message);
    let sent = 0;
    for (const participant of room.participants.values()) {
      if (participant.participantId === exceptParticipantId) continue;
      const session = this.#ctx.sessions.get(participant.sessionId);
      if (session && this.#deliver(session, body)) sent++;
    }
    if (sent > 0) this.countOut(message.op, sent);
  }

  /** Unsequenced room event (never replayed): through the transport's topic when it has one. */
  publishEphemeral(roomId: string, message: UnstampedServerMessage): void {
    const bytes = encodeMessage(message);
    if (this.#transport) {
      this.countOut(message.op);
      this.#transport.publish(roomTopic(roomId), bytes);
      return;
    }
    const room = this.#ctx.presence.get(roomId);
    if (!room) return;
    for (const participant of room.participants.values()) {
      const session = this.#ctx.sessions.get(participant.sessionId);
      const state = session && this.#ctx.connections.of(session);
      if (state) {
        this.countOut(message.op);
        this.write(state, bytes);
      }
    }
  }

  /**
   * Sequenced delivery of an encoded (unstamped) body to one session: next seq, buffer, send.
   * Returns whether it went out on a connection (the caller counts, once per fan-out).
   */
  #deliver(session: Session, body: Uint8Array): boolean {
    if (session.ended) return false;
    const seq = session.next(body);
    const state = this.#ctx.connections.of(session);
    if (!state) return false;
    this.write(state, body, seq);
    return true;
  }
}

/**
 * Encode a sequenced message's body. It is kept by every recipient's replay buffer, so it gets its
 * own exact-size copy: msgpackr returns a view into its 8 KiB output chunk, which a retained view
 * would pin.
 */
function encodeBody(message: UnstampedServerMessage): Uint8Array {
  return Buffer.from(encodeMessage(message));
}
