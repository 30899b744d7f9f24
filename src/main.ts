import './js-only.ts';
import { basename, resolve } from 'node:path';
import { resolveAuthKeys } from './auth/keys.ts';
import { mintToken } from './auth/tokens.ts';
import { loadConfig, recordingDirOf, recordingSegmentMsOf, type VoxConfig } from './config.ts';
import { isVoxError } from './errors.ts';
import { logger } from './log.ts';
import { signallingMetrics } from './metrics/registry.ts';
import { adminRoutes } from './admin/routes.ts';
import { recordingRoutes } from './recording/routes.ts';
import { createRecordingStorage } from './recording/storage.ts';
import type { RecordingUploader } from './recording/uploader.ts';
import type { PooledMediaPlane } from './rooms/media-plane.ts';
import { reportWorkerDeaths } from './signalling/observer.ts';
import { startServer, VERSION, type VoxServer } from './signalling/server.ts';
import { ClusterNode } from './cluster/node.ts';
import { clusterUrlOf } from './cluster/url.ts';
import { Transcriber } from './transcription/index.ts';
import { WebhookDispatcher } from './webhooks/index.ts';
import { webRoutes } from './web/routes.ts';

/**
 * `npm start`: load config (defaults ← VOXLINK_CONFIG file ← VOXLINK_* env), start the media plane
 * (unless media.enabled is false) and the uWS server; in dev mode print a demo URL with a token.
 */
const log = logger('main');

async function startMediaPlane(config: VoxConfig): Promise<PooledMediaPlane | undefined> {
  if (!config.media.enabled) {
    log.info('media plane disabled (media.enabled=false): presence-only signalling');
    return undefined;
  }
  try {
    const { createMediaPlane, mediaPlaneOptionsFromConfig } = await import('./rooms/media-plane.ts');
    // p2p and auto rooms are signalling's (signalling/p2p.ts); their server media, when any, is sfu.
    const defaultMode = config.signalling.defaultRoomMode;
    const mode = defaultMode === 'p2p' || defaultMode === 'auto' ? 'sfu' : defaultMode;
    const plane = createMediaPlane(mediaPlaneOptionsFromConfig({ ...config.media, mode, recordingDir: recordingDirOf(config), recordingSegmentMs: recordingSegmentMsOf(config), roomLabels: config.metrics.roomLabels }));
    // Listen only once the worker threads are up: after a restart every client re-joins at once,
    // and joins sent to threads still starting time out (docs/security.md "Restarts").
    const startedAt = Date.now();
    await plane.pool.ready(60_000).catch((err: unknown) => log.warn({ err }, 'media workers not ready after 60 s; listening anyway'));
    log.info({ ms: Date.now() - startedAt, workers: plane.pool.workerCount }, 'media workers ready');
    return plane;
  } catch (err) {
    log.error({ err }, 'media plane failed to start: running presence-only signalling');
    return undefined;
  }
}

/** Transcription of stopped recordings when `transcription.enabled` (docs/recording.md "Transcription"). */
function startTranscriber(config: VoxConfig, server: VoxServer): Transcriber | undefined {
  const recordingDir = recordingDirOf(config);
  const t = config.transcription;
  if (!t.enabled || recordingDir === undefined) return undefined;
  const engine = t.engine === 'command' ? { engine: 'command' as const, argv: t.command ?? [] } : { engine: 'pocketsphinx' as const, ...t.pocketsphinx };
  // With s3 storage, main.ts uploads the transcript files through transcriber.onTranscript (uploadTranscripts).
  return new Transcriber({ recordingDir, engine, workers: t.workers, timeoutSec: t.timeoutSec, includeMix: t.includeMix }).attach(server.observer, (e) =>
    server.core.admin.announceTranscript(e.roomId, e.recordingId, { tracks: e.tracks.length, words: e.tracks.reduce((n, x) => n + x.words, 0), failed: e.failed }),
  );
}

/**
 * With transcription on and s3 storage: a stopped recording's local tracks are held (`retain`)
 * until its transcript is written (or the job's time ran out), and the transcript files are
 * uploaded beside the recording, so every node lists and serves them (docs/recording.md).
 */
function uploadTranscripts(transcriber: Transcriber, uploader: RecordingUploader, server: VoxServer, holdMs: number): void {
  const holds = new Map<string, () => void>();
  const release = (id: string): void => {
    holds.get(id)?.();
    holds.delete(id);
  };
  server.observer.on('recording_stopped', (e) => {
    if (holds.has(e.recordingId)) return;
    const free = uploader.retain(e.recordingId);
    const timer = setTimeout(() => release(e.recordingId), holdMs);
    timer.unref();
    holds.set(e.recordingId, () => {
      clearTimeout(timer);
      free();
    });
  });
  transcriber.onTranscript(async (written) => {
    try {
      for (const path of written.paths) await uploader.uploadFile(written.recordingId, basename(path));
    } catch (err) {
      // The uploader's scans retry an extra file that is still on disk.
      log.warn({ err, recordingId: written.recordingId }, 'transcript upload failed; retried by the next scan');
    } finally {
      release(written.recordingId);
    }
  });
}

