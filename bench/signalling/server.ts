/**
 * One benchmark server in its own process: `server.ts <uws|ws|socketio>`. Reports its port over
 * IPC, and on `measure` runs the GC and reports RSS (for bytes per idle connection).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config.ts';
import { resolveAuthKeys } from '../../src/auth/index.ts';
import { startServer } from '../../src/signalling/index.ts';
import { BENCH_SECRET } from './secret.ts';
import type { ParentToServer, ServerKind, ServerToParent } from './ipc.ts';

const kind = process.argv[2] as ServerKind;
const config = parseConfig({
  server: { host: '127.0.0.1', port: 0 },
  dataDir: mkdtempSync(join(tmpdir(), 'voxlink-bench-')),
  auth: { hs256Secret: BENCH_SECRET },
  // Idle connections must outlive the measurement; throughput clients heartbeat every second anyway.
  signalling: { heartbeatIntervalMs: 15_000, heartbeatTimeoutMs: 600_000, helloTimeoutMs: 120_000 },
  // The production per-session rate limit (50 msg/s) would cap a closed-loop benchmark, not measure
  // the transport; lifted here and on no other server (Socket.IO has none).
  // Every load-generator connection comes from loopback: no per-IP cap.
  limits: { messagesPerSecond: 1e9, messageBurst: 1e9, maxBackpressureBytes: 64 * 1024 * 1024, maxConnectionsPerIp: 0 },
  metrics: { enabled: false, defaultMetrics: false },
});
const keys = resolveAuthKeys(config);

let port: number;
if (kind === 'uws') {
  const server = await startServer(config, { keys });
  if (!server.native) console.error('bench: uWebSockets.js runs its JS FALLBACK, numbers are not representative');
  port = server.port;
} else if (kind === 'ws') {
  // Imported per kind: every module loaded here is start-up time on a busy host.
  const { startWsServer } = await import('./ws-adapter.ts');
  port = (await startWsServer(config, keys)).port;
} else if (kind === 'uws-batched') {
  const { startUwsBatchedServer } = await import('./uws-batched.ts');
  port = (await startUwsBatchedServer(config, keys)).port;
} else if (kind === 'socketio') {
  const { startSocketIoServer } = await import('./socketio-server.ts');
  port = (await startSocketIoServer(keys.verify, config.signalling.resumeGraceMs)).port;
} else {
  throw new Error(`unknown server kind ${kind}`);
}

const send = (m: ServerToParent) => process.send!(m);
process.on('message', async (m: ParentToServer) => {
  if (m.type === 'cpu') {
    const cpu = process.cpuUsage();
    send({ type: 'cpu', micros: cpu.user + cpu.system });
    return;
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  // Several rounds with turns of the event loop in between, so finalizers and weak callbacks run.
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  const mem = process.memoryUsage();
  // BENCH_MEM_DETAIL=1: the breakdown behind RSS (V8 heap committed vs used, external, ArrayBuffers).
  if (process.env.BENCH_MEM_DETAIL) {
    console.error(`bench ${kind} memory: ${JSON.stringify(mem)}`);
    // =snapshot: also a V8 heap snapshot per measurement (open in Chrome DevTools, Memory tab).
    if (process.env.BENCH_MEM_DETAIL === 'snapshot') console.error(`bench ${kind} heap snapshot: ${(await import('node:v8')).writeHeapSnapshot()}`);
  }
  send({ type: 'memory', rss: mem.rss, heapUsed: mem.heapUsed });
});
process.on('SIGTERM', () => process.exit(0));
// Never outlive the orchestrator.
process.on('disconnect', () => process.exit(0));
send({ type: 'listening', port });
