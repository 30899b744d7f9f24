/**
 * SRTP microbench: ns per packet to protect and unprotect an Opus-sized (60-byte payload) and a
 * video-sized (1000-byte payload) RTP packet, and GCs per million packets, for VoxLink's SRTP
 * context with each candidate primitive pair (src/media/srtp/ and ./srtp-primitives.ts), with
 * werift's SrtpSession as the baseline in the same run.
 *
 *   node --import tsx bench/forwarding/srtp.ts [--quick]
 *
 * Each candidate runs in its own child process (so the JIT sees one primitive shape, and GC
 * counts are its own), after checking that its output is byte-identical to werift's for the
 * same keys and packet. Unprotect cost = (protect + unprotect loop) − (protect loop), because a
 * receiver with a replay window cannot be fed the same packet twice. Writes
 * bench/results/srtp.json (bench/results/quick/srtp.json with --quick).
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { RtpHeader, SrtpSession } from 'werift';
import { SrtpContext, SrtpProfile, adaptivePrimitives, typescriptPrimitives, type SrtpPrimitives } from '../../src/media/srtp/index.ts';
import { NobleHmac, NodeCtrPerPacket, NodeEcbKeystream, NodeHashCopyHmac, NodeHmacPerPacket } from './srtp-primitives.ts';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

interface Candidate {
  name: string;
  description: string;
  allocates: boolean;
}

const CANDIDATES: Candidate[] = [
  { name: 'werift', description: "werift 0.24 SrtpSession.encrypt/decrypt (new cipher + HMAC objects and buffers per packet)", allocates: true },
  { name: 'ts-aes+ts-sha1', description: 'VoxLink: T-table AES-CM + SHA-1 with HMAC pad midstates, in place (default)', allocates: false },
  { name: 'adaptive', description: 'VoxLink opt-in (adaptivePrimitives): TypeScript below 256 payload bytes, aes-128-ecb keystream (one Buffer per packet) from there; TypeScript HMAC', allocates: true },
  { name: 'node-ecb+node-hmac', description: 'long-lived aes-128-ecb keystream + createHmac per packet', allocates: true },
  { name: 'node-ecb+node-hashcopy', description: 'long-lived aes-128-ecb keystream + Hash#copy() of the ipad/opad midstates', allocates: true },
  { name: 'node-ecb+ts-sha1', description: 'long-lived aes-128-ecb keystream + TypeScript HMAC midstates', allocates: true },
  { name: 'ts-aes+node-hmac', description: 'TypeScript AES-CM + createHmac per packet', allocates: true },
  { name: 'ts-aes+noble-hmac', description: 'TypeScript AES-CM + @noble/hashes HMAC-SHA1 cloned from a keyed template', allocates: true },
  { name: 'node-ctr+node-hmac', description: "werift's primitives (createCipheriv aes-128-ctr + createHmac per packet) in VoxLink's context", allocates: true },
];

function primitivesFor(name: string): SrtpPrimitives {
  if (name === 'adaptive') return adaptivePrimitives();
  const [cipher, mac] = name.split('+');
  return {
    cipher: cipher === 'node-ecb' ? (k) => new NodeEcbKeystream(k) : cipher === 'node-ctr' ? (k) => new NodeCtrPerPacket(k) : typescriptPrimitives.cipher,
    mac:
      mac === 'node-hmac'
        ? (k) => new NodeHmacPerPacket(k)
        : mac === 'node-hashcopy'
          ? (k) => new NodeHashCopyHmac(k)
          : mac === 'noble-hmac'
            ? (k) => new NobleHmac(k)
            : typescriptPrimitives.mac,
  };
}

export interface SrtpBenchRow {
  candidate: string;
  payloadBytes: number;
  protectNs: number;
  unprotectNs: number;
  /** GC events per million packets over the protect+unprotect loop (0 = no allocation that matters). */
  gcsPer1M: number;
  packets: number;
}

const MASTER_KEY = Buffer.from('E1F97A0D3E018BE0D64FA32C06DE4139', 'hex');
const MASTER_SALT = Buffer.from('0EC675AD498AFEEBB6960B3AABE6', 'hex');
const SSRC = 0x1234abcd;