/** The CLI flags that make `voxlink token` find this server's secret from any directory. */
function cliFlags(config: VoxConfig): string {
  if (process.env.VOXLINK_CONFIG) return ` --config ${resolve(process.env.VOXLINK_CONFIG)}${process.env.VOXLINK_DATA_DIR ? ` --data-dir ${config.dataDir}` : ''}`;
  return config.dataDir === resolve('.voxlink') ? '' : ` --data-dir ${config.dataDir}`;
}

async function main(): Promise<void> {
  let config: VoxConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (isVoxError(err, 'CONFIG_INVALID')) {
      process.stderr.write(`voxlink: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const keys = resolveAuthKeys(config);
  const mediaPlane = await startMediaPlane(config);
  // Several nodes on one Redis (docs/cluster.md); without cluster.redisUrl, one node as before.
  const cluster = config.cluster.redisUrl === undefined ? undefined : ClusterNode.create(config, { version: VERSION, hs256Secret: keys.hs256Secret });
  const storage = createRecordingStorage(config);
  const server = await startServer(config, {
    keys,
    mediaPlane,
    routes: [webRoutes(config, keys), recordingRoutes(config, keys, storage?.store), adminRoutes(keys, cluster)],
    ...(cluster ? { presence: cluster.presence, router: cluster, health: () => cluster.health() } : {}),
  });
  cluster?.start(clusterUrlOf(config, server), server.core);
  if (mediaPlane) reportWorkerDeaths(server.observer, mediaPlane.pool);
  // s3: uploads what the recordings folder holds, a previous run's leftovers first.
  storage?.start(server.observer);
  const { urls, key, ...webhookOptions } = config.webhooks;
  const webhooks = urls.length > 0 && key !== undefined ? new WebhookDispatcher({ urls, key, ...webhookOptions }).attach(server.observer) : undefined;
  const transcriber = startTranscriber(config, server);
  if (transcriber && storage?.uploader) uploadTranscripts(transcriber, storage.uploader, server, (config.transcription.timeoutSec + 60) * 1000);
  log.info(
    { url: server.urls[0], urls: server.urls, native: server.native, auth: keys.source, devMode: config.auth.devMode, media: mediaPlane !== undefined },
    'VoxLink ready',
  );
  if (server.tls?.selfSigned) {
    log.warn(
      { certFile: server.tls.certFile, fingerprint: server.tls.fingerprint },
      'HTTPS with a self-signed certificate: browsers warn once and then connect (accept it on the page). Use server.tls.certFile/keyFile or a reverse proxy for a trusted one.',
    );
  }

  if (config.auth.devMode && keys.hs256Secret !== undefined) {
    log.warn(
      { secretFile: keys.devSecretPath },
      'DEV MODE: no auth.hs256Secret/auth.eddsaPublicKey configured, using a generated dev secret from the data dir. Configure a secret for production.',
    );
    const token = await mintToken({
      key: keys.hs256Secret,
      userId: `dev-${Math.random().toString(36).slice(2, 8)}`,
      name: 'Dev User',
      rooms: [{ room: '*', grants: ['join', 'publish', 'subscribe', 'record', 'admin'] }],
      ttl: config.auth.devTokenTtlSec,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
    });
    // Printed on stdout for a human, never through the structured logger (logs carry no tokens).
    const [base, ...others] = server.urls;
    const also = others.length > 0 ? `  Also reachable at: ${others.join(', ')}\n` : '';
    const selfSigned = server.tls?.selfSigned ? `  Self-signed certificate (SHA-256 ${server.tls.fingerprint}): accept the browser's warning once.\n` : '';
    process.stdout.write(
      `\n  VoxLink dev server: ${base}\n${also}${selfSigned}  Demo (open in two tabs): ${base}/?room=demo\n  With a ready token: ${base}/?room=demo&token=${token}\n  More tokens: npx voxlink token${cliFlags(config)} --room demo --user alice\n\n`,
    );
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => process.exit(1), 5000 + (cluster ? config.cluster.drainTimeoutMs : 0));
    timer.unref();
    // A cluster node first hands its rooms to other nodes and lets its clients move (drain).
    void (cluster ? cluster.drain() : Promise.resolve())
      .then(() => server.close())
      .then(() => mediaPlane?.close())
      .then(() => cluster?.close())
      .then(() => storage?.close())
      .then(() => transcriber?.close())
      // The rooms' last events (room_finished) get what is left of the shutdown budget.
      .then(() => webhooks?.close(3000))
      .catch((err: unknown) => log.error({ err }, 'shutdown failed'))
      .finally(() => process.exit(0));
  };
  // A promise a handler forgot to catch must not take every call down with it: log and count.
  process.on('unhandledRejection', (reason) => {
    signallingMetrics.internalErrors.inc();
    log.error({ err: reason }, 'unhandled promise rejection');
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  log.fatal({ err }, 'start failed');
  process.stderr.write(`voxlink: ${(err as Error).message}\n`);
  process.exit(1);
});
