/**
 * Load generator process (forked by index.ts, configured over IPC). Opens rooms × roomSize clients (raw
 * protocol over `ws` for uws/ws, socket.io-client for socketio), joins them, reports `ready`.
 * Throughput mode: each client toggles mute in a closed loop — it sends its next update once all
 * members of its room (itself included) received the previous `participant_updated` — and
 * heartbeats on a timer. Counts deliveries and records send→receive latency per delivery.
 * Decoding here skips schema validation: the load generator should cost as little CPU as possible.
 */
import { WebSocket } from 'ws';
import type { Socket } from 'socket.io-client';
import { mintToken } from '../../src/auth/index.ts';
import { SUBPROTOCOL, decodeRaw, encodeMessage, type ClientMessage } from '../../src/protocol/index.ts';
import { LatencyHistogram } from './histogram.ts';
import { BENCH_SECRET } from './secret.ts';
import type { LoadConfig, LoadToParent, ParentToLoad } from './ipc.ts';

// Never outlive the orchestrator.
process.on('disconnect', () => process.exit(0));
// The orchestrator forks this process before its server is listening and sends the config (with the port) later.
const cfg = await new Promise<LoadConfig>((resolve) => {
  const onConfig = (m: ParentToLoad) => {
    if (m.type !== 'config') return;
    process.off('message', onConfig);
    resolve(m.config);
  };
  process.on('message', onConfig);
});
const histogram = new LatencyHistogram();
let delivered = 0;
let sent = 0;
let heartbeatAcks = 0;
/** Every heartbeat_ack, also outside the measured window (the idle mode waits for its acks). */
let acksTotal = 0;
let running = false;
let cpuAtReset = 0;
const cpuNow = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

interface Member {
  participantId: string;
  muted: boolean;
  sentAt: number;
  /** Room members that still have to receive this member's last update. */
  outstanding: number;
  sendUpdate(muted: boolean): void;
  heartbeat(): void;
}
/** participantId → member, per room (all members of a room live in this process). */
const rooms = new Map<string, Map<string, Member>>();

function onUpdated(roomId: string, participantId: string): void {
  if (!running) return;
  const sender = rooms.get(roomId)?.get(participantId);
  if (!sender) return;
  delivered++;
  histogram.record(performance.now() - sender.sentAt);
  if (--sender.outstanding === 0) next(sender);
}

function next(member: Member): void {
  if (!running) return;
  for (let i = 0; i < cfg.window; i++) {
    member.muted = !member.muted;
    member.sentAt = performance.now();
    member.outstanding = cfg.roomSize;
    sent++;
    member.sendUpdate(member.muted);
  }
}

/** VoxLink protocol client (uws and ws servers). */
function protocolMember(url: string, token: string, room: string): Promise<Member> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL, { perMessageDeflate: false });
    let lastSeq = 0;
    const send = (m: ClientMessage) => ws.send(encodeMessage(m));
    const member: Member = {
      participantId: '',
      muted: false,
      sentAt: 0,
      outstanding: 0,
      sendUpdate: (muted) => send({ op: muted ? 'mute' : 'unmute', room }),
      heartbeat: () => send({ op: 'heartbeat', ack: lastSeq }),
    };
    ws.on('open', () => send({ op: 'hello', token }));
    ws.on('error', reject);
    ws.on('close', (code) => {
      if (!member.participantId) reject(new Error(`closed ${code} before joined`));
    });
    ws.on('message', (data) => {
      const m = decodeRaw(data as Buffer) as { op: string; seq?: number; room: string; participantId: string; participant: { participantId: string } };
      if (m.seq !== undefined) lastSeq = m.seq;
      switch (m.op) {
        case 'participant_updated':
          onUpdated(m.room, m.participant.participantId);
          break;
        case 'heartbeat_ack':
          acksTotal++;
          if (running) heartbeatAcks++;
          break;
        case 'ready':
          send({ op: 'join', room });
          break;
        case 'joined':
          member.participantId = m.participantId;
          resolve(member);
          break;
        case 'error':
          reject(new Error(`server error ${JSON.stringify(m)}`));
          break;
      }
    });
  });
}

