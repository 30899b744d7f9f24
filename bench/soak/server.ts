/**
 * The soak's server process: VoxLink's signalling server as main.ts starts it, in the default
 * configuration except where the soak needs otherwise (every client comes from 127.0.0.1, so no
 * per-IP cap; on the signalling server the fuzzer's frames must reach the decoder, so no rate limit). Samples its memory
 * every second over IPC; on `measure` runs the GC first (for bytes per idle connection).
 *
 * `server.ts media <rtcMinPort> <rtcMaxPort>`: with the media plane (2 worker threads, recordings
 * in its data dir) for the tone rooms; on `kill-worker` the thread hosting the target room
 * crashes (an uncaught error, RoomRequests `crash`).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveAuthKeys } from '../../src/auth/index.ts';
import { parseConfig, recordingDirOf, recordingSegmentMsOf } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import { reportWorkerDeaths } from '../../src/signalling/observer.ts';
import { startServer } from '../../src/signalling/index.ts';
import { BENCH_SECRET } from '../signalling/secret.ts';
import type { ParentToSoakServer, SoakServerToParent } from './ipc.ts';

const [mode, minPort, maxPort] = process.argv.slice(2);
const media = mode === 'media';
const config = parseConfig({
  server: { host: '127.0.0.1', port: 0 },
  dataDir: mkdtempSync(join(tmpdir(), 'voxlink-soak-')),
  auth: { hs256Secret: BENCH_SECRET },
  // The media server keeps the default rate limit: its fuzzers are paced under it, as real
  // clients would have to be (every join there costs a werift peer on a worker).
  limits: media ? { maxConnectionsPerIp: 0 } : { maxConnectionsPerIp: 0, messagesPerSecond: 1e6, messageBurst: 1e6 },
  metrics: { defaultMetrics: false },
  media: media ? { enabled: true, workers: 2, announcedIp: '127.0.0.1', listenIp: '127.0.0.1', rtcMinPort: Number(minPort), rtcMaxPort: Number(maxPort) } : { enabled: false },
});
let mediaPlane: PooledMediaPlane | undefined;
if (media) {
  mediaPlane = createMediaPlane(mediaPlaneOptionsFromConfig({ ...config.media, mode: 'sfu', recordingDir: recordingDirOf(config), recordingSegmentMs: recordingSegmentMsOf(config) }));
  await mediaPlane.pool.ready();
}
const server = await startServer(config, { keys: resolveAuthKeys(config), mediaPlane });
if (mediaPlane) reportWorkerDeaths(server.observer, mediaPlane.pool);
const send = (m: SoakServerToParent) => process.send!(m);
const started = Date.now();
setInterval(() => {
  const mem = process.memoryUsage();
  const stats = server.core.stats();
  send({ type: 'sample', sample: { t: Date.now() - started, rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, connections: stats.connections, sessions: stats.sessions } });
}, 1000).unref();
process.on('message', async (m: ParentToSoakServer) => {
  if (m.type === 'kill-worker') {
    const threadId = mediaPlane?.workerOf(m.target);
    const thread = mediaPlane?.pool.threads.find((t) => t.threadId === threadId);
    const rooms = m.rooms.filter((r) => mediaPlane?.workerOf(r) === threadId);
    const at = Date.now();
    // A crash of the thread, as a bug in it would be (an uncaught error; the process runs with
    // VOXLINK_CHAOS=1), not Worker#terminate: that is the death a thread dies in production.
    if (thread) await mediaPlane!.crashWorkerOf(m.target);
    send({ type: 'worker-killed', threadId: thread ? threadId! : null, at, rooms: thread ? rooms : [] });
    return;
  }
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
  void server
    .close()
    .then(() => mediaPlane?.close())
    .then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'listening', port: server.port });
