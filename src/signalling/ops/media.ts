import { grantsForRoom } from '../../auth/tokens.ts';
import { isVoxError } from '../../errors.ts';
import { logger } from '../../log.ts';
import { signallingMetrics as metrics } from '../../metrics/registry.ts';
import type { UnstampedServerMessage } from '../../protocol/messages.ts';
import type { SessionOpHandler } from './types.ts';

const log = logger('signalling');

/** `media`: SDP and ICE for the participant's peer, relayed to the media plane (its answers come back through the media sink). */
export const media: SessionOpHandler<'media'> = (ctx, state, session, msg) => {
  const { out, mediaPlane } = ctx;
  const participantId = session.rooms.get(msg.room);
  if (participantId === undefined) {
    out.sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: 'media' });
    return;
  }
  if (!mediaPlane) {
    out.sendError(state, 'MEDIA_UNAVAILABLE', 'this server has no media plane', msg.ref, { room: msg.room, about: 'media' });
    return;
  }
  mediaPlane.signal(msg.room, participantId, msg).catch((err: unknown) => {
    log.warn({ err, roomId: msg.room, kind: msg.kind }, 'media signal failed');
    if (!session.ended) {
      metrics.errors.inc({ code: 'MEDIA_FAILED' });
      out.sendTo(session, { op: 'error', code: 'MEDIA_FAILED', message: `media ${msg.kind} failed`, ref: msg.ref, room: msg.room, about: 'media' });
    }
  });
};

/**
 * `record`: needs the `record` grant for the room and a media plane. The room is told in a
 * `recording` message (the asker gets it with its `ref`); joiners see it in `joined`.
 */
export const record: SessionOpHandler<'record'> = (ctx, state, session, msg) => {
  const { out, mediaPlane, presence } = ctx;
  const participantId = session.rooms.get(msg.room);
  if (participantId === undefined) {
    out.sendError(state, 'NOT_IN_ROOM', `not in room "${msg.room}"`, msg.ref, { room: msg.room, about: 'record' });
    return;
  }
  if (!grantsForRoom(session.identity, msg.room).has('record')) {
    out.sendError(state, 'FORBIDDEN', 'recording needs the record grant', msg.ref, { room: msg.room, about: 'record' });
    return;
  }
  if (!mediaPlane) {
    out.sendError(state, 'MEDIA_UNAVAILABLE', 'this server has no media plane to record', msg.ref, { room: msg.room, about: 'record' });
    return;
  }
  // A direct (auto) room moves to the server first: a recording needs everyone's audio there (p2p.ts).
  const serverMedia = msg.action === 'start' ? ctx.p2p.beforeRecord(msg.room) : Promise.resolve();
  serverMedia.then(() => mediaPlane.record(msg.room, participantId, msg.action)).then(
    (result) => {
      const room = presence.get(msg.room);
      const recording = msg.action === 'start' && result !== null;
      // A start that found one running, or a stop with nothing running, changes nothing: only the asker hears.
      const changed = room !== undefined && (recording ? room.recording?.id !== result.id : result !== null || room.recording !== null);
      const message: UnstampedServerMessage = {
        op: 'recording',
        room: msg.room,
        recording,
        by: recording ? result.startedBy : participantId,
        ...(result === null ? {} : { id: result.id, startedAt: result.startedAt }),
        ...(recording || result === null ? {} : { files: result.files.length }),
      };
      if (changed) {
        // Told even when the asker is gone by now: nobody is recorded without being told.
        ctx.rooms.setRecording(msg.room, recording ? { id: result.id, startedBy: result.startedBy, startedAt: result.startedAt } : null, {
          reason: 'stopped',
          stoppedBy: participantId,
        });
        out.broadcast(msg.room, message, session.ended ? undefined : participantId);
      }
      if (!session.ended) out.sendTo(session, { ...message, ref: msg.ref });
      if (!recording) ctx.p2p.recordingStopped(msg.room);
    },
    (err: unknown) => {
      log.warn({ err, roomId: msg.room, action: msg.action }, 'record failed');
      if (session.ended) return;
      metrics.errors.inc({ code: 'MEDIA_FAILED' });
      const why = isVoxError(err, 'RECORDING_UNAVAILABLE')
        ? ': recording is disabled on this server'
        : isVoxError(err, 'MEDIA_UNSUPPORTED')
          ? `: ${err.message}`
          : '';
      out.sendTo(session, { op: 'error', code: 'MEDIA_FAILED', message: `record ${msg.action} failed${why}`, ref: msg.ref, room: msg.room, about: 'record' });
    },
  );
};
