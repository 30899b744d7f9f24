import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { VoxConfig } from '../config.ts';
import { grantsForRoom, verifyToken, type Identity } from '../auth/tokens.ts';
import { resolveAuthKeys, type AuthKeys } from '../auth/keys.ts';
import { isVoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { signallingMetrics as metrics } from '../metrics/registry.ts';
import { CloseCode, isResumableClose } from '../protocol/close-codes.ts';
import { decodeClientMessage, encodeMessage, stampSeq } from '../protocol/codec.ts';
import type { ProtocolErrorCode } from '../protocol/error-codes.ts';
import type {
  ClientMediaMessage,
  RecordMessage,
  ClientMessage,
  Grant,
  HelloMessage,
  InvalidSessionMessage,
  JoinMessage,
  LeaveMessage,
  MuteMessage,
  ResumeMessage,
  ServerMediaMessage,
  UnmuteMessage,
  UnstampedServerMessage,
} from '../protocol/messages.ts';
import { RoomRegistry, toParticipantInfo, type Participant } from '../rooms/registry.ts';
import { iceServersFor } from '../turn/credentials.ts';
import type { MediaGrants, MediaPlane, MediaSink } from './media-plane.ts';
import { Session } from './session.ts';
import { roomTopic, type Connection, type Transport } from './transport.ts';

const log = logger('signalling');

export interface SignallingCoreOptions {
  /** Verification key; default resolveAuthKeys(config) (configured key or the dev secret). */
  keys?: AuthKeys;
  mediaPlane?: MediaPlane;
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
 */
export interface SignallingCore {
  onOpen(conn: Connection): void;
  onMessage(conn: Connection, bytes: Uint8Array, isBinary: boolean): void;
  onClose(conn: Connection, code: number): void;
  readonly registry: RoomRegistry;
  stats(): SignallingStats;
  /** Close every connection with 1001, drop all sessions (no grace), stop timers. Idempotent. */
  close(): void;
}

/**
 * Per-connection state. Kept flat (no bucket object, no queue until needed): with thousands of idle
 * connections every object and array per connection shows up in RSS.
 */
interface ConnState {
  conn: Connection;
  session: Session | null;
  openedAt: number;
  lastMessageAt: number;
  /** Token bucket (token-bucket.ts, inlined): tokens left and when they were last refilled. */
  tokens: number;
  tokensAt: number;
  /** Currently rate limited (one RATE_LIMITED error per episode). */
  limited: boolean;
  dropped: number;
  /** hello being verified: later frames wait in `queue`. */
  pending: boolean;
  queue: Uint8Array[] | null;
  closed: boolean;
}

const MAX_QUEUED_WHILE_PENDING = 32;
const ENDED_SESSIONS_REMEMBERED = 10_000;

function randomId(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

function mediaGrants(grants: Set<Grant>): MediaGrants {
  return {
    publish: grants.has('publish'),
    subscribe: grants.has('subscribe'),
    record: grants.has('record'),
    admin: grants.has('admin'),
  };
}

/**
 * One frozen grants array per distinct grant set: participants of a room almost always share the
 * same few, and presence keeps one per participant.
 */
const grantLists = new Map<string, readonly Grant[]>();
function sharedGrants(grants: Set<Grant>): Grant[] {
  const list = [...grants];
  const key = list.join(',');
  let shared = grantLists.get(key);
  if (!shared) {
    shared = Object.freeze(list);
    grantLists.set(key, shared);
  }
  return shared as Grant[];
}

function truncateReason(reason: string): string {
  // RFC 6455 §5.5: control frame payload ≤ 125 bytes, 2 of which are the code.
  const buf = Buffer.from(reason, 'utf8');
  return buf.length <= 123 ? reason : buf.subarray(0, 120).toString('utf8') + '…';
}

export function createSignallingCore(config: VoxConfig, options: SignallingCoreOptions = {}): SignallingCore {
  const keys = options.keys ?? resolveAuthKeys(config);
  const { signalling: sig, limits } = config;
  const registry = new RoomRegistry();
  const connections = new Map<Connection, ConnState>();
  const sessions = new Map<string, Session>();
  /** Sessions without a connection, waiting for `resume`. */
  const inGrace = new Set<Session>();
  /** Recently ended session ids → why, so a late `resume` gets a precise invalid_session reason. */
  const endedSessions = new Map<string, 'expired' | 'replaced'>();
  const mediaPlane = options.mediaPlane;
  const serverInfo = { version: options.serverInfo?.version ?? '0.0.0', protocol: 1 as const, native: options.serverInfo?.native ?? false };
  let closed = false;

  // ------------------------------------------------------------------------------------------
  // Output

  /**
   * Per-op counter children, resolved once: a labelled `inc({ op })` hashes its label object on
   * every call; a child is one addition. Fan-out counts once per broadcast with n = recipients.
   */
  const outCounters = new Map<string, { inc(n?: number): void }>();
  function countOut(op: string, n = 1): void {
    let child = outCounters.get(op);
    if (!child) {
      child = metrics.messagesOut.labels(op);
      outCounters.set(op, child);
    }
    child.inc(n);
  }
  const inCounters = new Map<string, { inc(n?: number): void }>();
  function countIn(op: string): void {
    let child = inCounters.get(op);
    if (!child) {
      child = metrics.messagesIn.labels(op);
      inCounters.set(op, child);
    }
    child.inc();
  }

  /**
   * Encode a sequenced message's body. It is kept by every recipient's replay buffer, so it gets its
   * own exact-size copy: msgpackr returns a view into its 8 KiB output chunk, which a retained view
   * would pin.
   */
  function encodeBody(message: UnstampedServerMessage): Uint8Array {
    return Buffer.from(encodeMessage(message));
  }

  /**
   * Raw send with the backpressure check: a reader too slow for `maxBackpressureBytes` is closed.
   * `seq` > 0: `frame` is an unstamped body the transport stamps (sendSequenced) or we stamp here.
   */
  function write(state: ConnState, frame: Uint8Array, seq = 0): void {
    if (state.closed) return;
    const conn = state.conn;
    if (seq === 0) conn.send(frame);
    else if (conn.sendSequenced) conn.sendSequenced(frame, seq);
    else conn.send(stampSeq(frame, seq));
    if (conn.bufferedAmount() > limits.maxBackpressureBytes && !state.closed) {
      const session = state.session;
      logOnce(session, 'backpressure', { bufferedAmount: state.conn.bufferedAmount() }, 'slow consumer closed');
      closeConn(state, CloseCode.BACKPRESSURE, 'backpressure limit exceeded');
    }
  }

  function stateOf(session: Session): ConnState | undefined {
    return session.connection ? connections.get(session.connection) : undefined;
  }

  /**
   * Sequenced delivery of an encoded (unstamped) body to one session: next seq, buffer, send.
   * Returns whether it went out on a connection (the caller counts, once per fan-out).
   */
  function deliver(session: Session, body: Uint8Array): boolean {
    if (session.ended) return false;
    const seq = session.next(body);
    const state = stateOf(session);
    if (!state) return false;
    write(state, body, seq);
    return true;
  }

  function sendTo(session: Session, message: UnstampedServerMessage): void {
    if (deliver(session, encodeBody(message))) countOut(message.op);
  }

  /** Unsequenced control message on one connection (ready, resumed, heartbeat_ack, …). */
  function sendControl(state: ConnState, message: UnstampedServerMessage): void {
    countOut(message.op);
    write(state, encodeMessage(message));
  }

  function sendError(state: ConnState, code: ProtocolErrorCode, message: string, ref?: number, extra?: { room?: string; about?: string }): void {
    metrics.errors.inc({ code });
    const msg: UnstampedServerMessage = { op: 'error', code, message, ref, room: extra?.room, about: extra?.about };
    if (state.session) sendTo(state.session, msg);
    else sendControl(state, msg);
  }

  /**
   * Room fan-out: encode once; every recipient's replay buffer shares that body and its own seq is
   * stamped when the frame is written (protocol/codec.ts stampSeq). Per-session seq makes the bytes
   * differ per recipient, so sequenced events cannot share one uWS publish; the ephemeral `speaking`
   * events (no seq, never replayed) do go through the topic.
   */
  function broadcast(roomId: string, message: UnstampedServerMessage, exceptParticipantId?: string): void {
    const room = registry.get(roomId);
    if (!room) return;
    const body = encodeBody(message);
    let sent = 0;
    for (const participant of room.participants.values()) {
      if (participant.participantId === exceptParticipantId) continue;
      const session = sessions.get(participant.sessionId);
      if (session && deliver(session, body)) sent++;
    }
    if (sent > 0) countOut(message.op, sent);
  }

  function publishEphemeral(roomId: string, message: UnstampedServerMessage): void {
    const bytes = encodeMessage(message);
    if (options.transport) {
      countOut(message.op);
      options.transport.publish(roomTopic(roomId), bytes);
      return;
    }
    const room = registry.get(roomId);
    if (!room) return;
    for (const participant of room.participants.values()) {
      const session = sessions.get(participant.sessionId);
      const state = session && stateOf(session);
      if (state) {
        countOut(message.op);
        write(state, bytes);
      }
    }
  }

  function closeConn(state: ConnState, code: number, reason: string): void {
    if (state.closed) return;
    state.closed = true;
    metrics.closes.inc({ code: String(code) });
    // Detach first: transports may call onClose synchronously inside close(), and that call must
    // not decide the session's fate without knowing the server chose this code.
    detach(state, code, true);
    try {
      state.conn.close(code, truncateReason(reason));
    } catch (err) {
      log.debug({ err }, 'close on a dead connection');
    }
  }

  /** Server-wide kinds (no session yet): at most one line per kind per minute. */
  const serverLoggedAt = new Map<string, number>();
  function logOnce(session: Session | null, kind: string, fields: Record<string, unknown>, msg: string): void {
    if (session) {
      if (session.logged?.has(kind)) return;
      (session.logged ??= new Set()).add(kind);
    } else {
      const now = Date.now();
      if (now - (serverLoggedAt.get(kind) ?? -Infinity) < 60_000) return;
      serverLoggedAt.set(kind, now);
    }
    log.warn({ kind, sessionId: session?.id, userId: session?.identity.userId, ...fields }, msg);
  }

  // ------------------------------------------------------------------------------------------
  // Sessions

  function updateSessionGauges(): void {
    metrics.sessions.set({ state: 'connected' }, sessions.size - inGrace.size);
    metrics.sessions.set({ state: 'grace' }, inGrace.size);
    metrics.rooms.set(registry.roomCount);
    metrics.participants.set(registry.participantCount);
  }

  /**
   * Connection gone: the session waits for `resume` during the grace period — unless the close
   * was a goodbye (1000) or the server closed with a terminal code (the client will not resume, so
   * the others should not watch a ghost for the whole grace period).
   */
  function detach(state: ConnState, code: number, byServer: boolean): void {
    const session = state.session;
    state.session = null;
    if (!session || session.connection !== state.conn) return;
    session.connection = null;
    if (session.ended) return;
    if (code === CloseCode.NORMAL || sig.resumeGraceMs === 0 || (byServer && !isResumableClose(code))) {
      endSession(session, 'disconnected');
    } else {
      inGrace.add(session);
      session.graceTimer = setTimeout(() => {
        session.graceTimer = null;
        if (!session.connection) endSession(session, 'disconnected');
      }, sig.resumeGraceMs);
      session.graceTimer.unref();
    }
    updateSessionGauges();
  }

  /** Remove a session for good: leave every room (others see participant_left now), free it. */
  function endSession(session: Session, reason: 'disconnected' | 'replaced' | 'kicked', closeCode?: number, closeReason?: string): void {
    if (session.ended) return;
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    inGrace.delete(session);
    const state = stateOf(session);
    for (const [roomId, participantId] of session.rooms) removeParticipant(session, roomId, participantId, reason);
    session.ended = true;
    session.replay.clear();
    sessions.delete(session.id);
    if (reason !== 'kicked') {
      endedSessions.set(session.id, reason === 'replaced' ? 'replaced' : 'expired');
      if (endedSessions.size > ENDED_SESSIONS_REMEMBERED) endedSessions.delete(endedSessions.keys().next().value as string);
    }
    if (state && closeCode !== undefined) closeConn(state, closeCode, closeReason ?? reason);
    updateSessionGauges();
  }

  function removeParticipant(session: Session, roomId: string, participantId: string, reason: 'left' | 'disconnected' | 'replaced' | 'kicked'): void {
    session.rooms.delete(roomId);
    const state = stateOf(session);
    state?.conn.unsubscribe?.(roomTopic(roomId));
    if (!registry.remove(roomId, participantId)) return;
    broadcast(roomId, { op: 'participant_left', room: roomId, participantId, reason });
    if (mediaPlane) {
      mediaPlane.leave(roomId, participantId).catch((err: unknown) => log.error({ err, roomId }, 'media plane leave failed'));
    }
    updateSessionGauges();
  }

  // ------------------------------------------------------------------------------------------
  // Handlers

  async function onHello(state: ConnState, msg: HelloMessage): Promise<void> {
    let identity: Identity;
    try {
      identity = await verifyToken(msg.token, keys.verify);
    } catch (err) {
      const reason = isVoxError(err) ? err.message : 'token rejected';
      metrics.authFailures.inc({ reason });
      log.info({ reason }, 'hello rejected');
      closeConn(state, CloseCode.POLICY_VIOLATION, reason);
      return;
    }
    if (state.closed) return;
    if (state.session) {
      sendError(state, 'ALREADY_AUTHENTICATED', 'this connection already has a session', msg.ref, { about: 'hello' });
      return;
    }
    if (sessions.size >= limits.maxSessions) {
      logOnce(null, 'max_sessions', { sessions: sessions.size }, 'session limit reached');
      closeConn(state, CloseCode.TRY_AGAIN_LATER, 'server full');
      return;
    }
    const session = new Session(randomId(12), randomId(24), identity, sig.replayMaxMessages, sig.replayMaxBytes);
    sessions.set(session.id, session);
    attach(state, session);
    sendControl(state, {
      op: 'ready',
      ref: msg.ref,
      sessionId: session.id,
      resumeToken: session.resumeToken,
      heartbeatIntervalMs: sig.heartbeatIntervalMs,
      resumeGraceMs: sig.resumeGraceMs,
      userId: identity.userId,
      name: identity.name,
      server: serverInfo,
      iceServers: iceServersFor(config.turn, options.turnSecret, identity.userId),
    });
    log.debug({ sessionId: session.id, userId: identity.userId }, 'session ready');
  }

  function attach(state: ConnState, session: Session): void {
    state.session = session;
    session.connection = state.conn;
    if (session.graceTimer) clearTimeout(session.graceTimer);
    session.graceTimer = null;
    inGrace.delete(session);
    updateSessionGauges();
  }

  function onResume(state: ConnState, msg: ResumeMessage): void {
    if (state.session) {
      sendError(state, 'ALREADY_AUTHENTICATED', 'this connection already has a session', msg.ref, { about: 'resume' });
      return;
    }
    const session = sessions.get(msg.sessionId);
    const invalid = (reason: InvalidSessionMessage['reason']): void => {
      metrics.resumes.inc({ outcome: reason });
      sendControl(state, { op: 'invalid_session', ref: msg.ref, reason });
    };
    if (!session || session.ended) return invalid(endedSessions.get(msg.sessionId) ?? 'unknown_session');
    const given = Buffer.from(msg.resumeToken);
    const expected = Buffer.from(session.resumeToken);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return invalid('bad_token');
    const frames = msg.lastSeq > session.seq ? null : session.replay.since(msg.lastSeq, session.seq);
    if (frames === null) {
      // The client missed messages we no longer hold: its view cannot be repaired; it re-joins.
      endSession(session, 'disconnected');
      return invalid('replay_gap');
    }
    // A resume may beat the server's detection of the old connection's death: retire it.
    const previous = stateOf(session);
    if (previous) {
      previous.session = null;
      session.connection = null;
      closeConn(previous, CloseCode.SESSION_REPLACED, 'resumed on another connection');
    }
    attach(state, session);
    session.replay.ack(msg.lastSeq);
    for (const roomId of session.rooms.keys()) state.conn.subscribe?.(roomTopic(roomId));
    // Replay is contiguous: frame i carries seq lastSeq + 1 + i (replay-buffer.ts since).
    for (let i = 0; i < frames.length; i++) write(state, frames[i], msg.lastSeq + 1 + i);
    metrics.replayed.inc(frames.length);
    metrics.resumes.inc({ outcome: 'resumed' });
    sendControl(state, {
      op: 'resumed',
      ref: msg.ref,
      sessionId: session.id,
      replayed: frames.length,
      rooms: [...session.rooms.keys()],
      // Fresh TURN credentials: `ready`'s may have outlived turn.ttlSec by now.
      iceServers: iceServersFor(config.turn, options.turnSecret, session.identity.userId),
    });
  }

  function onJoin(state: ConnState, session: Session, msg: JoinMessage): void {
    const roomId = msg.room;
    const grants = grantsForRoom(session.identity, roomId);
    if (Date.now() >= session.identity.expiresAt) {
      metrics.authFailures.inc({ reason: 'token expired' });
      endSession(session, 'kicked', CloseCode.POLICY_VIOLATION, 'token expired');
      return;
    }
    if (!grants.has('join')) {
      metrics.authFailures.inc({ reason: 'no join grant' });
      log.info({ sessionId: session.id, userId: session.identity.userId, roomId }, 'join without grant');
      endSession(session, 'kicked', CloseCode.POLICY_VIOLATION, `no join grant for room "${roomId}"`);
      return;
    }
    if (session.rooms.has(roomId)) {
      sendError(state, 'ALREADY_IN_ROOM', `already in room "${roomId}"`, msg.ref, { room: roomId, about: 'join' });
      return;
    }
    if (session.rooms.size >= limits.maxRoomsPerSession) {
      logOnce(session, 'max_rooms', { rooms: session.rooms.size }, 'rooms per session limit');
      sendError(state, 'TOO_MANY_ROOMS', `at most ${limits.maxRoomsPerSession} rooms per session`, msg.ref, { room: roomId, about: 'join' });
      return;
    }
    // A p2p (mesh) room has no server media; with a media plane it would silently run as an SFU.
    if (mediaPlane && msg.options?.mode === 'p2p') {
      sendError(state, 'MEDIA_FAILED', 'room mode "p2p" is not supported by this server\'s media plane', msg.ref, { room: roomId, about: 'join' });
      return;
    }
    // Duplicate identity: the newest connection wins; the older session ends (close 4001).
    const existing = registry.findByUser(roomId, session.identity.userId);
    const older = existing && existing.sessionId !== session.id ? sessions.get(existing.sessionId) : undefined;
    if (registry.size(roomId) - (older ? 1 : 0) >= limits.maxParticipantsPerRoom) {
      logOnce(session, 'room_full', { roomId }, 'room full');
      sendError(state, 'ROOM_FULL', `room "${roomId}" is full (${limits.maxParticipantsPerRoom})`, msg.ref, { room: roomId, about: 'join' });
      return;
    }
    if (older) {
      log.info({ userId: session.identity.userId, roomId, older: older.id, newer: session.id }, 'duplicate identity: newest wins');
      endSession(older, 'replaced', CloseCode.SESSION_REPLACED, `user joined room "${roomId}" from another connection`);
    }
    const participant: Participant = {
      participantId: randomId(9),
      userId: session.identity.userId,
      name: session.identity.name,
      muted: msg.options?.muted ?? false,
      speaking: false,
      grants: sharedGrants(grants),
      joinedAt: Date.now(),
      sessionId: session.id,
    };
    const room = registry.add(roomId, msg.options?.mode ?? sig.defaultRoomMode, participant);
    session.rooms.set(roomId, participant.participantId);
    state.conn.subscribe?.(roomTopic(roomId));
    sendTo(session, {
      op: 'joined',
      ref: msg.ref,
      room: roomId,
      mode: room.mode,
      participantId: participant.participantId,
      participants: registry.snapshot(roomId),
      ...(room.recording === null ? {} : { recording: room.recording }),
    });
    broadcast(roomId, { op: 'participant_joined', room: roomId, participant: toParticipantInfo(participant) }, participant.participantId);
    updateSessionGauges();
    if (mediaPlane) {
      mediaPlane
        .join({
          roomId,
          participantId: participant.participantId,
          name: participant.name,
          grants: mediaGrants(grants),
          // A room that is p2p only by signalling.defaultRoomMode keeps the plane's configured mode (main.ts: sfu).
          ...(room.mode === 'p2p' ? {} : { roomMode: room.mode }),
        })
        .then(() => (participant.muted ? mediaPlane.setMuted(roomId, participant.participantId, true) : undefined))
        .catch((err: unknown) => {
          log.error({ err, roomId }, 'media plane join failed');
          if (session.rooms.get(roomId) === participant.participantId) {
            metrics.errors.inc({ code: 'MEDIA_FAILED' });
            sendTo(session, { op: 'error', code: 'MEDIA_FAILED', message: 'media join failed', room: roomId, about: 'join' });
          }
        });
    }
  }

  function onLeave(state: ConnState, session: Session, msg: LeaveMessage): void {
    const participantId = session.rooms.get(msg.room);
    if (participantId === undefined) {
      sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: 'leave' });
      return;
    }
    removeParticipant(session, msg.room, participantId, 'left');
    sendTo(session, { op: 'left', ref: msg.ref, room: msg.room });
  }

  function onMute(state: ConnState, session: Session, msg: MuteMessage | UnmuteMessage): void {
    const muted = msg.op === 'mute';
    const self = session.rooms.get(msg.room);
    if (self === undefined) {
      sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: msg.op });
      return;
    }
    const target = msg.participantId ?? self;
    if (target !== self) {
      if (!muted) {
        sendError(state, 'FORBIDDEN', 'only participants can unmute themselves', msg.ref, { room: msg.room, about: msg.op });
        return;
      }
      if (!grantsForRoom(session.identity, msg.room).has('admin')) {
        sendError(state, 'FORBIDDEN', 'muting others needs the admin grant', msg.ref, { room: msg.room, about: msg.op });
        return;
      }
      if (!registry.participant(msg.room, target)) {
        sendError(state, 'PARTICIPANT_NOT_FOUND', `no participant "${target}" in room`, msg.ref, { room: msg.room, about: msg.op });
        return;
      }
    }
    const changed = registry.setMuted(msg.room, target, muted);
    sendTo(session, { op: 'mute_ack', ref: msg.ref, room: msg.room, participantId: target, muted });
    if (changed) {
      broadcast(msg.room, { op: 'participant_updated', room: msg.room, participant: toParticipantInfo(changed) });
      mediaPlane?.setMuted(msg.room, target, muted).catch((err: unknown) => log.error({ err }, 'media plane setMuted failed'));
    }
  }

  function onMedia(state: ConnState, session: Session, msg: ClientMediaMessage): void {
    const participantId = session.rooms.get(msg.room);
    if (participantId === undefined) {
      sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: 'media' });
      return;
    }
    if (!mediaPlane) {
      sendError(state, 'MEDIA_UNAVAILABLE', 'this server has no media plane', msg.ref, { room: msg.room, about: 'media' });
      return;
    }
    mediaPlane.signal(msg.room, participantId, msg).catch((err: unknown) => {
      log.warn({ err, roomId: msg.room, kind: msg.kind }, 'media signal failed');
      if (!session.ended) {
        metrics.errors.inc({ code: 'MEDIA_FAILED' });
        sendTo(session, { op: 'error', code: 'MEDIA_FAILED', message: `media ${msg.kind} failed`, ref: msg.ref, room: msg.room, about: 'media' });
      }
    });
  }

  /**
   * `record`: needs the `record` grant for the room and a media plane. The room is told in a
   * `recording` message (the asker gets it with its `ref`); joiners see it in `joined`.
   */
  function onRecord(state: ConnState, session: Session, msg: RecordMessage): void {
    const participantId = session.rooms.get(msg.room);
    if (participantId === undefined) {
      sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: 'record' });
      return;
    }
    if (!grantsForRoom(session.identity, msg.room).has('record')) {
      sendError(state, 'FORBIDDEN', 'recording needs the record grant', msg.ref, { room: msg.room, about: 'record' });
      return;
    }
    if (!mediaPlane) {
      sendError(state, 'MEDIA_UNAVAILABLE', 'this server has no media plane to record', msg.ref, { room: msg.room, about: 'record' });
      return;
    }
    mediaPlane.record(msg.room, participantId, msg.action).then(
      (result) => {
        const presence = registry.get(msg.room);
        const recording = msg.action === 'start' && result !== null;
        // A start that found one running, or a stop with nothing running, changes nothing: only the asker hears.
        const changed =
          presence !== undefined && (recording ? presence.recording?.id !== result.id : result !== null || presence.recording !== null);
        const message: UnstampedServerMessage = {
          op: 'recording',
          room: msg.room,
          recording,
          by: recording ? result.startedBy : participantId,
          ...(result === null ? {} : { id: result.id, startedAt: result.startedAt }),
          ...(recording || result === null ? {} : { files: result.files.length }),
        };
        if (presence !== undefined && changed) {
          // Told even when the asker is gone by now: nobody is recorded without being told.
          presence.recording = recording ? { id: result.id, startedBy: result.startedBy, startedAt: result.startedAt } : null;
          broadcast(msg.room, message, session.ended ? undefined : participantId);
        }
        if (!session.ended) sendTo(session, { ...message, ref: msg.ref });
      },
      (err: unknown) => {
        log.warn({ err, roomId: msg.room, action: msg.action }, 'record failed');
        if (session.ended) return;
        metrics.errors.inc({ code: 'MEDIA_FAILED' });
        const why = isVoxError(err, 'RECORDING_UNAVAILABLE') ? ': recording is disabled on this server' : '';
        sendTo(session, { op: 'error', code: 'MEDIA_FAILED', message: `record ${msg.action} failed${why}`, ref: msg.ref, room: msg.room, about: 'record' });
      },
    );
  }

  function dispatch(state: ConnState, msg: ClientMessage): void {
    countIn(msg.op);
    if (msg.op === 'hello') {
      if (state.session) {
        sendError(state, 'ALREADY_AUTHENTICATED', 'this connection already has a session', msg.ref, { about: 'hello' });
        return;
      }
      state.pending = true;
      onHello(state, msg)
        .catch((err: unknown) => internalError(state, err, msg.ref))
        .finally(() => {
          state.pending = false;
          const queued = state.queue;
          state.queue = null;
          if (queued) for (const bytes of queued) handleFrame(state, bytes);
        });
      return;
    }
    if (msg.op === 'resume') return onResume(state, msg);
    const session = state.session;
    if (!session) {
      sendError(state, 'NOT_AUTHENTICATED', 'send hello or resume first', msg.ref, { about: msg.op });
      return;
    }
    switch (msg.op) {
      case 'heartbeat':
        session.replay.ack(msg.ack);
        sendControl(state, { op: 'heartbeat_ack', ref: msg.ref, lastSeq: session.seq });
        return;
      case 'join':
        return onJoin(state, session, msg);
      case 'leave':
        return onLeave(state, session, msg);
      case 'mute':
      case 'unmute':
        return onMute(state, session, msg);
      case 'media':
        return onMedia(state, session, msg);
      case 'record':
        return onRecord(state, session, msg);
    }
  }

  function internalError(state: ConnState, err: unknown, ref?: number): void {
    metrics.internalErrors.inc();
    log.error({ err, sessionId: state.session?.id }, 'signalling handler failed');
    if (!state.closed) sendError(state, 'INTERNAL', 'internal error', ref);
  }

  /** Token bucket (same arithmetic as token-bucket.ts): `messagesPerSecond` refill up to `messageBurst`. */
  const tokensPerMs = limits.messagesPerSecond / 1000;
  function takeToken(state: ConnState, now: number): boolean {
    const elapsed = now - state.tokensAt;
    if (elapsed > 0) {
      state.tokens = Math.min(limits.messageBurst, state.tokens + elapsed * tokensPerMs);
      state.tokensAt = now;
    }
    if (state.tokens < 1) return false;
    state.tokens -= 1;
    return true;
  }

  function handleFrame(state: ConnState, bytes: Uint8Array): void {
    if (state.closed) return;
    const now = Date.now();
    state.lastMessageAt = now;
    if (!takeToken(state, now)) {
      state.dropped++;
      if (!state.limited) {
        state.limited = true;
        logOnce(state.session, 'rate', {}, 'rate limited');
        sendError(state, 'RATE_LIMITED', `more than ${limits.messagesPerSecond} messages/s; message dropped`);
      }
      if (state.dropped > limits.rateCloseAfterDropped) closeConn(state, CloseCode.RATE_LIMITED, 'rate limit exceeded');
      return;
    }
    state.limited = false;
    state.dropped = 0;
    if (state.pending) {
      const queue = (state.queue ??= []);
      if (queue.length >= MAX_QUEUED_WHILE_PENDING) {
        closeConn(state, CloseCode.PROTOCOL_VIOLATION, 'too many messages before ready');
        return;
      }
      queue.push(Uint8Array.prototype.slice.call(bytes));
      return;
    }
    const decoded = decodeClientMessage(bytes);
    if (!decoded.ok && decoded.op === 'hello' && !state.session) {
      // A hello without a usable token is an auth failure like a bad token: 1008, not an error.
      countIn('invalid');
      metrics.authFailures.inc({ reason: 'token missing' });
      closeConn(state, CloseCode.POLICY_VIOLATION, `token missing or invalid hello (${decoded.message})`);
      return;
    }
    if (!decoded.ok) {
      countIn('invalid');
      sendError(state, decoded.code, decoded.message, decoded.ref, decoded.op ? { about: decoded.op } : undefined);
      return;
    }
    try {
      dispatch(state, decoded.message);
    } catch (err) {
      internalError(state, err, decoded.message.ref);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Media sink: the media plane's messages, stamped and delivered like any other.

  const sink: MediaSink = {
    toParticipant(roomId: string, participantId: string, message: ServerMediaMessage): void {
      try {
        deliverToParticipant(roomId, participantId, message);
      } catch (err) {
        metrics.internalErrors.inc();
        log.error({ err, roomId, op: message.op }, 'media sink delivery failed');
      }
    },
    toRoom(roomId: string, message: ServerMediaMessage): void {
      try {
        deliverToRoom(roomId, message);
      } catch (err) {
        metrics.internalErrors.inc();
        log.error({ err, roomId, op: message.op }, 'media sink delivery failed');
      }
    },
  };

  function deliverToParticipant(roomId: string, participantId: string, message: ServerMediaMessage): void {
    const participant = registry.participant(roomId, participantId);
    const session = participant && sessions.get(participant.sessionId);
    if (!session) return;
    if (message.op === 'speaking') {
      const state = stateOf(session);
      if (state) sendControl(state, message);
      return;
    }
    sendTo(session, message);
  }

  function deliverToRoom(roomId: string, message: ServerMediaMessage): void {
    if (message.op === 'speaking') {
      registry.setSpeaking(roomId, message.participantId, message.speaking);
      publishEphemeral(roomId, message);
      return;
    }
    if (message.op === 'recording') {
      // The plane restarted a recording after a worker died (or could not): joiners must see it.
      const presence = registry.get(roomId);
      if (presence !== undefined) {
        presence.recording =
          message.recording && message.id !== undefined && message.startedAt !== undefined
            ? { id: message.id, startedBy: message.by ?? '', startedAt: message.startedAt }
            : null;
      }
    }
    broadcast(roomId, message);
  }
  mediaPlane?.attach(sink);
  updateSessionGauges();

  // ------------------------------------------------------------------------------------------
  // Timers: one sweep for hello timeouts and zombies (no timer per connection).

  const sweepEvery = Math.max(50, Math.min(1000, Math.floor(Math.min(sig.heartbeatTimeoutMs, sig.helloTimeoutMs) / 4)));
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const state of connections.values()) {
      if (state.closed) continue;
      if (!state.session && !state.pending && now - state.openedAt > sig.helloTimeoutMs) {
        closeConn(state, CloseCode.HELLO_TIMEOUT, 'no hello in time');
      } else if (state.session && now - state.lastMessageAt > sig.heartbeatTimeoutMs) {
        logOnce(state.session, 'zombie', { idleMs: now - state.lastMessageAt }, 'heartbeat timeout');
        closeConn(state, CloseCode.HEARTBEAT_TIMEOUT, 'heartbeat timeout');
      }
    }
  }, sweepEvery);
  sweep.unref();

  return {
    registry,
    onOpen(conn: Connection): void {
      const now = Date.now();
      if (closed) {
        conn.close(CloseCode.GOING_AWAY, 'server shutting down');
        return;
      }
      connections.set(conn, {
        conn,
        session: null,
        openedAt: now,
        lastMessageAt: now,
        tokens: limits.messageBurst,
        tokensAt: now,
        limited: false,
        dropped: 0,
        pending: false,
        queue: null,
        closed: false,
      });
    },
    onMessage(conn: Connection, bytes: Uint8Array, isBinary: boolean): void {
      const state = connections.get(conn);
      if (!state || state.closed) return;
      try {
        if (!isBinary) {
          closeConn(state, CloseCode.UNSUPPORTED_DATA, 'binary frames only (MessagePack)');
          return;
        }
        if (bytes.byteLength > limits.maxPayloadBytes) {
          closeConn(state, CloseCode.MESSAGE_TOO_BIG, `frame larger than ${limits.maxPayloadBytes} bytes`);
          return;
        }
        handleFrame(state, bytes);
      } catch (err) {
        internalError(state, err);
      }
    },
    onClose(conn: Connection, code: number): void {
      const state = connections.get(conn);
      if (!state) return;
      connections.delete(conn);
      state.closed = true;
      try {
        detach(state, code, false);
      } catch (err) {
        metrics.internalErrors.inc();
        log.error({ err }, 'close handling failed');
      }
    },
    stats(): SignallingStats {
      return {
        connections: connections.size,
        sessions: sessions.size,
        sessionsInGrace: inGrace.size,
        rooms: registry.roomCount,
        participants: registry.participantCount,
      };
    },
    close(): void {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      for (const state of [...connections.values()]) {
        state.session = null; // no grace on shutdown
        closeConn(state, CloseCode.GOING_AWAY, 'server shutting down');
      }
      for (const session of [...sessions.values()]) endSession(session, 'disconnected');
      connections.clear();
      updateSessionGauges();
    },
  };
}
