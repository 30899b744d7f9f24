/**
 * A soak load process: `load.ts <idle|churn|fuzz> <port> <count> <seed> [fuzzFrames]` or
 * `load.ts udp <minPort-maxPort> <datagrams> <seed> <seconds>`.
 * - idle: `count` clients say hello, heartbeat at the server's interval, and otherwise sit still;
 * - churn: `count` clients each do something at random every 0.5–2 s: join or leave a room, mute,
 *   a heartbeat (its round trip is the latency sample), drop the TCP connection and resume, close
 *   and reconnect with a fresh session;
 * - fuzz: 4 authenticated connections and 1 that never says hello send `fuzzFrames` generated
 *   hostile frames (test/fuzz/frames.ts) between them, as fast as the server answers, or with
 *   `count` > 0 at `count` frames/s per connection (under the server's default rate limit);
 *   `FUZZ_ROOMS` (comma-separated) are rooms the valid ops aim at;
 * - udp: hostile datagrams (test/fuzz/datagrams.ts) at every port of the media range, spread evenly
 *   over `seconds`.
 * Reports counts over IPC on request. Never outlives the orchestrator.
 */
import { createSocket } from 'node:dgram';
import { WebSocket } from 'ws';
import { mintToken } from '../../src/auth/index.ts';
import { decodeServerMessage, encodeMessage, type ClientMessage, type ServerMessage } from '../../src/protocol/index.ts';
import { hostileDatagrams } from '../../test/fuzz/datagrams.ts';
import { fuzzFrames } from '../../test/fuzz/frames.ts';
import { BENCH_SECRET } from '../signalling/secret.ts';
import type { LoadReport, LoadToParent, ParentToLoad } from './ipc.ts';

const [mode, portArg, countArg, seedArg, fuzzArg] = process.argv.slice(2);
const url = `ws://127.0.0.1:${portArg}/ws`;
const count = Number(countArg);
let seed = Number(seedArg) >>> 0 || 1;
const random = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x1_0000_0000;
};
const report: LoadReport = { sent: 0, received: 0, errors: {}, closes: {}, latencies: [], open: 0, actions: {}, fuzzFrames: 0, invalidFromServer: 0, preauthFrames: 0, preauthConnections: 0, datagrams: 0 };
let stopping = false;
process.on('disconnect', () => process.exit(0));
process.on('message', (m: ParentToLoad) => {
  if (m.type === 'report') process.send!({ type: 'report', report } satisfies LoadToParent);
  if (m.type === 'stop') {
    stopping = true;
    process.send!({ type: 'report', report } satisfies LoadToParent, () => process.exit(0));
  }
});
/** Sockets the load itself drops or closes: their closes are not findings. */
const leaving = new WeakSet<WebSocket>();
const count1 = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);

/** One protocol client; `onMessage` sees every decoded server message. */
class Client {
  ws: WebSocket | null = null;
  sessionId = '';
  resumeToken = '';
  lastSeq = 0;
  heartbeatMs = 15_000;
  rooms = new Set<string>();
  pingAt = new Map<number, number>();
  ref = 1;
  #timer: NodeJS.Timeout | null = null;
  constructor(readonly userId: string) {}

  send(m: ClientMessage): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(encodeMessage(m));
    report.sent++;
  }

  open(first: ClientMessage | (() => Promise<ClientMessage>)): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      // The previous socket's heartbeat timer must not write on this one before it is ready.
      this.#stopHeartbeat();
      const ws = new WebSocket(url, 'voxlink.v1', { perMessageDeflate: false });
      this.ws = ws;
      let settled = false;
      ws.on('error', (err) => {
        if (!settled) reject(err);
      });
      ws.on('open', async () => {
        report.open++;
        this.send(typeof first === 'function' ? await first() : first);
      });
      ws.on('close', (code) => {
        report.open--;
        if (!leaving.has(ws) && !stopping) count1(report.closes, String(code));
        if (!settled) reject(new Error(`closed ${code}`));
        if (ws === this.ws) {
          this.ws = null;
          this.#stopHeartbeat();
        }
      });
      ws.on('message', (data: Buffer) => {
        report.received++;
        const decoded = decodeServerMessage(data);
        if (!decoded.ok) {
          report.invalidFromServer++;
          return;
        }
        const m = decoded.message;
        if (m.seq !== undefined && m.seq > this.lastSeq) this.lastSeq = m.seq;
        if (m.op === 'error') count1(report.errors, m.code);
        if (m.op === 'heartbeat_ack' && m.ref !== undefined) {
          const at = this.pingAt.get(m.ref);
          if (at !== undefined) {
            this.pingAt.delete(m.ref);
            if (report.latencies.length < 200_000) report.latencies.push(performance.now() - at);
          }
        }
        if (m.op === 'ready') {
          this.sessionId = m.sessionId;
          this.resumeToken = m.resumeToken;
          this.heartbeatMs = m.heartbeatIntervalMs;
        }
        if (!settled && (m.op === 'ready' || m.op === 'resumed' || m.op === 'invalid_session')) {
          settled = true;
          this.#startHeartbeat();
          resolve(m);
        }
      });
    });
  }

  heartbeat(): void {
    const ref = this.ref++;
    this.pingAt.set(ref, performance.now());
    if (this.pingAt.size > 8) this.pingAt.delete(this.pingAt.keys().next().value as number);
    this.send({ op: 'heartbeat', ack: this.lastSeq, ref });
  }

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    // Spread over the interval so thousands of idle clients do not beat in step.
    this.#timer = setTimeout(() => {
      this.heartbeat();
      this.#timer = setInterval(() => this.heartbeat(), this.heartbeatMs);
    }, random() * this.heartbeatMs);
  }

  #stopHeartbeat(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  hello(): Promise<ServerMessage> {
    this.lastSeq = 0;
    this.rooms.clear();
    return this.open(async () => ({ op: 'hello', token: await mintToken({ key: BENCH_SECRET, userId: this.userId, room: '*', grants: ['join', 'publish', 'subscribe'] }) }));
  }
}

