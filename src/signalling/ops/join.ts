import { grantsForRoom } from '../../auth/tokens.ts';
import { logger } from '../../log.ts';
import { signallingMetrics as metrics } from '../../metrics/registry.ts';
import { CloseCode } from '../../protocol/close-codes.ts';
import type { Grant, JoinMessage } from '../../protocol/messages.ts';
import { toParticipantInfo, type Participant } from '../../rooms/registry.ts';
import type { MediaGrants } from '../media-plane.ts';
import { randomId } from '../sessions.ts';
import type { ConnState, SignallingContext } from '../context.ts';
import type { JoinRoute } from '../join-router.ts';
import type { Session } from '../session.ts';
import { takeJoin } from '../join-limit.ts';
import { isPeerRoomMode } from '../p2p.ts';
import type { SessionOpHandler } from './types.ts';

const log = logger('signalling');

/**
 * `join`: grant and limit checks, cluster routing (when a router is configured), same identity
 * again (replaces the old participant), presence, then the media plane.
 */
export const join: SessionOpHandler<'join'> = (ctx, state, session, msg) => joinRoom(ctx, state, session, msg, false);

function joinRoom(ctx: SignallingContext, state: ConnState, session: Session, msg: JoinMessage, routed: boolean): void {
  const { out, sessions, presence, mediaPlane, config } = ctx;
  const { limits } = config;
  const roomId = msg.room;
  const grants = grantsForRoom(session.identity, roomId);
  if (Date.now() >= session.identity.expiresAt) {
    metrics.authFailures.inc({ reason: 'token expired' });
    sessions.end(session, 'kicked', CloseCode.POLICY_VIOLATION, 'token expired');
    return;
  }
  if (!grants.has('join')) {
    metrics.authFailures.inc({ reason: 'no join grant' });
    log.info({ sessionId: session.id, userId: session.identity.userId, roomId }, 'join without grant');
    sessions.end(session, 'kicked', CloseCode.POLICY_VIOLATION, `no join grant for room "${roomId}"`);
    return;
  }
  if (session.rooms.has(roomId)) {
    out.sendError(state, 'ALREADY_IN_ROOM', `already in room "${roomId}"`, msg.ref, { room: roomId, about: 'join' });
    return;
  }
  if (session.rooms.size >= limits.maxRoomsPerSession) {
    ctx.limitLog.warn(session, 'max_rooms', { rooms: session.rooms.size }, 'rooms per session limit');
    out.sendError(state, 'TOO_MANY_ROOMS', `at most ${limits.maxRoomsPerSession} rooms per session`, msg.ref, { room: roomId, about: 'join' });
    return;
  }
  // Once per join request: a join routed through the cluster registry comes back with routed set.
  const retryAfterMs = routed ? 0 : takeJoin(session, limits, Date.now());
  if (retryAfterMs > 0) {
    ctx.limitLog.warn(session, 'join_rate', { roomId }, 'join rate limited');
    out.sendError(state, 'JOIN_RATE_LIMITED', `more than ${limits.joinBurst} joins at once or ${limits.joinsPerMinute} per minute; retry in ${retryAfterMs} ms`, msg.ref, {
      room: roomId,
      about: 'join',
      retryAfterMs,
    });
    return;
  }
  if (ctx.router && !routed) {
    const route = ctx.router.routeNow(roomId, msg.options?.ticket);
    if (route === undefined) {
      // Ask the registry, then take the join again from the top: everything checked above may
      // have changed meanwhile (the session left, ended or joined the room).
      void ctx.router.route(roomId).then((later) => {
        if (ctx.sessions.get(session.id) !== session) return;
        try {
          if (later.kind === 'local') joinRoom(ctx, state, session, msg, true);
          else answerRoute(ctx, session, msg, later);
        } catch (err) {
          ctx.out.internalError(state, err, msg.ref);
        }
      });
      return;
    }
    if (route.kind !== 'local') {
      answerRoute(ctx, session, msg, route);
      return;
    }
  }
  const p2pRefusal = ctx.p2p.joinRefusal(roomId, msg.options?.mode ?? config.signalling.defaultRoomMode, msg.options?.direct === true);
  if (p2pRefusal !== null) {
    out.sendError(state, p2pRefusal.code, p2pRefusal.message, msg.ref, { room: roomId, about: 'join' });
    return;
  }
  // Same identity again (signalling.replaceIdentity): the new participant replaces the old one.
  const existing = config.signalling.replaceIdentity ? presence.findByUser(roomId, session.identity.userId) : undefined;
  const older = existing && existing.sessionId !== session.id ? sessions.get(existing.sessionId) : undefined;
  if (presence.size(roomId) - (older ? 1 : 0) >= limits.maxParticipantsPerRoom) {
    ctx.limitLog.warn(session, 'room_full', { roomId }, 'room full');
    out.sendError(state, 'ROOM_FULL', `room "${roomId}" is full (${limits.maxParticipantsPerRoom})`, msg.ref, { room: roomId, about: 'join' });
    return;
  }
  if (older && existing) replaceOlder(ctx, older, roomId, existing.participantId, session.id);
  const participant: Participant = {
    participantId: randomId(9),
    userId: session.identity.userId,
    name: session.identity.name,
    muted: msg.options?.muted ?? false,
    speaking: false,
    grants: sharedGrants(grants),
    joinedAt: Date.now(),
    state: 'connected',
    sessionId: session.id,
  };
  const room = ctx.rooms.add(state, session, roomId, msg.options?.mode ?? config.signalling.defaultRoomMode, participant);
  out.sendTo(session, {
    op: 'joined',
    ref: msg.ref,
    room: roomId,
    mode: room.mode,
    participantId: participant.participantId,
    participants: presence.snapshot(roomId),
    ...(room.recording === null ? {} : { recording: room.recording }),
    ...metadataOf(ctx.rooms.metadata(roomId)),
  });
  out.broadcast(roomId, { op: 'participant_joined', room: roomId, participant: toParticipantInfo(participant) }, participant.participantId);
  sessions.updateGauges();
  if (isPeerRoomMode(room.mode)) {
    // Direct or through the server: the room's choice, and its media plane joins (p2p.ts).
    ctx.p2p.join(roomId, room.mode, participant, mediaGrants(grants), msg.options?.direct === true);
  } else if (mediaPlane) {
    mediaPlane
      .join({
        roomId,
        participantId: participant.participantId,
        userId: participant.userId,
        name: participant.name,
        grants: mediaGrants(grants),
        roomMode: room.mode,
      })
      .then(() => (participant.muted ? mediaPlane.setMuted(roomId, participant.participantId, true) : undefined))
      .catch((err: unknown) => {
        log.error({ err, roomId }, 'media plane join failed');
        if (session.rooms.get(roomId) === participant.participantId) {
          metrics.errors.inc({ code: 'MEDIA_FAILED' });
          out.sendTo(session, { op: 'error', code: 'MEDIA_FAILED', message: 'media join failed', room: roomId, about: 'join' });
        }
      });
  }
};

