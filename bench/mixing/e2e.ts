/**
 * The mixing bench's end-to-end scenario: `mix` rooms of 10 (3 speaking) on the bench's media
 * server process (bench/forwarding/server.ts: the real MediaRoom, werift peers, SRTP, UDP on
 * loopback), with real werift clients (NodeMediaClient) in this process. Speakers publish a
 * speech-like signal encoded with our Opus; everyone receives the mix over SRTP. Rooms per core =
 * rooms ÷ the server process's CPU share in the window, counted only while the rooms run in real
 * time: < 1 % late mix ticks and ≥ 99 % of the expected mix packets arriving at the listeners.
 */
import { Server } from '../forwarding/server-process.ts';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import type { PcmSource } from '../../src/client/media/pcm-source.ts';
import type { MediaRoomStats } from '../../src/media/room.ts';
import { speechLikeFloat32 } from '../../test/codec/signal.ts';

export interface EndToEndTrial {
  rooms: number;
  serverCpuPct: number;
  roomsPerCore: number;
  /** Server CPU per room per 20 ms tick, ms (process CPU: network, SRTP, mixing, encoding). */
  cpuMsPerRoomTick: number;
  lateTickPct: number;
  /** Mix ticks run ÷ 50 per second per room (100 % = the mixers kept real time on average). */
  tickRatePct: number;
  /** Mix packets the clients received ÷ those the server sent (loopback delivery and client SRTP). */
  deliveredPct: number;
  lossPct: number;
  clientsConnected: number;
  clients: number;
  joinS: number;
}

const PARTICIPANTS = 10;
const SPEAKERS = 3;
/** This scenario's fixed ports (bench range 52400–53999): 53600–53899. */
const PORT_BASE = 53600;

/** Loops a speech-like signal (test/codec/signal.ts), one per speaker seed. */
class LoopSource implements PcmSource {
  readonly #pcm: Float32Array;
  #at = 0;
  constructor(seed: number) {
    this.#pcm = speechLikeFloat32(48_000, 4, seed);
  }
  read(out: Float32Array): void {
    for (let i = 0; i < out.length; i++) {
      out[i] = this.#pcm[this.#at]!;
      this.#at = (this.#at + 1) % this.#pcm.length;
    }
  }
}

function receivedOf(c: NodeMediaClient): { packets: number; gaps: number } {
  let packets = 0;
  let gaps = 0;
  for (let k = 0; k < c.slotCount; k++) {
    const st = c.slotStats(k);
    if (st === undefined) continue;
    packets += st.packets;
    gaps += st.seqGaps;
  }
  return { packets, gaps };
}

function mixTotals(rooms: MediaRoomStats[]): { ticks: number; skipped: number; late: number; packetsOut: number } {
  let ticks = 0;
  let skipped = 0;
  let late = 0;
  let packetsOut = 0;
  for (const r of rooms) {
    ticks += r.mix?.clock.ticks ?? 0;
    skipped += r.mix?.clock.skippedTicks ?? 0;
    late += r.mix?.clock.lateTicks ?? 0;
    packetsOut += r.mix?.packetsOut ?? 0;
  }
  return { ticks, skipped, late, packetsOut };
}

export async function endToEndTrial(rooms: number, warmupS: number, windowS: number): Promise<EndToEndTrial> {
  const server = new Server();
  await server.ready();
  const clients: NodeMediaClient[] = [];
  const speakers: { client: NodeMediaClient; seed: number }[] = [];
  let connected = 0;
  const joinStart = performance.now();
  for (let r = 0; r < rooms; r++) {
    const roomId = `mix${r}`;
    const span = PARTICIPANTS * 2 + 20;
    const min = PORT_BASE + r * span;
    server.send({ t: 'create', roomId, mode: 'slots', roomMode: 'mix', slots: 3, publishers: SPEAKERS, rtcMinPort: min, rtcMaxPort: min + span - 1, fastSrtp: true });
    const joins: Promise<void>[] = [];
    for (let p = 0; p < PARTICIPANTS; p++) {
      const id = `p${p}`;
      const client = new NodeMediaClient({
        room: roomId,
        decode: false,
        signal: { send: (message) => server.send({ t: 'signal', roomId, participantId: id, message }) },
      });
      server.on(roomId, id, (m) => void client.handle(m).catch(() => undefined));
      clients.push(client);
      if (p < SPEAKERS) speakers.push({ client, seed: r * SPEAKERS + p + 1 });
      server.send({ t: 'join', roomId, participantId: id, publish: p < SPEAKERS });
      joins.push(client.connected(30_000).then(() => void connected++, () => undefined));
    }
    await Promise.all(joins);
  }
  const joinS = (performance.now() - joinStart) / 1000;
  for (const s of speakers) {
    try {
      s.client.publish(new LoopSource(s.seed), { bitrate: 32_000 });
    } catch {
      // not negotiated (failed join): counted by clientsConnected
    }
  }
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  const before = await server.stats();
  const rx0 = clients.map(receivedOf);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowS * 1000));
  const after = await server.stats();
  const elapsedS = (performance.now() - t0) / 1000;
  const rx1 = clients.map(receivedOf);
  let packets = 0;
  let gaps = 0;
  rx1.forEach((x, i) => {
    packets += x.packets - rx0[i]!.packets;
    gaps += x.gaps - rx0[i]!.gaps;
  });
  const m0 = mixTotals(before.rooms);
  const m1 = mixTotals(after.rooms);
  const ticks = m1.ticks - m0.ticks;
  // MixClock counts a skipped tick (a stall past its catch-up bound) as late and not as a tick.
  const slots = ticks + m1.skipped - m0.skipped;
  const mixPackets = m1.packetsOut - m0.packetsOut;
  const cpuShare = (after.cpuMs - before.cpuMs) / 1000 / elapsedS;
  await Promise.allSettled(clients.map((c) => c.close()));
  await server.close();
  return {
    rooms,
    serverCpuPct: cpuShare * 100,
    roomsPerCore: rooms / Math.max(cpuShare, 1e-6),
    cpuMsPerRoomTick: ticks > 0 ? (after.cpuMs - before.cpuMs) / (ticks) : 0,
    lateTickPct: slots > 0 ? ((m1.late - m0.late) / slots) * 100 : 100,
    tickRatePct: (ticks / (rooms * 50 * elapsedS)) * 100,
    deliveredPct: mixPackets > 0 ? (packets / mixPackets) * 100 : 0,
    lossPct: packets + gaps > 0 ? (gaps / (packets + gaps)) * 100 : 100,
    clientsConnected: connected,
    clients: clients.length,
    joinS,
  };
}