async function idle(): Promise<void> {
  const clients = Array.from({ length: count }, (_, i) => new Client(`idle-${seedArg}-${i}`));
  // A few hundred handshakes at a time: a burst of 20k would be a connection storm, not idle load.
  for (let i = 0; i < clients.length; i += 200) {
    await Promise.all(clients.slice(i, i + 200).map((c) => c.hello().then(() => c.heartbeat())));
  }
  process.send!({ type: 'ready', open: report.open } satisfies LoadToParent);
}

async function churn(): Promise<void> {
  const rooms = Array.from({ length: Math.max(4, Math.ceil(count / 10)) }, (_, i) => `churn-${seedArg}-${i}`);
  const clients = Array.from({ length: count }, (_, i) => new Client(`churn-${seedArg}-${i}`));
  await Promise.all(clients.map((c) => c.hello()));
  process.send!({ type: 'ready', open: report.open } satisfies LoadToParent);
  const act = async (c: Client): Promise<void> => {
    if (stopping) return;
    const r = random();
    try {
      if (!c.ws) {
        count1(report.actions, 'reconnect');
        await c.hello();
      } else if (r < 0.25) {
        // At most 3 rooms each (the server allows 8): a refused join would be the load's own error.
        const room = c.rooms.size >= 3 ? [...c.rooms][0] : rooms[Math.floor(random() * rooms.length)];
        count1(report.actions, c.rooms.has(room) ? 'leave' : 'join');
        if (c.rooms.has(room)) c.rooms.delete(room);
        else c.rooms.add(room);
        c.send({ op: c.rooms.has(room) ? 'join' : 'leave', room });
      } else if (r < 0.35 && c.rooms.size > 0) {
        count1(report.actions, 'mute');
        c.send({ op: random() < 0.5 ? 'mute' : 'unmute', room: [...c.rooms][0] });
      } else if (r < 0.8) {
        count1(report.actions, 'heartbeat');
        c.heartbeat();
      } else if (r < 0.9) {
        // Drop without a close frame, then resume: the session and its rooms must survive.
        count1(report.actions, 'drop+resume');
        const { sessionId, resumeToken, lastSeq } = c;
        leaving.add(c.ws);
        c.ws.terminate();
        const reply = await c.open({ op: 'resume', sessionId, resumeToken, lastSeq });
        if (reply.op === 'invalid_session') {
          count1(report.actions, 'invalid_session');
          if (c.ws) leaving.add(c.ws);
          c.ws?.close(1000);
          await c.hello();
        }
      } else {
        count1(report.actions, 'close+reconnect');
        leaving.add(c.ws);
        c.ws.close(1000);
        await c.hello();
      }
    } catch {
      count1(report.actions, 'failed');
    }
    setTimeout(() => void act(c), 500 + random() * 1500);
  };
  for (const c of clients) setTimeout(() => void act(c), random() * 2000);
}

