/**
 * The soak's server process: VoxLink's signalling server as main.ts starts it, in the default
 * configuration except where the soak needs otherwise (every client comes from 127.0.0.1, so no
 * per-IP cap; the fuzzer's frames must reach the decoder, so no rate limit). Samples its memory
 * every second over IPC; on `measure` runs the GC first (for bytes per idle connection).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveAuthKeys } from '../../src/auth/index.ts';
import { parseConfig } from '../../src/config.ts';
import { startServer } from '../../src/signalling/index.ts';
import { BENCH_SECRET } from '../signalling/secret.ts';
import type { ParentToSoakServer, SoakServerToParent } from './ipc.ts';

const config = parseConfig({
  server: { host: '127.0.0.1', port: 0 },
  dataDir: mkdtempSync(join(tmpdir(), 'voxlink-soak-')),
  auth: { hs256Secret: BENCH_SECRET },
  limits: { maxConnectionsPerIp: 0, messagesPerSecond: 1e6, messageBurst: 1e6 },
  metrics: { defaultMetrics: false },
});
const server = await startServer(config, { keys: resolveAuthKeys(config) });
const send = (m: SoakServerToParent) => process.send!(m);
const started = Date.now();
setInterval(() => {
  const mem = process.memoryUsage();
  const stats = server.core.stats();
  send({ type: 'sample', sample: { t: Date.now() - started, rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, connections: stats.connections, sessions: stats.sessions } });
}, 1000).unref();
process.on('message', async (m: ParentToSoakServer) => {
  if (m.type !== 'measure') return;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  const mem = process.memoryUsage();
  const stats = server.core.stats();
  send({ type: 'memory', rss: mem.rss, heapUsed: mem.heapUsed, connections: stats.connections, sessions: stats.sessions });
});
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'listening', port: server.port });
