import type { RecordingInfo } from '../protocol/messages.ts';
import type { RecordingContinuation } from '../recording/layout.ts';
import type { SignallingContext } from './context.ts';

/**
 * Starts a recording the room was running on another cluster node before it moved here
 * (docs/cluster.md "Recording across a move"). There is no asker: the server starts it on behalf
 * of the room's first participant here, and the room is told with a `recording` message like any
 * start (no ref), so the SDK's `room.recording` shows the new id. Resolves with the new
 * recording, or null when there is nothing to do (no media plane, the room closed or already
 * records). Rejects when the media plane refuses (recording disabled, folder not writable).
 */
export async function continueRecording(ctx: SignallingContext, roomId: string, continues?: RecordingContinuation): Promise<RecordingInfo | null> {
  const { mediaPlane, presence } = ctx;
  const room = presence.get(roomId);
  if (!mediaPlane || !room || room.recording !== null) return null;
  const first = room.participants.values().next();
  if (first.done) return null;
  const by = first.value.participantId;
  // An `auto` room of two may run direct: a recording needs everyone's audio on the server (p2p.ts).
  await ctx.p2p.beforeRecord(roomId);
  const result = await mediaPlane.record(roomId, by, 'start', continues);
  const now = presence.get(roomId);
  if (result === null || !now) return null;
  if (now.recording?.id === result.id) return now.recording;
  const info: RecordingInfo = { id: result.id, startedBy: result.startedBy, startedAt: result.startedAt };
  ctx.rooms.setRecording(roomId, info, { reason: 'stopped' });
  ctx.out.broadcast(roomId, { op: 'recording', room: roomId, recording: true, by: result.startedBy, id: result.id, startedAt: result.startedAt });
  return info;
}
