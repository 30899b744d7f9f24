/**
 * The soak's tone rooms, in their own process: `media-load.ts <ws url> <rooms> <perRoom> <prefix>`.
 * Each client is the SDK as an application uses it (VoxClient over `ws` + NodeMediaClient, a werift
 * peer) publishing an Opus sine tone of its own frequency and decoding what it receives.
 *
 * Measured, and reported over IPC on request:
 * - loss: per received slot stream (one SSRC, until the next offer), sequence numbers missing
 *   between packets that did arrive; a jump of more than MAX_GAP, or a new peer, starts a new
 *   stream (the outage is measured as audio-back time, not as loss) — and, separately, packets
 *   received against the frames the other publishers of the room actually sent (`expected`,
 *   outages included; a starved load process sends fewer than 50/s, `publisherFramesPct`);
 * - audio back: after `recover` (a worker was killed, or the server restarted) the time from the
 *   event until every client of the named rooms holds 0.1 s of decoded audio from every other
 *   participant in its room, carrying that participant's tone;
 * - what a well-behaved client saw: SDK errors by code, close codes, states.
 */
import { createNodeClient, ExponentialBackoffPolicy, type VoxClient } from '../../src/client/node.ts';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { mintToken } from '../../src/auth/index.ts';
import { powerAt } from '../../test/codec/signal.ts';
import { BENCH_SECRET } from '../signalling/secret.ts';
import type { MediaLoadReport, MediaLoadToParent, ParentToMediaLoad } from './ipc.ts';

const [url, roomsArg, perRoomArg, prefix] = process.argv.slice(2);
const SR = 48_000;
/** Power at a 0.3-amplitude tone's frequency after Opus is ~0.045; 0.01 means the tone is there. */
const PRESENT = 0.01;
const MAX_GAP = 500;
const FREQUENCIES = [440, 660, 880, 550, 770, 990];

interface ToneClient {
  id: string;
  room: string;
  frequency: number;
  signalling: VoxClient;
  media: NodeMediaClient;
  /** Per slot: the SSRC being counted and its last sequence number. */
  streams: Map<number, { ssrc: number; seq: number }>;
  /** Frames this client's publisher sent since counting began (a starved load process sends fewer). */
  framesSent: number;
}

/** The tone, counting the frames the publisher actually sends (it skips frames when its event loop stalls). */
class CountedTone extends ToneSource {
  constructor(frequency: number, readonly onFrame: () => void) {
    super(frequency);
  }
  override read(out: Float32Array): void {
    this.onFrame();
    super.read(out);
  }
}

const report: MediaLoadReport = {
  clients: 0,
  received: 0,
  lost: 0,
  expected: 0,
  recoveries: [],
  errors: {},
  closes: {},
  states: {},
  mediaReconnects: 0,
  recordings: [],
  perSecond: [],
  publisherFramesPct: 0,
};
const count1 = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);
const clients: ToneClient[] = [];
let countingSince = 0;

function onRtp(c: ToneClient, slot: number, ssrc: number, seq: number): void {
  report.received++;
  if (countingSince > 0) {
    const second = Math.floor((Date.now() - countingSince) / 1000);
    if (second < 3600) report.perSecond[second] = (report.perSecond[second] ?? 0) + 1;
  }
  const s = c.streams.get(slot);
  if (s === undefined || s.ssrc !== ssrc) {
    c.streams.set(slot, { ssrc, seq });
    return;
  }
  const d = (seq - s.seq) & 0xffff;
  if (d === 0 || d >= 0x8000) return; // duplicate or reordered
  if (d - 1 <= MAX_GAP) report.lost += d - 1;
  s.seq = seq;
}

async function connect(room: string, index: number): Promise<ToneClient> {
  const id = `${prefix}-${room}-${index}`;
  const signalling = createNodeClient({
    clientInfo: { name: 'soak-tone', version: '1' },
    // Back within a second of a restarted server, not the default's up to 10 s.
    reconnectPolicy: new ExponentialBackoffPolicy({ initialDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 120_000 }),
    // The SDK reports the close code of its signalling socket only in its debug log.
    logger: {
      debug: (o, message) => {
        if (message === 'signalling socket closed') count1(report.closes, String((o as { code?: number }).code));
      },
      warn: () => undefined,
    },
  });
  const media = new NodeMediaClient({ room, signal: { send: (m) => signalling.sendMedia(m) }, recordSeconds: 2 });
  const c: ToneClient = { id, room, frequency: FREQUENCIES[index % FREQUENCIES.length], signalling, media, streams: new Map(), framesSent: 0 };
  signalling.on('media', (m) => void media.handle(m).catch((err: unknown) => count1(report.errors, `media: ${(err as Error).message}`)));
  signalling.on('ice_servers', (servers) => media.setIceServers(servers));
  signalling.on('error', (err) => count1(report.errors, `${err.code}: ${String(err.detail ?? err.message).slice(0, 120)}`));
  signalling.on('state', (state) => count1(report.states, state));
  media.on('reconnect', () => report.mediaReconnects++);
  media.on('rtp', (p) => onRtp(c, p.slot, p.ssrc, p.sequenceNumber));
  // A new peer (media reconnect, re-join) starts new streams: the outage is not loss (it is measured as audio-back time).
  media.on('offer', () => c.streams.clear());
  const token = () => mintToken({ key: BENCH_SECRET, userId: id, room: '*', grants: ['join', 'publish', 'subscribe', 'record'], ttl: 3600 });
  await signalling.connect(url, token);
  await signalling.join(room);
  await media.connected();
  media.publish(new CountedTone(c.frequency, () => void (countingSince > 0 && c.framesSent++)));
  return c;
}

