import { grantsForRoom } from '../../auth/tokens.ts';
import { logger } from '../../log.ts';
import { toParticipantInfo } from '../../rooms/registry.ts';
import type { ConnState, SignallingContext } from '../context.ts';
import type { Session } from '../session.ts';
import type { OpMessage, SessionOpHandler } from './types.ts';

const log = logger('signalling');

/**
 * `mute` / `unmute`: yourself, or (mute only, with the admin grant) another participant. The
 * asker gets `mute_ack`; a change is told to the room and to the media plane.
 */
function setMuted(ctx: SignallingContext, state: ConnState, session: Session, msg: OpMessage<'mute' | 'unmute'>): void {
  const { out, presence, mediaPlane } = ctx;
  const muted = msg.op === 'mute';
  const self = session.rooms.get(msg.room);
  if (self === undefined) {
    out.sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: msg.op });
    return;
  }
  const target = msg.participantId ?? self;
  if (target !== self) {
    if (!muted) {
      out.sendError(state, 'FORBIDDEN', 'only participants can unmute themselves', msg.ref, { room: msg.room, about: msg.op });
      return;
    }
    if (!grantsForRoom(session.identity, msg.room).has('admin')) {
      out.sendError(state, 'FORBIDDEN', 'muting others needs the admin grant', msg.ref, { room: msg.room, about: msg.op });
      return;
    }
    if (!presence.participant(msg.room, target)) {
      out.sendError(state, 'PARTICIPANT_NOT_FOUND', `no participant "${target}" in room`, msg.ref, { room: msg.room, about: msg.op });
      return;
    }
  }
  const changed = presence.setMuted(msg.room, target, muted);
  out.sendTo(session, { op: 'mute_ack', ref: msg.ref, room: msg.room, participantId: target, muted });
  if (changed) {
    out.broadcast(msg.room, { op: 'participant_updated', room: msg.room, participant: toParticipantInfo(changed) });
    if (ctx.p2p.hasServerMedia(msg.room, target)) mediaPlane?.setMuted(msg.room, target, muted).catch((err: unknown) => log.error({ err }, 'media plane setMuted failed'));
    ctx.p2p.muteChanged(msg.room, target, muted);
  }
}

export const mute: SessionOpHandler<'mute'> = setMuted;
export const unmute: SessionOpHandler<'unmute'> = setMuted;
