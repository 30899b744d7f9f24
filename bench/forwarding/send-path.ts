/**
 * `npm run bench -- send-path [--quick]`: the server's cost of sending one forwarded audio packet
 * to one subscriber, werift's path (`sender.sendRtp`-equivalent: werift SRTP, three promises, the
 * dgram send) against the fast path (VoxLink's SrtpContext in place, one dgram send): the part of
 * forwarding that grows with listeners. A real server peer (SlotOutput, K = 3 sendonly m-lines) and
 * a werift client peer connect over loopback in this process; then the client's sockets close, so
 * the loop below pays the server's send side only (the kernel drops the datagrams). CPU time per
 * packet includes the socket sends (they run on the next tick), GCs are counted. Writes bench/results/send-path.json
 * (quick: bench/results/quick/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSocket } from 'node:dgram';
import { PerformanceObserver } from 'node:perf_hooks';
import { RTCPeerConnection } from 'werift';
import { clientPeerConfig, mediaPeerConfig } from '../../src/media/peer-config.ts';
import { SlotOutput } from '../../src/media/slot-output.ts';
import { preferFastSrtpProfile } from '../../src/media/werift-adapter.ts';
import { directSenderFor, directUdp } from '../../src/media/udp-direct.ts';

const quick = process.argv.includes('--quick');
const here = dirname(fileURLToPath(import.meta.url));
const K = 3;
const PAYLOAD = Buffer.alloc(60, 0x5a);
const BATCH = 16; // packets per output between yields: a burst of fan-out, then the sends drain

let gcs = 0;
new PerformanceObserver((l) => {
  gcs += l.getEntries().length;
}).observe({ entryTypes: ['gc'] });

async function connectedOutputs(fast: boolean, port: number): Promise<{ outputs: SlotOutput[]; close: () => Promise<void> }> {
  const server = new RTCPeerConnection(mediaPeerConfig({ announcedIp: '127.0.0.1', bindIp: '127.0.0.1', rtcMinPort: port, rtcMaxPort: port + 9 }, port));
  const outputs = Array.from({ length: K }, (_, k) => new SlotOutput('bench', k, server.addTransceiver('audio', { direction: 'sendonly' }), fast));
  if (fast) preferFastSrtpProfile(server);
  const client = new RTCPeerConnection(clientPeerConfig());
  await server.setLocalDescription(await server.createOffer());
  await client.setRemoteDescription(server.localDescription!);
  await client.setLocalDescription(await client.createAnswer());
  await server.setRemoteDescription(client.localDescription!);
  const deadline = Date.now() + 15_000;
  while (!outputs.every((o) => o.ready)) {
    if (Date.now() > deadline) throw new Error('peers did not connect');
    await new Promise((r) => setTimeout(r, 50));
  }
  // The client stops listening (its sockets close; the server's ICE consent lasts 30 s, longer
  // than a run): the loop pays the server's send side only, not this process's receive events.
  for (const ice of client.iceTransports) {
    for (const p of (ice.connection as unknown as { protocols: { transport?: { socket?: { close(): void } } }[] }).protocols) p.transport?.socket?.close();
  }
  for (const o of outputs) o.setCodec('opus');
  return {
    outputs,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

async function measure(fast: boolean, port: number, packets: number): Promise<{ usPerPacket: number; gcPer100k: number; fastShare: number }> {
  const { outputs, close } = await connectedOutputs(fast, port);
  const streams = outputs.map((o) => o.stream);
  let seq = 0;
  const round = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i += BATCH) {
      for (let b = 0; b < BATCH; b++) {
        seq++;
        for (let k = 0; k < K; k++) {
          const o = outputs[k]!;
          o.send(PAYLOAD, { ssrc: streams[k]!.ssrc, sequenceNumber: seq & 0xffff, timestamp: (seq * 960) >>> 0, marker: false }, 40);
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  };
  await round(Math.min(packets, 20_000)); // warm up the JIT
  await new Promise((r) => setTimeout(r, 200));
  const sent0 = outputs.reduce((a, o) => a + o.packets, 0);
  const fast0 = outputs.reduce((a, o) => a + o.fastPackets, 0);
  const gc0 = gcs;
  const cpu0 = process.cpuUsage();
  await round(packets);
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 300));
  const sent = outputs.reduce((a, o) => a + o.packets, 0) - sent0;
  const fastSent = outputs.reduce((a, o) => a + o.fastPackets, 0) - fast0;
  const result = {
    usPerPacket: (cpu.user + cpu.system) / sent,
    gcPer100k: ((gcs - gc0) / sent) * 100_000,
    fastShare: fastSent / sent,
  };
  await close();
  return result;
}

/**
 * The floor under any send path: one `dgram.Socket#send` of a 90-byte datagram (a protected
 * 60-byte frame with its extensions) with a callback, from a bound socket to a loopback port
 * nobody listens on, the same batching as above. What is left for SRTP and the rest is the difference.
 */