/** An RTP packet as Chromium sends Opus: 12-byte header + one-byte extension (RFC 6464 audio level). */
function rtpHeader(seq: number): RtpHeader {
  return new RtpHeader({ payloadType: 111, sequenceNumber: seq, timestamp: 0x5eed, ssrc: SSRC, extension: true, extensionProfile: 0xbede, extensions: [{ id: 1, payload: Buffer.from([0x9f]) }] });
}

let gcs = 0;
const observer = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 30));
}

/**
 * CPU time (user + system of this process) per call, not wall time: the bench host is shared,
 * and CPU time is what a packet costs the server. The best of `reps` runs, GCs summed over all.
 */
async function timeLoop(n: number, fn: (i: number) => void, reps = 3): Promise<{ ns: number; gcs: number }> {
  let best = Infinity;
  let total = 0;
  for (let r = 0; r < reps; r++) {
    globalThis.gc?.();
    await settle();
    const g0 = gcs;
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn(i);
    const c = process.cpuUsage(c0);
    best = Math.min(best, ((c.user + c.system) * 1000) / n);
    await settle(); // gc entries reach the observer asynchronously
    total += gcs - g0;
  }
  return { ns: best, gcs: total / reps };
}

/** Iterations that take about targetMs, from a short calibration run. */
function calibrate(fn: (i: number) => void, targetMs: number, max: number): number {
  for (let i = 0; i < 5000; i++) fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < 5000; i++) fn(i);
  const c = process.cpuUsage(c0);
  const ns = Math.max(50, ((c.user + c.system) * 1000) / 5000);
  return Math.max(10_000, Math.min(max, Math.round((targetMs * 1e6) / ns)));
}

async function runCandidate(name: string): Promise<SrtpBenchRow[]> {
  observer.observe({ entryTypes: ['gc'] });
  const rows: SrtpBenchRow[] = [];
  const targetMs = quick ? 250 : 1500;
  const maxPackets = quick ? 200_000 : 1_000_000;
  for (const payloadBytes of [60, 1000]) {
    const payload = Buffer.alloc(payloadBytes);
    for (let i = 0; i < payloadBytes; i++) payload[i] = (i * 37) & 0xff;
    const keys = { localMasterKey: MASTER_KEY, localMasterSalt: MASTER_SALT, remoteMasterKey: MASTER_KEY, remoteMasterSalt: MASTER_SALT };
    const werift = new SrtpSession({ keys, profile: 1 });
    if (name === 'werift') {
      const header = rtpHeader(0);
      const protect = (i: number): void => {
        header.sequenceNumber = i & 0xffff;
        werift.encrypt(payload, header);
      };
      const fixed = werift.encrypt(payload, rtpHeader(7));
      const unprotect = (): void => void werift.decrypt(fixed); // no replay window: the same packet is fine
      const n = calibrate(protect, targetMs, maxPackets);
      const p = await timeLoop(n, protect);
      const u = await timeLoop(n, unprotect);
      rows.push({ candidate: name, payloadBytes, protectNs: p.ns, unprotectNs: u.ns, gcsPer1M: ((p.gcs + u.gcs) / (2 * n)) * 1e6, packets: n });
      continue;
    }
    const primitives = primitivesFor(name);
    const make = (): SrtpContext => new SrtpContext({ profile: SrtpProfile.AES128_CM_HMAC_SHA1_80, masterKey: MASTER_KEY, masterSalt: MASTER_SALT, primitives });
    const tx = make();
    const rx = make();
    const plain = Buffer.concat([rtpHeader(0).serialize(rtpHeader(0).serializeSize), payload]);
    const len = plain.length;
    const buf = Buffer.alloc(len + 16);
    // Correctness first: byte-identical to werift for the same packet, and werift decrypts ours.
    for (const seq of [0, 1, 2, 30000]) {
      const ref = werift.encrypt(payload, rtpHeader(seq));
      plain.copy(buf);
      buf.writeUInt16BE(seq, 2);
      const m = tx.protectRtp(buf, len);
      if (m !== ref.length || !buf.subarray(0, m).equals(ref)) throw new Error(`${name}: protected bytes differ from werift at seq ${seq}`);
      const back = rx.unprotectRtp(buf, m);
      if (back !== len || buf.readUInt16BE(2) !== seq || !buf.subarray(back - payloadBytes, back).equals(payload)) throw new Error(`${name}: round trip failed at seq ${seq} (${back})`);
    }
    // Fresh contexts for timing; one sequence number per packet, wrapping (the ROC follows).
    const tx2 = make();
    const rx2 = make();
    // Each loop has its own sequence counter so each context sees consecutive packets.
    const copy = (seq: number): void => {
      plain.copy(buf, 0, 0, len);
      buf[2] = seq >>> 8;
      buf[3] = seq;
    };
    let seqCopy = 0;
    const copyOnly = (): void => copy((seqCopy = (seqCopy + 1) & 0xffff));
    let seqP = 0;
    let failed = 0;
    const protectOnly = (): void => {
      copy((seqP = (seqP + 1) & 0xffff));
      if (tx2.protectRtp(buf, len) < 0) failed++;
    };
    const tx3 = make();
    let seqB = 0;
    const both = (): void => {
      copy((seqB = (seqB + 1) & 0xffff));
      const m = tx3.protectRtp(buf, len);
      if (rx2.unprotectRtp(buf, m) !== len) failed++;
    };
    const n = calibrate(both, targetMs, maxPackets);
    const base = await timeLoop(n, copyOnly);
    const p = await timeLoop(n, protectOnly);
    const pu = await timeLoop(n, both);
    if (failed > 0) throw new Error(`${name}: ${failed} packets failed to protect or unprotect`);
    rows.push({
      candidate: name,
      payloadBytes,
      protectNs: p.ns - base.ns,
      unprotectNs: pu.ns - p.ns,
      gcsPer1M: (pu.gcs / n) * 1e6,
      packets: n,
    });
  }
  observer.disconnect();
  return rows;
}

