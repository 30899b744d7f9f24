/**
 * The server's cost of receiving one inbound audio packet, werift's path (its SrtpSession.decrypt:
 * a new decipher, HMAC and buffers per packet) against the fast receive path (VoxLink's
 * SrtpContext in place, FastRtpReceiver in src/media/werift-adapter.ts); both then parse the packet
 * and route it through werift's RtpRouter to the receiver and track a room listens on.
 *
 *   node --import tsx bench/forwarding/receive-path.ts [--quick]
 *
 * A real server peer (one recvonly audio m-line) and a werift client connect over loopback in this
 * process. The client's DTLS transport protects N Opus-sized packets (60-byte payload, the audio
 * level extension) ahead of time; the loop then hands each datagram to the server's ICE
 * connection exactly as its socket would (`connection.onData.execute`), so the figure is the
 * server's receive work without the socket read. CPU time per packet, GCs counted, and the track
 * must see every packet. Writes bench/results/receive-path.json (quick: bench/results/quick/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { RTCPeerConnection, RtpHeader } from 'werift';
import { clientPeerConfig, mediaPeerConfig } from '../../src/media/peer-config.ts';
import { FastRtpReceiver, installForgedDtlsFilter, installRtpHeaderGuard, preferFastSrtpProfile } from '../../src/media/werift-adapter.ts';

const quick = process.argv.includes('--quick');
const here = dirname(fileURLToPath(import.meta.url));
const PAYLOAD = Buffer.alloc(60, 0x5a);

let gcs = 0;
new PerformanceObserver((l) => {
  gcs += l.getEntries().length;
}).observe({ entryTypes: ['gc'] });

interface Pair {
  feed(datagram: Buffer): void;
  protect(seq: number): Buffer;
  received(): number;
  receiver: FastRtpReceiver | null;
  close(): Promise<void>;
}

async function connectedPair(fast: boolean, port: number): Promise<Pair> {
  installRtpHeaderGuard();
  const server = new RTCPeerConnection(mediaPeerConfig({ announcedIp: '127.0.0.1', bindIp: '127.0.0.1', rtcMinPort: port, rtcMaxPort: port + 9 }, port));
  const mic = server.addTransceiver('audio', { direction: 'recvonly' });
  installForgedDtlsFilter(server);
  if (fast) preferFastSrtpProfile(server);
  const receiver = fast ? new FastRtpReceiver(server) : null;
  let received = 0;
  mic.onTrack.subscribe((track) => track.onReceiveRtp.subscribe(() => void received++));
  const client = new RTCPeerConnection(clientPeerConfig());
  const sender = client.addTransceiver('audio', { direction: 'sendonly' });
  await server.setLocalDescription(await server.createOffer());
  await client.setRemoteDescription(server.localDescription!);
  await client.setLocalDescription(await client.createAnswer());
  await server.setRemoteDescription(client.localDescription!);
  const deadline = Date.now() + 15_000;
  const clientDtls = client.dtlsTransports[0]!;
  while (server.connectionState !== 'connected' || clientDtls.state !== 'connected') {
    if (Date.now() > deadline) throw new Error('peers did not connect');
    await new Promise((r) => setTimeout(r, 50));
  }
  const ssrc = sender.sender.ssrc;
  const pt = sender.codecs[0]?.payloadType ?? 111;
  const onData = server.iceTransports[0]!.connection.onData as unknown as { execute(d: Buffer): void };
  const srtp = (clientDtls as unknown as { srtp: { encrypt(payload: Buffer, header: RtpHeader): Buffer } }).srtp;
  return {
    feed: (d) => onData.execute(d),
    protect: (seq) => {
      const header = new RtpHeader({ payloadType: pt, sequenceNumber: seq & 0xffff, timestamp: (seq * 960) >>> 0, ssrc, marker: false });
      // The RFC 6464 level as a one-byte extension (id 2 is what clientPeerConfig negotiates for ssrc-audio-level, after mid).
      header.extension = true;
      header.extensionProfile = 0xbede;
      header.extensions = [{ id: 2, payload: Buffer.from([0x80 | 30]) }];
      return srtp.encrypt(PAYLOAD, header);
    },
    received: () => received,
    receiver,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

async function measure(fast: boolean, port: number, packets: number): Promise<{ usPerPacket: number; gcPer100k: number; delivered: number }> {
  const pair = await connectedPair(fast, port);
  const datagrams: Buffer[] = [];
  for (let seq = 1; seq <= packets * 2; seq++) datagrams.push(pair.protect(seq));
  const run = (from: number, to: number): void => {
    for (let i = from; i < to; i++) pair.feed(datagrams[i]!);
  };
  run(0, packets); // warm up the JIT (and the replay windows move on)
  await new Promise((r) => setTimeout(r, 100));
  const got0 = pair.received();
  const gc0 = gcs;
  const cpu0 = process.cpuUsage();
  run(packets, 2 * packets);
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 100)); // GC entries reach the observer asynchronously
  const gcCount = gcs - gc0;
  const delivered = (pair.received() - got0) / packets;
  if (pair.receiver !== null && pair.receiver.packets < 2 * packets) throw new Error(`fast path took ${pair.receiver.packets} of ${2 * packets}`);
  await pair.close();
  return { usPerPacket: (cpu.user + cpu.system) / packets, gcPer100k: (gcCount / packets) * 100_000, delivered };
}

const packets = quick ? 20_000 : 100_000;
const rows: Record<string, Awaited<ReturnType<typeof measure>>> = {};
let port = 50200;
for (const rep of [0, 1]) {
  for (const fast of [false, true]) {
    const r = await measure(fast, port, packets);
    port += 10;
    const name = fast ? 'fast' : 'werift';
    if (rows[name] === undefined || r.usPerPacket < rows[name]!.usPerPacket) rows[name] = r;
    console.log(`${name.padEnd(6)} run ${rep}: ${r.usPerPacket.toFixed(2)} µs CPU per inbound packet, ${r.gcPer100k.toFixed(1)} GCs per 100k, delivered ${(r.delivered * 100).toFixed(1)} %`);
  }
}
const json = {
  quick,
  packetsPerRun: packets,
  werift: rows.werift,
  fast: rows.fast,
  speedup: Math.round((rows.werift!.usPerPacket / rows.fast!.usPerPacket) * 100) / 100,
};
const outDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'receive-path.json'), JSON.stringify(json, null, 2) + '\n');
console.log(`receive path: werift ${rows.werift!.usPerPacket.toFixed(2)} µs → fast ${rows.fast!.usPerPacket.toFixed(2)} µs per packet (${json.speedup}×)`);
process.exit(0);
