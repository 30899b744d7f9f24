/**
 * The forwarding bench's load generator, in its own process (one or more; the bench forks them):
 * lean clients that join like any client and then carry media with VoxLink's own SRTP.
 *
 * Join: a real NodeMediaClient per participant (werift: SDP answer, ICE, DTLS-SRTP handshake),
 * signalling relayed by the bench to the server process over IPC.
 *
 * Media, once every client is connected (`start`):
 * - publishers stop using werift's sender: each builds its RTP packet (mid + RFC 6464 level
 *   extensions, a 60-byte payload stamped with the monotonic clock) in a ring buffer, protects it
 *   with an SrtpContext made from the DTLS-SRTP keys werift negotiated (its `srtp.config.keys`,
 *   the local half) and sends it with one dgram send on the ICE socket werift nominated;
 * - receivers take the RTP datagrams off that socket before werift sees them (STUN, DTLS and RTCP
 *   still go to werift: ICE consent, SR/RR keep working). Each RTP datagram is counted per SSRC and
 *   its sequence number checked (loss = forward gaps); one in SAMPLE_EVERY is unprotected with an
 *   SrtpContext from the remote half of the keys: its tag must verify (a failure is counted) and its
 *   payload stamp gives the one-way latency publisher socket → server → receiver socket.
 * Both clocks are process.hrtime (CLOCK_MONOTONIC), shared by every process on the host.
 */
