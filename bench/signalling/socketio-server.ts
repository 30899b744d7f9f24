/**
 * The Socket.IO baseline: the same signalling semantics as VoxLink's core, written the way a
 * Socket.IO app would be — rooms via `socket.join`, fan-out via `io.to(room).emit`, the default
 * JSON parser over the websocket transport, and connectionStateRecovery as the equivalent of
 * VoxLink's resume (missed room broadcasts replayed after a reconnect within the grace period).
 * Messages: hello(token) → ready; join → joined (+ participant_joined to the others);
 * mute/unmute → mute_ack (+ participant_updated to the whole room); heartbeat → heartbeat_ack.
 */
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Server, type Socket } from 'socket.io';
import { grantsForRoom, verifyToken, type Identity, type VerifyKey } from '../../src/auth/index.ts';

interface Participant {
  participantId: string;
  userId: string;
  name: string;
  muted: boolean;
  speaking: boolean;
  grants: string[];
  joinedAt: number;
}

export async function startSocketIoServer(verify: VerifyKey, resumeGraceMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const http = createServer();
  const io = new Server(http, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    connectionStateRecovery: { maxDisconnectionDuration: resumeGraceMs, skipMiddlewares: true },
  });
  const rooms = new Map<string, Map<string, Participant>>();

  io.on('connection', (socket: Socket) => {
    let identity: Identity | null = null;
    let seq = 0;
    const mine = new Map<string, Participant>();

    socket.on('hello', async (msg: { token: string }) => {
      try {
        identity = await verifyToken(msg.token, verify);
      } catch {
        socket.disconnect(true);
        return;
      }
      socket.emit('ready', { sessionId: socket.id, heartbeatIntervalMs: 15_000, resumeGraceMs, userId: identity.userId, name: identity.name });
    });

    socket.on('join', (msg: { room: string; options?: { muted?: boolean } }) => {
      if (!identity) return void socket.emit('error', { code: 'NOT_AUTHENTICATED' });
      const grants = grantsForRoom(identity, msg.room);
      if (!grants.has('join')) return void socket.disconnect(true);
      if (mine.has(msg.room)) return void socket.emit('error', { code: 'ALREADY_IN_ROOM', room: msg.room });
      let room = rooms.get(msg.room);
      if (!room) rooms.set(msg.room, (room = new Map()));
      const participant: Participant = {
        participantId: randomBytes(9).toString('base64url'),
        userId: identity.userId,
        name: identity.name,
        muted: msg.options?.muted ?? false,
        speaking: false,
        grants: [...grants],
        joinedAt: Date.now(),
      };
      room.set(participant.participantId, participant);
      mine.set(msg.room, participant);
      void socket.join(msg.room);
      socket.emit('joined', { seq: ++seq, room: msg.room, mode: 'sfu', participantId: participant.participantId, participants: [...room.values()] });
      socket.to(msg.room).emit('participant_joined', { room: msg.room, participant });
    });

    const setMuted = (muted: boolean) => (msg: { room: string }) => {
      const participant = mine.get(msg.room);
      if (!participant) return void socket.emit('error', { code: 'NOT_IN_ROOM', room: msg.room });
      const changed = participant.muted !== muted;
      participant.muted = muted;
      socket.emit('mute_ack', { seq: ++seq, room: msg.room, participantId: participant.participantId, muted });
      if (changed) io.to(msg.room).emit('participant_updated', { room: msg.room, participant });
    };
    socket.on('mute', setMuted(true));
    socket.on('unmute', setMuted(false));

    socket.on('heartbeat', () => socket.emit('heartbeat_ack', { lastSeq: seq }));

    socket.on('disconnect', () => {
      for (const [roomId, participant] of mine) {
        const room = rooms.get(roomId);
        room?.delete(participant.participantId);
        if (room && room.size === 0) rooms.delete(roomId);
        io.to(roomId).emit('participant_left', { room: roomId, participantId: participant.participantId, reason: 'disconnected' });
      }
      mine.clear();
    });
  });

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        io.close(() => resolve());
      }),
  };
}