/** Waits until the server answered everything sent so far on `ws` (a heartbeat's reply, ack or error, with `ref`), or `ws` closed. */
function fence(ws: WebSocket, ref: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const onMessage = (data: Buffer) => {
      const d = decodeServerMessage(data);
      if (d.ok && (d.message.op === 'heartbeat_ack' || d.message.op === 'error') && d.message.ref === ref) finish();
    };
    const finish = () => {
      ws.off('message', onMessage);
      ws.off('close', finish);
      resolve();
    };
    if (ws.readyState !== WebSocket.OPEN) return resolve();
    ws.on('message', onMessage);
    ws.once('close', finish);
    ws.send(encodeMessage({ op: 'heartbeat', ack: 0, ref }));
  });
}

/** Frames per second per fuzz connection; 0: as fast as the server answers. */
const pace = mode === 'fuzz' ? Number(countArg) : 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Paced: one batch (a tenth of a second's frames) per 100 ms; unpaced: `unpaced` frames per batch, back to back. */
function pacer(unpaced: number): { batch: number; wait(): Promise<void> } {
  let next = performance.now();
  return {
    batch: pace > 0 ? Math.max(1, Math.round(pace / 10)) : unpaced,
    async wait() {
      if (pace <= 0) return;
      next += 100;
      await sleep(Math.max(0, next - performance.now()));
    },
  };
}

/** A connection that never says hello: frames in short batches (a bad hello closes it with 1008), reconnecting when closed. */
async function preauthFuzzer(frames: Generator<{ bytes: Uint8Array }>): Promise<void> {
  let ref = 1;
  const pacing = pacer(50);
  for (let done = false; !done && !stopping; ) {
    const ws = new WebSocket(url, 'voxlink.v1', { perMessageDeflate: false });
    report.preauthConnections++;
    ws.on('message', (data: Buffer) => {
      report.received++;
      const d = decodeServerMessage(data);
      if (!d.ok) report.invalidFromServer++;
      else if (d.message.op === 'error') count1(report.errors, d.message.code);
    });
    ws.on('close', (code) => count1(report.closes, String(code)));
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('error', () => resolve(false));
    });
    while (opened && ws.readyState === WebSocket.OPEN && !done) {
      for (let n = 0; n < pacing.batch && ws.readyState === WebSocket.OPEN; n++) {
        const next = frames.next();
        if (next.done) {
          done = true;
          break;
        }
        ws.send(next.value.bytes);
        report.fuzzFrames++;
        report.preauthFrames++;
      }
      await fence(ws, ref++);
      await pacing.wait();
    }
    leaving.add(ws);
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  }
}

async function fuzz(): Promise<void> {
  const total = Number(fuzzArg);
  const per = Math.ceil(total / 5);
  process.send!({ type: 'ready', open: 0 } satisfies LoadToParent);
  const rooms = process.env.FUZZ_ROOMS?.split(',') ?? ['fuzz-room', 'churn-1-0', 'other'];
  await Promise.all([
    preauthFuzzer(fuzzFrames(seed + 99, per, rooms)),
    ...[0, 1, 2, 3].map(async (k) => {
      const frames = fuzzFrames(seed + k, per, rooms);
      const c = new Client(`fuzzer-${seedArg}-${k}`);
      const pacing = pacer(500);
      let done = false;
      while (!done && !stopping) {
        try {
          if (!c.ws) await c.hello();
        } catch {
          continue;
        }
        for (let n = 0; n < pacing.batch; n++) {
          const next = frames.next();
          if (next.done) {
            done = true;
            break;
          }
          c.ws?.send(next.value.bytes);
          report.fuzzFrames++;
        }
        if (c.ws) await fence(c.ws, c.ref++);
        await pacing.wait();
      }
      if (c.ws) leaving.add(c.ws);
      c.ws?.close(1000);
    }),
  ]);
}

/** Hostile datagrams at every port of the media range, paced evenly over the run. */
async function udp(): Promise<void> {
  const [min, max] = portArg.split('-').map(Number);
  const total = Number(countArg);
  const seconds = Number(fuzzArg);
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  process.send!({ type: 'ready', open: 0 } satisfies LoadToParent);
  const datagrams = hostileDatagrams(seed, total);
  const started = performance.now();
  let port = min;
  for (let i = 0; i < total && !stopping; ) {
    // Where the pace says we should be by now; at most 200 in one go, then yield.
    const due = Math.min(total, Math.ceil(((performance.now() - started) / (seconds * 1000)) * total) + 200);
    for (; i < due; i++) {
      const d = datagrams.next();
      if (d.done) break;
      sock.send(d.value.bytes, port, '127.0.0.1');
      report.datagrams++;
      port = port >= max ? min : port + 1;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  sock.close();
}

if (mode === 'idle') await idle();
else if (mode === 'churn') await churn();
else if (mode === 'fuzz') await fuzz();
else if (mode === 'udp') await udp();
else throw new Error(`unknown mode ${mode}`);