async function measureRawSend(port: number, packets: number, direct: boolean): Promise<{ usPerPacket: number; gcPer100k: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(port, '127.0.0.1', r));
  const bufs = Array.from({ length: 64 }, () => Buffer.alloc(90, 0x80));
  const done = (): void => {};
  directUdp.enabled = direct;
  const sender = direct ? directSenderFor(socket) : null;
  directUdp.enabled = false;
  if (direct && sender === null) throw new Error('no direct UDP sender on this Node');
  const round = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i += BATCH) {
      if (sender !== null) for (let b = 0; b < BATCH * K; b++) sender.send(bufs[b & 63]!, 90, port + 1, '127.0.0.1');
      else for (let b = 0; b < BATCH * K; b++) socket.send(bufs[b & 63]!, 0, 90, port + 1, '127.0.0.1', done);
      await new Promise((r) => setImmediate(r));
    }
  };
  await round(Math.min(packets, 20_000));
  await new Promise((r) => setTimeout(r, 200));
  const gc0 = gcs;
  const cpu0 = process.cpuUsage();
  await round(packets);
  const cpu = process.cpuUsage(cpu0);
  socket.close();
  return { usPerPacket: (cpu.user + cpu.system) / (packets * K), gcPer100k: ((gcs - gc0) / (packets * K)) * 100_000 };
}

const packets = quick ? 30_000 : 150_000;
const rows: Record<string, Awaited<ReturnType<typeof measure>>> = {};
let port = 53900; // this bench's ports: 53900–53969
for (const rep of [0, 1]) {
  for (const name of ['werift', 'fast', 'fast-direct'] as const) {
    // fast-direct: the fast path with the opt-in direct send (udp-direct.ts) instead of Socket#send.
    directUdp.enabled = name === 'fast-direct';
    const r = await measure(name !== 'werift', port, packets);
    directUdp.enabled = false;
    port += 10;
    // Best of two runs (the machine is shared).
    if (rows[name] === undefined || r.usPerPacket < rows[name]!.usPerPacket) rows[name] = r;
    console.log(
      `${name.padEnd(6)} run ${rep}: ${r.usPerPacket.toFixed(2)} µs CPU per packet per subscriber, ${r.gcPer100k.toFixed(1)} GCs per 100k, ` +
        `fast share ${(r.fastShare * 100).toFixed(1)} %`,
    );
  }
}
let raw: Awaited<ReturnType<typeof measureRawSend>> | undefined;
let rawDirect: Awaited<ReturnType<typeof measureRawSend>> | undefined;
for (const rep of [0, 1]) {
  const r = await measureRawSend(53960 + 4 * rep, packets, false);
  if (raw === undefined || r.usPerPacket < raw.usPerPacket) raw = r;
  console.log(`dgram  run ${rep}: ${r.usPerPacket.toFixed(2)} µs CPU per socket.send, ${r.gcPer100k.toFixed(1)} GCs per 100k`);
  const d = await measureRawSend(53962 + 4 * rep, packets, true);
  if (rawDirect === undefined || d.usPerPacket < rawDirect.usPerPacket) rawDirect = d;
  console.log(`direct run ${rep}: ${d.usPerPacket.toFixed(2)} µs CPU per direct send, ${d.gcPer100k.toFixed(1)} GCs per 100k`);
}
const json = {
  quick,
  /** One bare dgram send (no SRTP, no RTP): the floor of the fast path's cost per packet. */
  dgramSend: raw,
  /** The same datagram through DirectUdpSender (src/media/udp-direct.ts): copy, then the socket handle's send. */
  directSend: rawDirect,
  packetsPerRun: packets * K,
  werift: rows.werift,
  fast: rows.fast,
  /** The fast path with the opt-in direct send (VOXLINK_DIRECT_UDP=1). */
  fastDirect: rows['fast-direct'],
  speedup: Math.round((rows.werift!.usPerPacket / rows.fast!.usPerPacket) * 100) / 100,
  directVsDgram: Math.round((rows.fast!.usPerPacket / rows['fast-direct']!.usPerPacket) * 100) / 100,
};
const outDir = join(here, '..', 'results', ...(quick ? ['quick'] : []));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'send-path.json'), JSON.stringify(json, null, 2) + '\n');
console.log(
  `send path: werift ${rows.werift!.usPerPacket.toFixed(2)} µs → fast ${rows.fast!.usPerPacket.toFixed(2)} µs per packet (${json.speedup}×), with the direct send ${rows['fast-direct']!.usPerPacket.toFixed(2)} µs; ` +
    `bare dgram send ${raw!.usPerPacket.toFixed(2)} µs, direct ${rawDirect!.usPerPacket.toFixed(2)} µs`,
);
process.exit(0);