import type { Socket } from 'node:dgram';
import { RTCDtlsTransport } from 'werift';
import { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { AUDIO_LEVEL_URI } from '../../src/media/rtp.ts';
import { SrtpContext, SrtpProfile } from '../../src/media/srtp/index.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';

export type LeanCommand =
  | { t: 'join'; roomId: string; id: string; speaker: number }
  | { t: 'media'; roomId: string; id: string | null; message: ServerMediaMessage }
  | { t: 'start'; intervalMs: number }
  | { t: 'window'; on: boolean }
  | { t: 'snapshot'; seq: number }
  | { t: 'close' };

export type LeanReply =
  | { t: 'ready' }
  | { t: 'signal'; roomId: string; id: string; message: unknown }
  | { t: 'joined'; roomId: string; id: string; ok: boolean }
  | { t: 'started'; publishers: number; receivers: number; fallbacks: number }
  | { t: 'snapshot'; seq: number; snapshot: LeanSnapshot };

export interface LeanSnapshot {
  received: number;
  lost: number;
  sampled: number;
  badTags: number;
  sent: number;
  /** Latencies (ms) of sampled packets while the window was on, sorted percentiles. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencySamples: number;
  listenersWithAudio: number;
  /** Receivers by how many distinct streams (SSRCs, i.e. slots) reached them while the window was on: index n = receivers with n (last: n or more). */
  ssrcsPerListener: number[];
  cpuMs: number;
}

/** Unprotect (tag check + latency stamp) one received packet in this many. */
export const SAMPLE_EVERY = 8;
const PAYLOAD_BYTES = 60; // ≈ 24 kbit/s Opus voice frames
const RING = 64;
const ONE_BYTE_PROFILE = 0xbede;

const hrUs = (): number => Number(process.hrtime.bigint()) / 1000;

interface IceInternals {
  nominated?: { protocol: { type?: string; transport?: { socket?: Socket } }; remoteAddr: [string, number] };
}
interface DtlsInternals {
  srtp?: { config?: { keys: { localMasterKey: Buffer; localMasterSalt: Buffer; remoteMasterKey: Buffer; remoteMasterSalt: Buffer }; profile: number } };
}

interface Member {
  client: NodeMediaClient;
  roomId: string;
  id: string;
  speaker: number;
  connected: boolean;
}

// The lean clients do AES_CM_128_HMAC_SHA1_80 only (SrtpContext): their DTLS offers nothing else, so
// every server room negotiates it, also those that would prefer GCM (naive, werift-srtp). werift
// 0.24 reads the plain field `srtpProfiles` when the handshake starts (transport/dtls.js, checked 0.24.4).
const start = RTCDtlsTransport.prototype.start;
RTCDtlsTransport.prototype.start = function (this: { srtpProfiles: number[] }, ...args: unknown[]) {
  this.srtpProfiles = [SrtpProfile.AES128_CM_HMAC_SHA1_80];
  return (start as (...a: unknown[]) => Promise<void>).apply(this, args);
} as typeof start;

const members = new Map<string, Member>();
const key = (roomId: string, id: string): string => `${roomId}/${id}`;

// Receive-side totals over every lean receiver of this process.
let received = 0;
let lost = 0;
let sampled = 0;
let badTags = 0;
let sent = 0;
let measuring = false;
const latencies = new Float64Array(2_000_000);
let latencyCount = 0;
const heard = new Set<LeanReceiver>();
const receivers: LeanReceiver[] = [];
const MAX_SSRCS_COUNTED = 8;

class LeanReceiver {
  readonly #inbound: SrtpContext;
  /** Per-SSRC highest sequence number (the slot streams: K of them, a Map is fine). */
  readonly #lastSeq = new Map<number, number>();
  /** The SSRCs seen while the window was on (cleared when it opens). */
  readonly windowSsrcs = new Set<number>();
  #n = 0;

  constructor(socket: Socket, inbound: SrtpContext) {
    this.#inbound = inbound;
    const werift = socket.listeners('message') as ((data: Buffer, info: unknown) => void)[];
    socket.removeAllListeners('message');
    socket.on('message', (data: Buffer, info: unknown) => {
      const b0 = data[0] ?? 0;
      const b1 = data[1] ?? 0;
      // RFC 7983: 128..191 is RTP/RTCP; RFC 5761: RTCP packet types 192..223 in the second byte.
      if (b0 < 128 || b0 > 191 || (b1 >= 192 && b1 <= 223) || data.length < 12) {
        for (const l of werift) l(data, info);
        return;
      }
      this.#onRtp(data);
    });
  }

  #onRtp(data: Buffer): void {
    received++;
    const seq = (data[2]! << 8) | data[3]!;
    const ssrc = data.readInt32BE(8);
    if (measuring) {
      heard.add(this);
      this.windowSsrcs.add(ssrc);
    }
    const last = this.#lastSeq.get(ssrc);
    if (last !== undefined) {
      const d = (seq - last) & 0xffff;
      if (d !== 0 && d < 0x8000) {
        lost += d - 1;
        this.#lastSeq.set(ssrc, seq);
      }
    } else {
      this.#lastSeq.set(ssrc, seq);
    }
    if (++this.#n % SAMPLE_EVERY !== 0) return;
    sampled++;
    const n = this.#inbound.unprotectRtp(data, data.length);
    if (n < 0) {
      badTags++;
      return;
    }
    let hdr = 12 + 4 * (data[0]! & 0x0f);
    if (data[0]! & 0x10) hdr += 4 + 4 * data.readUInt16BE(hdr + 2);
    if (measuring && hdr + 8 <= n && latencyCount < latencies.length) latencies[latencyCount++] = (hrUs() - data.readDoubleLE(hdr)) / 1000;
  }
}

class LeanPublisher {
  readonly #socket: Socket;
  readonly #port: number;
  readonly #address: string;
  readonly #outbound: SrtpContext;
  readonly #ring = Array.from({ length: RING }, () => Buffer.alloc(160));
  readonly #headerBytes: number;
  readonly #level: number;
  readonly #speaker: number;
  #next = 0;
  #seq = (Math.random() * 0x10000) | 0;
  #ts = (Math.random() * 0x1_0000_0000) >>> 0;

  constructor(member: Member, socket: Socket, remote: [string, number], outbound: SrtpContext) {
    this.#socket = socket;
    this.#address = remote[0];
    this.#port = remote[1];
    this.#outbound = outbound;
    this.#speaker = member.speaker;
    // Distinct levels: speaker 0 loudest, so the ranking is stable (RFC 6464: 0 = loudest, −dBov).
    this.#level = 20 + member.speaker * 4;
    const mic = [...member.client.pc.getTransceivers()].sort((a, b) => (a.mLineIndex ?? 0) - (b.mLineIndex ?? 0))[0]!;
    const ssrc = mic.sender.ssrc;
    const mid = Buffer.from(mic.mid ?? '0');
    const midId = mic.headerExtensions.find((e) => e.uri === 'urn:ietf:params:rtp-hdrext:sdes:mid')?.id ?? 0;
    const levelId = mic.headerExtensions.find((e) => e.uri === AUDIO_LEVEL_URI)?.id ?? 0;
    // RFC 3550 §5.1 header and RFC 8285 one-byte extensions, written once per ring buffer.
    let at = 16;
    const ext = Buffer.alloc(32);
    if (midId > 0) {
      ext[at++] = (midId << 4) | (mid.length - 1);
      at += mid.copy(ext, at);
    }
    if (levelId > 0) {
      ext[at++] = levelId << 4;
      ext[at++] = this.#level;
    }
    while ((at & 3) !== 0) ext[at++] = 0;
    ext[0] = 0x90;
    ext[1] = 111;
    ext.writeUInt32BE(ssrc >>> 0, 8);
    ext.writeUInt16BE(ONE_BYTE_PROFILE, 12);
    ext.writeUInt16BE((at - 16) >>> 2, 14);
    this.#headerBytes = at;
    for (const b of this.#ring) {
      ext.copy(b, 0, 0, at);
      b.fill(0x55, at, at + PAYLOAD_BYTES);
    }
  }

  send(): void {
    const buf = this.#ring[this.#next]!;
    this.#next = (this.#next + 1) % RING;
    buf.writeUInt16BE(this.#seq, 2);
    buf.writeUInt32BE(this.#ts, 4);
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#ts = (this.#ts + 960) >>> 0;
    const h = this.#headerBytes;
    buf.writeDoubleLE(hrUs(), h);
    buf.writeUInt16LE(this.#speaker, h + 8);
    buf.fill(0x55, h + 10, h + PAYLOAD_BYTES);
    const n = this.#outbound.protectRtp(buf, h + PAYLOAD_BYTES);
    if (n < 0) return;
    this.#socket.send(buf, 0, n, this.#port, this.#address);
    sent++;
  }
}

const publishers: LeanPublisher[] = [];
let timer: NodeJS.Timeout | null = null;

/** Takes over one connected client's media: its socket, its keys. False if werift's state is not what we expect. */
function takeOver(m: Member): boolean {
  const pc = m.client.pc;
  const ice = pc.iceTransports[0]?.connection as unknown as IceInternals | undefined;
  const pair = ice?.nominated;
  const socket = pair?.protocol.type === 'stun' ? pair.protocol.transport?.socket : undefined;
  const config = (pc.dtlsTransports[0] as unknown as DtlsInternals | undefined)?.srtp?.config;
  if (socket === undefined || pair === undefined || config === undefined) return false;
  const profile = config.profile as SrtpProfile;
  if (profile !== SrtpProfile.AES128_CM_HMAC_SHA1_80 && profile !== SrtpProfile.AES128_CM_HMAC_SHA1_32) return false;
  const { keys } = config;
  receivers.push(new LeanReceiver(socket, new SrtpContext({ profile, masterKey: keys.remoteMasterKey, masterSalt: keys.remoteMasterSalt })));
  if (m.speaker >= 0) {
    const out = new SrtpContext({ profile, masterKey: keys.localMasterKey, masterSalt: keys.localMasterSalt });
    publishers.push(new LeanPublisher(m, socket, [pair.remoteAddr[0], pair.remoteAddr[1]], out));
  }
  return true;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function reply(r: LeanReply): void {
  process.send?.(r);
}

process.on('message', (raw) => {
  const cmd = raw as LeanCommand;
  switch (cmd.t) {
    case 'join': {
      const client = new NodeMediaClient({
        room: cmd.roomId,
        decode: false,
        signal: { send: (message) => reply({ t: 'signal', roomId: cmd.roomId, id: cmd.id, message }) },
      });
      const m: Member = { client, roomId: cmd.roomId, id: cmd.id, speaker: cmd.speaker, connected: false };
      members.set(key(cmd.roomId, cmd.id), m);
      client.connected(60_000).then(
        () => {
          m.connected = true;
          reply({ t: 'joined', roomId: cmd.roomId, id: cmd.id, ok: true });
        },
        () => reply({ t: 'joined', roomId: cmd.roomId, id: cmd.id, ok: false }),
      );
      return;
    }
    case 'media': {
      if (cmd.id !== null) {
        void members.get(key(cmd.roomId, cmd.id))?.client.handle(cmd.message).catch(() => undefined);
      } else {
        for (const m of members.values()) if (m.roomId === cmd.roomId) void m.client.handle(cmd.message).catch(() => undefined);
      }
      return;
    }
    case 'start': {
      let receivers = 0;
      let fallbacks = 0;
      for (const m of members.values()) {
        if (!m.connected) continue;
        if (takeOver(m)) receivers++;
        else fallbacks++;
      }
      // One clock for every publisher of this process; stalls are skipped, not burst.
      const start = performance.now();
      let due0 = 0;
      timer = setInterval(() => {
        const due = Math.floor((performance.now() - start) / cmd.intervalMs);
        if (due - due0 > 10) due0 = due - 1;
        while (due0 < due) {
          for (const p of publishers) p.send();
          due0++;
        }
      }, Math.max(1, Math.floor(cmd.intervalMs / 2)));
      reply({ t: 'started', publishers: publishers.length, receivers, fallbacks });
      return;
    }
    case 'window':
      measuring = cmd.on;
      if (cmd.on) {
        latencyCount = 0;
        heard.clear();
        for (const r of receivers) r.windowSsrcs.clear();
      }
      return;
    case 'snapshot': {
      const sorted = latencies.slice(0, latencyCount).sort();
      const cpu = process.cpuUsage();
      const ssrcsPerListener = new Array<number>(MAX_SSRCS_COUNTED + 1).fill(0);
      for (const r of receivers) ssrcsPerListener[Math.min(r.windowSsrcs.size, MAX_SSRCS_COUNTED)]!++;
      reply({
        t: 'snapshot',
        seq: cmd.seq,
        snapshot: {
          received,
          lost,
          sampled,
          badTags,
          sent,
          latencyP50Ms: percentile(sorted, 50),
          latencyP99Ms: percentile(sorted, 99),
          latencySamples: latencyCount,
          listenersWithAudio: heard.size,
          ssrcsPerListener,
          cpuMs: (cpu.user + cpu.system) / 1000,
        },
      });
      return;
    }
    case 'close':
      if (timer !== null) clearInterval(timer);
      void Promise.allSettled([...members.values()].map((m) => m.client.close())).then(() => process.exit(0));
      setTimeout(() => process.exit(0), 3000).unref();
      return;
  }
});
process.on('disconnect', () => process.exit(0));
reply({ t: 'ready' });
