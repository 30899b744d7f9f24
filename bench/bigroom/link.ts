/**
 * Spill link transports, measured against each other (docs/media.md "Rooms over several
 * workers"): a SharedArrayBuffer ring (src/media/spill-ring.ts) and a batched postMessage
 * (src/media/spill-batch.ts), each between two real worker threads. The producer thread writes
 * audio records (80 bytes, as SpillFabric.forward does) in bursts on a 5 ms timer, like packets
 * leaving a UDP read; the consumer thread takes them off and measures one-way latency (each
 * record carries its send time, `performance.timeOrigin + now()`, comparable across threads).
 * Figures per transport: the producer's CPU per record written (its loop time around write),
 * the consumer's event-loop busy time per record (ELU × window ÷ records), latency p50/p99, loss.
 * Run alone: `node --import tsx bench/bigroom/link.ts [--quick]`; bench/bigroom/index.ts calls it.
 */
import { isMainThread, MessageChannel, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { BatchReceiver, BatchSender } from '../../src/media/spill-batch.ts';
import { createSpillRing, RingReceiver, RingSender } from '../../src/media/spill-ring.ts';
import type { SpillSender } from '../../src/media/spill-wire.ts';

export interface LinkResult {
  transport: 'ring' | 'batch';
  pps: number;
  records: number;
  received: number;
  lossPct: number;
  producerNsPerRecord: number;
  consumerNsPerRecord: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

interface Setup {
  role: 'producer' | 'consumer';
  transport: 'ring' | 'batch';
  sab?: SharedArrayBuffer;
  port?: MessagePort;
  pps: number;
  seconds: number;
}

const RECORD = 80;
const TICK_MS = 5;

function producer(s: Setup): void {
  const sender: SpillSender = s.transport === 'ring' ? new RingSender(s.sab!) : new BatchSender(s.port!);
  const rec = Buffer.alloc(RECORD);
  rec.writeUInt16LE(RECORD, 0);
  rec[2] = 1;
  const perTick = Math.max(1, Math.round((s.pps * TICK_MS) / 1000));
  let written = 0;
  let busyNs = 0;
  const end = performance.now() + s.seconds * 1000;
  const timer = setInterval(() => {
    const t0 = process.hrtime();
    for (let i = 0; i < perTick; i++) {
      rec.writeDoubleLE(performance.timeOrigin + performance.now(), 24);
      rec.writeUInt32LE(written, 32);
      sender.write(rec, RECORD);
      written++;
    }
    const d = process.hrtime(t0);
    busyNs += d[0] * 1e9 + d[1];
    if (performance.now() >= end) {
      clearInterval(timer);
      setTimeout(() => {
        parentPort!.postMessage({ written, busyNs, dropped: sender.dropped });
        sender.close();
      }, 200);
    }
  }, TICK_MS);
}

function consumer(s: Setup): void {
  const lat: number[] = [];
  let received = 0;
  const onRecord = (buf: Buffer, at: number): void => {
    received++;
    lat.push(performance.timeOrigin + performance.now() - buf.readDoubleLE(at + 24));
  };
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const receiver = s.transport === 'ring' ? new RingReceiver(s.sab!, onRecord) : new BatchReceiver(s.port!, onRecord);
  parentPort!.on('message', () => {
    const elu = performance.eventLoopUtilization(elu0);
    const wallMs = performance.now() - t0;
    receiver.close();
    lat.sort((a, b) => a - b);
    parentPort!.postMessage({
      received,
      busyMs: elu.utilization * wallMs,
      p50: lat[Math.floor(lat.length * 0.5)] ?? 0,
      p99: lat[Math.floor(lat.length * 0.99)] ?? 0,
    });
  });
}

function spawn(setup: Setup, transfer: MessagePort[]): Worker {
  // On Node 20 the parent's tsx hooks do not reach a Worker: register them in the thread first.
  return new Worker(new URL('./ts-entry.mjs', import.meta.url), { workerData: { ...setup, entry: import.meta.url }, transferList: transfer });
}

function once<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

/** One transport at `pps` records per second for `seconds`. */
export async function measureLink(transport: 'ring' | 'batch', pps: number, seconds: number): Promise<LinkResult> {
  let cSetup: Setup;
  let pSetup: Setup;
  let cTransfer: MessagePort[] = [];
  let pTransfer: MessagePort[] = [];
  if (transport === 'ring') {
    const sab = createSpillRing(256 * 1024);
    cSetup = { role: 'consumer', transport, sab, pps, seconds };
    pSetup = { role: 'producer', transport, sab, pps, seconds };
  } else {
    const { port1, port2 } = new MessageChannel();
    cSetup = { role: 'consumer', transport, port: port2, pps, seconds };
    pSetup = { role: 'producer', transport, port: port1, pps, seconds };
    cTransfer = [port2];
    pTransfer = [port1];
  }
  const c = spawn(cSetup, cTransfer);
  await new Promise((r) => setTimeout(r, 500));
  const p = spawn(pSetup, pTransfer);
  const prod = await once<{ written: number; busyNs: number; dropped: number }>(p);
  c.postMessage('stop');
  const cons = await once<{ received: number; busyMs: number; p50: number; p99: number }>(c);
  await Promise.all([p.terminate(), c.terminate()]);
  return {
    transport,
    pps,
    records: prod.written,
    received: cons.received,
    lossPct: prod.written > 0 ? ((prod.written - cons.received) / prod.written) * 100 : 0,
    producerNsPerRecord: prod.busyNs / Math.max(prod.written, 1),
    consumerNsPerRecord: (cons.busyMs * 1e6) / Math.max(cons.received, 1),
    latencyP50Ms: cons.p50,
    latencyP99Ms: cons.p99,
  };
}

if (!isMainThread) {
  const s = workerData as Setup;
  if (s.role === 'producer') producer(s);
  else consumer(s);
} else if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const quick = process.argv.includes('--quick');
  const seconds = quick ? 3 : 10;
  for (const pps of quick ? [2000, 20000] : [2000, 20000, 60000]) {
    for (const t of ['ring', 'batch'] as const) {
      const r = await measureLink(t, pps, seconds);
      console.log(
        `${t.padEnd(5)} ${String(pps).padStart(6)} rec/s: producer ${r.producerNsPerRecord.toFixed(0)} ns/rec, consumer ${r.consumerNsPerRecord.toFixed(0)} ns/rec, ` +
          `latency p50 ${r.latencyP50Ms.toFixed(3)} p99 ${r.latencyP99Ms.toFixed(3)} ms, loss ${r.lossPct.toFixed(2)} %`,
      );
    }
  }
}
