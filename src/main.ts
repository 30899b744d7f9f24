import './js-only.ts';
import { resolve } from 'node:path';
import { resolveAuthKeys } from './auth/keys.ts';
import { mintToken } from './auth/tokens.ts';
import { loadConfig, recordingDirOf, type VoxConfig } from './config.ts';
import { isVoxError } from './errors.ts';
import { logger } from './log.ts';
import { signallingMetrics } from './metrics/registry.ts';
import { adminRoutes } from './admin/routes.ts';
import { recordingRoutes } from './recording/routes.ts';
import type { PooledMediaPlane } from './rooms/media-plane.ts';
import { reportWorkerDeaths } from './signalling/observer.ts';
import { startServer } from './signalling/server.ts';
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
    return createMediaPlane(mediaPlaneOptionsFromConfig({ ...config.media, mode, recordingDir: recordingDirOf(config), roomLabels: config.metrics.roomLabels }));
  } catch (err) {
    log.error({ err }, 'media plane failed to start: running presence-only signalling');
    return undefined;
  }
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
  const server = await startServer(config, { keys, mediaPlane, routes: [webRoutes(config, keys), recordingRoutes(config, keys), adminRoutes(keys)] });
  if (mediaPlane) reportWorkerDeaths(server.observer, mediaPlane.pool);
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
    const timer = setTimeout(() => process.exit(1), 5000);
    timer.unref();
    void server
      .close()
      .then(() => mediaPlane?.close())
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