/** Whether `c` holds 0.1 s of decoded audio (the last 0.5 s) from each other client of its room, with their tone. */
function hearsEveryone(c: ToneClient): boolean {
  return clients
    .filter((o) => o.room === c.room && o !== c)
    .every((o) => {
      // Participant ids are the server's (a re-join on a fresh session gets a new one).
      const pid = o.signalling.room(o.room)?.participantId;
      const pcm = pid === undefined ? new Float32Array(0) : c.media.audioFrom(pid, 0.5);
      return pcm.length >= 0.1 * SR && powerAt(pcm, SR, o.frequency) > PRESENT;
    });
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** From the event at `at` (epoch ms): when does every client of `rooms` hear everyone again? */
async function recover(event: string, at: number, rooms: string[]): Promise<void> {
  const affected = clients.filter((c) => rooms.includes(c.room));
  for (const c of affected) c.media.clearRecordings();
  const perClientMs: (number | null)[] = await Promise.all(
    affected.map(async (c) => ((await waitFor(() => hearsEveryone(c), 30_000)) ? Date.now() - at : null)),
  );
  report.recoveries.push({ event, at, rooms, perClientMs, audioBackMs: perClientMs.includes(null) ? null : Math.max(...(perClientMs as number[])) });
}

process.on('disconnect', () => process.exit(0));
process.on('message', (m: ParentToMediaLoad) => {
  const send = (msg: MediaLoadToParent, cb: () => void = () => undefined) => process.send!(msg, cb);
  const snapshot = (): MediaLoadReport => {
    // Each frame a publisher sent should reach every other client of its room.
    const perRoom = Number(perRoomArg);
    report.expected = clients.reduce((n, c) => n + c.framesSent * (perRoom - 1), 0);
    report.publisherFramesPct = Math.round((clients.reduce((n, c) => n + c.framesSent, 0) / Math.max(1, ((Date.now() - countingSince) / 20) * clients.length)) * 10_000) / 100;
    return report;
  };
  if (m.type === 'report') send({ type: 'report', report: snapshot() });
  if (m.type === 'recover') void recover(m.event, m.at, m.rooms ?? [...new Set(clients.map((c) => c.room))]).then(() => send({ type: 'recovered', event: m.event }));
  if (m.type === 'record') {
    const rooms = [...new Set(clients.map((c) => c.room))];
    void Promise.all(rooms.map((room) => clients.find((c) => c.room === room)!.signalling.record(room, m.action)))
      .then((ids) => {
        if (m.action === 'start') report.recordings.push(...ids.filter((x): x is string => x !== null));
        send({ type: 'recording', action: m.action, ids });
      })
      .catch((err: unknown) => send({ type: 'recording', action: m.action, ids: [], error: String(err) }));
  }
  if (m.type === 'stop') {
    send({ type: 'report', report: snapshot() }, () => {
      void Promise.all(clients.map((c) => Promise.all([c.media.close(), c.signalling.disconnect()]))).finally(() => process.exit(0));
    });
  }
});

const rooms = Array.from({ length: Number(roomsArg) }, (_, i) => `${prefix}-tone-${i}`);
// One at a time: a burst of DTLS handshakes on a loaded 2-core host can time out, and the setup is
// not what the soak measures.
for (const room of rooms) for (let i = 0; i < Number(perRoomArg); i++) clients.push(await connect(room, i));
report.clients = clients.length;
const ok = await waitFor(() => clients.every(hearsEveryone), 30_000);
report.received = 0;
report.lost = 0;
report.perSecond = [];
for (const c of clients) c.framesSent = 0;
countingSince = Date.now();
process.send!({ type: 'ready', open: clients.length, hearing: ok, rooms } satisfies MediaLoadToParent);