function runChild(name: string): Promise<SrtpBenchRow[]> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--candidate', name, ...(quick ? ['--quick'] : [])], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let rows: SrtpBenchRow[] | undefined;
    child.on('message', (m) => (rows = m as SrtpBenchRow[]));
    child.on('exit', (code) => (code === 0 && rows ? resolve(rows) : reject(new Error(`candidate ${name} exited with ${code}`))));
  });
}

const fmt = (ns: number): string => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${Math.round(ns)} ns`);

async function main(): Promise<void> {
  const candidateArg = process.argv.indexOf('--candidate');
  if (candidateArg >= 0) {
    const rows = await runCandidate(process.argv[candidateArg + 1]);
    process.send!(rows);
    return;
  }
  const rows: SrtpBenchRow[] = [];
  for (const c of CANDIDATES) {
    process.stdout.write(`srtp: ${c.name} ... `);
    const r = await runChild(c.name);
    rows.push(...r);
    console.log(r.map((x) => `${x.payloadBytes} B: ${fmt(x.protectNs)} / ${fmt(x.unprotectNs)}`).join(', '));
  }
  const header = '| candidate | payload | protect | unprotect | GCs per 1M packets | vs werift (protect+unprotect) |';
  const lines = [header, '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    const w = rows.find((x) => x.candidate === 'werift' && x.payloadBytes === r.payloadBytes)!;
    const speedup = (w.protectNs + w.unprotectNs) / (r.protectNs + r.unprotectNs);
    lines.push(`| ${r.candidate} | ${r.payloadBytes} B | ${fmt(r.protectNs)} | ${fmt(r.unprotectNs)} | ${Math.round(r.gcsPer1M)} | ${speedup.toFixed(1)}× |`);
  }
  const table = lines.join('\n');
  console.log(`\n${table}\n`);
  const out = {
    date: new Date().toISOString(),
    quick,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    note: 'ns per packet, RTP header 20 bytes (12 + one-byte extension) + payload, SRTP_AES128_CM_HMAC_SHA1_80; unprotect includes the replay check and ROC estimation',
    candidates: CANDIDATES,
    rows: rows.map((r) => ({ ...r, protectNs: Math.round(r.protectNs), unprotectNs: Math.round(r.unprotectNs), gcsPer1M: Math.round(r.gcsPer1M) })),
  };
  const dir = quick ? join(here, '..', 'results', 'quick') : join(here, '..', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'srtp.json'), JSON.stringify(out, null, 2) + '\n');
  writeFileSync(join(dir, 'srtp.md'), `# SRTP primitives (${quick ? 'quick' : 'full'} run, ${out.date})\n\n${out.cpu}, Node ${out.node}\n\n${table}\n\n${CANDIDATES.map((c) => `- **${c.name}**: ${c.description}`).join('\n')}\n`);
  console.log(`wrote ${join(dir, 'srtp.json')}`);
}

await main();