/** The Socket.IO equivalent (socketio-server.ts). */
// Loaded only when the target is Socket.IO.
const io = cfg.kind === 'socketio' ? (await import('socket.io-client')).io : undefined;

function socketIoMember(port: number, token: string, room: string): Promise<Member> {
  return new Promise((resolve, reject) => {
    const socket: Socket = io!(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    let lastSeq = 0;
    const member: Member = {
      participantId: '',
      muted: false,
      sentAt: 0,
      outstanding: 0,
      sendUpdate: (muted) => void socket.emit(muted ? 'mute' : 'unmute', { room }),
      heartbeat: () => void socket.emit('heartbeat', { ack: lastSeq }),
    };
    socket.on('connect', () => socket.emit('hello', { token }));
    socket.on('connect_error', reject);
    socket.on('ready', () => socket.emit('join', { room }));
    socket.on('joined', (m: { participantId: string; seq: number }) => {
      lastSeq = m.seq;
      member.participantId = m.participantId;
      resolve(member);
    });
    socket.on('mute_ack', (m: { seq: number }) => {
      lastSeq = m.seq;
    });
    socket.on('participant_updated', (m: { room: string; participant: { participantId: string } }) => onUpdated(m.room, m.participant.participantId));
    socket.on('heartbeat_ack', () => {
      acksTotal++;
      if (running) heartbeatAcks++;
    });
  });
}

const send = (m: LoadToParent) => process.send!(m);
const members: Member[] = [];

async function connectAll(): Promise<void> {
  const url = `ws://127.0.0.1:${cfg.port}/ws`;
  const jobs: Array<() => Promise<void>> = [];
  for (let r = 0; r < cfg.rooms; r++) {
    const roomId = `${cfg.roomPrefix}-${r}`;
    const room = new Map<string, Member>();
    rooms.set(roomId, room);
    for (let i = 0; i < cfg.roomSize; i++) {
      jobs.push(async () => {
        const token = await mintToken({ key: BENCH_SECRET, userId: `${roomId}-u${i}`, room: `${cfg.roomPrefix}*`, ttl: 3600 });
        const member = cfg.kind === 'socketio' ? await socketIoMember(cfg.port, token, roomId) : await protocolMember(url, token, roomId);
        room.set(member.participantId, member);
        members.push(member);
      });
    }
  }
  // Bounded concurrency: a burst of thousands of SYNs would overflow the listen backlog.
  let nextJob = 0;
  const worker = async () => {
    while (nextJob < jobs.length) await jobs[nextJob++]();
  };
  await Promise.all(Array.from({ length: 128 }, worker));
}

process.on('message', (m: ParentToLoad) => {
  if (m.type === 'start') {
    running = true;
    for (const member of members) next(member);
    if (cfg.heartbeatMs > 0) {
      // Spread heartbeats over the interval instead of sending them all in one tick.
      members.forEach((member, i) => {
        setTimeout(() => setInterval(() => member.heartbeat(), cfg.heartbeatMs), (i * cfg.heartbeatMs) / members.length);
      });
    }
  } else if (m.type === 'reset') {
    delivered = 0;
    sent = 0;
    heartbeatAcks = 0;
    histogram.counts.fill(0);
    histogram.total = 0;
    cpuAtReset = cpuNow();
  } else if (m.type === 'report') {
    const report: LoadToParent = { type: 'report', delivered, sent, heartbeatAcks, histogram: histogram.toJSON(), cpuMicros: cpuNow() - cpuAtReset };
    running = false;
    send(report);
  }
});
process.on('SIGTERM', () => process.exit(0));

await connectAll();
if (cfg.mode === 'idle') {
  // An idle client is not a silent one: within heartbeatIntervalMs it heartbeats and acks what it
  // received (docs/protocol.md), so the server frees its replay buffer. One round of that, after
  // every room is complete, is the steady state of an idle connection.
  const acksBefore = acksTotal;
  for (const member of members) member.heartbeat();
  const deadline = Date.now() + 60_000;
  while (acksTotal - acksBefore < members.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
send({ type: 'ready', clients: members.length });