function answerRoute(ctx: SignallingContext, session: Session, msg: JoinMessage, route: Exclude<JoinRoute, { kind: 'local' }>): void {
  if (route.kind === 'redirect') {
    ctx.out.sendTo(session, { op: 'redirect', ref: msg.ref, room: msg.room, url: route.url, ticket: route.ticket, reason: 'placed' });
    return;
  }
  metrics.errors.inc({ code: route.code });
  ctx.out.sendTo(session, { op: 'error', ref: msg.ref, code: route.code, message: route.message, room: msg.room, about: 'join' });
}

/** `leave`: out of the room (others see participant_left), then `left`. */
export const leave: SessionOpHandler<'leave'> = (ctx, state, session, msg) => {
  const participantId = session.rooms.get(msg.room);
  if (participantId === undefined) {
    ctx.out.sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: 'leave' });
    return;
  }
  ctx.rooms.remove(session, msg.room, participantId, 'left');
  ctx.out.sendTo(session, { op: 'left', ref: msg.ref, room: msg.room });
};

function metadataOf(metadata: string | undefined): { metadata?: string } {
  return metadata === undefined ? {} : { metadata };
}

/**
 * The old participant of a re-joining identity goes: it is told first (participant_left
 * `replaced` about itself), the room hears the same and its media leaves. An old session that
 * was only in this room ends (close 4001: the client does not resume it); one that is in other
 * rooms too stays there.
 */
function replaceOlder(ctx: SignallingContext, older: Session, roomId: string, participantId: string, newer: string): void {
  log.info({ userId: older.identity.userId, roomId, older: older.id, newer }, 'same identity joined again: the new participant replaces the old');
  ctx.out.sendTo(older, { op: 'participant_left', room: roomId, participantId, reason: 'replaced' });
  if (older.rooms.size > 1) ctx.rooms.remove(older, roomId, participantId, 'replaced');
  else ctx.sessions.end(older, 'replaced', CloseCode.SESSION_REPLACED, `user joined room "${roomId}" from another connection`);
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
