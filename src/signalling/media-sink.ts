import { logger } from '../log.ts';
import { signallingMetrics as metrics } from '../metrics/registry.ts';
import type { SignallingContext } from './context.ts';
import type { MediaSink, ServerMediaMessage } from './media-plane.ts';

const log = logger('signalling');

/**
 * The media plane's way to clients: its messages are stamped and delivered like any other
 * (buffered for resume), except `speaking`, which is ephemeral. A delivery that throws is logged
 * and counted; it never reaches the plane.
 */
export function createMediaSink(ctx: SignallingContext): MediaSink {
  function toParticipant(roomId: string, participantId: string, message: ServerMediaMessage): void {
    const participant = ctx.presence.participant(roomId, participantId);
    const session = participant && ctx.sessions.get(participant.sessionId);
    if (!session) return;
    if (message.op === 'speaking') {
      const state = ctx.connections.of(session);
      if (state) ctx.out.sendControl(state, message);
      return;
    }
    if (message.op === 'media_reconnect') ctx.observer.emit('media_reconnect', { roomId, participantId, reason: message.reason });
    ctx.out.sendTo(session, message);
  }

  function toRoom(roomId: string, message: ServerMediaMessage): void {
    if (message.op === 'speaking') {
      ctx.presence.setSpeaking(roomId, message.participantId, message.speaking);
      ctx.out.publishEphemeral(roomId, message);
      return;
    }
    if (message.op === 'recording') {
      // The plane restarted a recording after a worker died (or could not): joiners must see it.
      const next =
        message.recording && message.id !== undefined && message.startedAt !== undefined
          ? { id: message.id, startedBy: message.by ?? '', startedAt: message.startedAt }
          : null;
      ctx.rooms.setRecording(roomId, next, { reason: 'lost' });
    }
    ctx.out.broadcast(roomId, message);
  }

  return {
    toParticipant(roomId, participantId, message): void {
      try {
        toParticipant(roomId, participantId, message);
      } catch (err) {
        metrics.internalErrors.inc();
        log.error({ err, roomId, op: message.op }, 'media sink delivery failed');
      }
    },
    toRoom(roomId, message): void {
      try {
        toRoom(roomId, message);
      } catch (err) {
        metrics.internalErrors.inc();
        log.error({ err, roomId, op: message.op }, 'media sink delivery failed');
      }
    },
  };
}
