import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';
import { resolveAuthKeys, type AuthKeys } from '../auth/keys.ts';
import { verifyToken } from '../auth/tokens.ts';
import { isLoopback, type VoxConfig } from '../config.ts';
import { startTurnService } from '../turn/service.ts';
import { isVoxError, VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { collectProcessMetrics, metricsContentType, metricsText, signallingMetrics } from '../metrics/registry.ts';
import { countServerEvents } from '../metrics/server-events.ts';
import { SUBPROTOCOL } from '../protocol/messages.ts';
import type { Presence } from '../rooms/registry.ts';
import type { JoinRouter } from './join-router.ts';
import { turnCredentials } from '../turn/credentials.ts';
import { createSignallingCore, type SignallingCore } from './core.ts';
import { logServerEvents } from './event-log.ts';
import { bearer, sendJson } from './http.ts';
import type { MediaPlane } from './media-plane.ts';
import type { ServerObserver } from './observer.ts';
import { announcedIpProblem, reachableUrls, resolveTls, type TlsFiles } from './tls.ts';
import { connectionOf, connOf, setCallbackConnection, UwsConnection, type SocketData } from './uws-connection.ts';
import { listenExclusive, uws, uwsBinaryName, uwsNative } from './uws.ts';

const log = logger('server');

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface StartServerOptions {
  mediaPlane?: MediaPlane;
  /** Default: resolveAuthKeys(config) (configured secret/key, or the dev secret in dataDir). */
  keys?: AuthKeys;
  /**
   * Extra HTTP routes, registered before the 404 catch-all: the demo page (src/web/routes.ts),
   * the recordings (src/recording/routes.ts). Each is a function that adds its routes to the app.
   */
  routes?: RouteInstaller | readonly RouteInstaller[];
  /** Who is in which room; default the in-memory RoomRegistry. */
  presence?: Presence;
  /** Cluster join routing (src/cluster/node.ts); without it every join is served here. */
  router?: JoinRouter;
  /** Extra fields for /healthz (the cluster's node list). */
  health?: () => Record<string, unknown>;
  /** Server events (room, participant, recording, worker, media reconnect); default a new one, at `server.observer`. */
  observer?: ServerObserver;
}

/** Adds routes to the app; `server.core` is the signalling core (the admin API acts through `core.admin`). */
export type RouteInstaller = (app: TemplatedApp, server: { readonly core: SignallingCore }) => void;

export interface VoxServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** http(s)://host:port, reachable from this host (loopback when bound to every interface). */
  readonly url: string;
  /** URLs people can open, the one to print first (server.publicUrl, else the interface addresses). */
  readonly urls: readonly string[];
  /** The TLS certificate in use, or undefined for plain http. */
  readonly tls: TlsFiles | undefined;
  readonly core: SignallingCore;
  /** Typed server events for tests, metrics and webhooks (observer.ts). */
  readonly observer: ServerObserver;
  readonly app: TemplatedApp;
  readonly keys: AuthKeys;
  readonly native: boolean;
  /** Stop listening, close every connection with 1001. Does not close the media plane. */
  close(): Promise<void>;
}

function guarded(where: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    signallingMetrics.internalErrors.inc();
    log.error({ err, where }, 'uncaught error in a uWS handler');
  }
}

/**
 * Start the uWS app: /ws (signalling), /healthz, /metrics, /turn, plus `options.routes`; over HTTPS
 * when `server.tls` asks for it. The port is taken exclusively: a second server on a port in use
 * fails with PORT_IN_USE instead of sharing it (uWS listens with SO_REUSEPORT otherwise, and the
 * kernel would split connections between the two).
 */
export async function startServer(config: VoxConfig, options: StartServerOptions = {}): Promise<VoxServer> {
  const tls = await resolveTls(config);
  const keys = options.keys ?? resolveAuthKeys(config);
  // turn.secret, the dev secret, or a secret store's with its refresh loop and statistics reader (src/turn/service.ts); closed with the server.
  const turn = await startTurnService(config);
  const turnSecret = turn.secret;
  if (!uwsNative) {
    log.error(
      { binary: uwsBinaryName },
      'uWebSockets.js NATIVE BINARY NOT LOADED: running its slow JS fallback. Use Node 20 (ABI 115) on linux/darwin/win32 x64/arm64.',
    );
  }
  if (config.metrics.enabled && config.metrics.defaultMetrics) collectProcessMetrics();

  const problem = announcedIpProblem(config);
  if (problem !== undefined) log.warn(problem);
  if (config.metrics.enabled && config.metrics.token === undefined && !isLoopback(config.server.host)) {
    log.warn(
      { host: config.server.host },
      '/metrics IS PUBLIC on a non-loopback address: anyone who reaches this port can read room and load figures. Set metrics.token (VOXLINK_METRICS_TOKEN), metrics.enabled false, or keep the port behind a firewall.',
    );
  }
  const app = tls === undefined ? uws.App() : uws.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile, passphrase: tls.passphrase });
  const core = createSignallingCore(config, {
    keys,
    mediaPlane: options.mediaPlane,
    presence: options.presence,
    router: options.router,
    observer: options.observer,
    turnSecret,
    serverInfo: { version: VERSION, native: uwsNative },
    // No uWS pub/sub for ephemeral room events: a publish would overtake frames still queued for
    // this turn (see UwsConnection), and a topic subscription costs memory per idle socket. They
    // go through the per-connection queues like everything else, coalesced.
  });
  if (config.metrics.enabled) countServerEvents(core.observer);
  logServerEvents(core.observer);
  const { limits, signalling } = config;

  // Open WebSockets per remote address (limits.maxConnectionsPerIp), counted from upgrade to close.
  const perIp = new Map<string, number>();
  const ipCap = limits.maxConnectionsPerIp;

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    let ip: string | undefined;
    if (ipCap > 0) {
      ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      const open = perIp.get(ip) ?? 0;
      if (open >= ipCap) {
        signallingMetrics.upgradesRejected.inc({ reason: 'per_ip' });
        res.writeStatus('429 Too Many Requests').writeHeader('content-type', 'text/plain').end(`more than ${ipCap} connections from this address\n`);
        return;
      }
      // Counted at the upgrade, not at open: a burst of upgrades must not all pass the check.
      perIp.set(ip, open + 1);
    }
    const protocols = req.getHeader('sec-websocket-protocol');
    const key = req.getHeader('sec-websocket-key');
    const extensions = req.getHeader('sec-websocket-extensions');
    const offered = protocols.split(',').map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) {
      releaseIp(ip);
      res.writeStatus('400 Bad Request').writeHeader('content-type', 'text/plain').end(`WebSocket subprotocol ${SUBPROTOCOL} required\n`);
      return;
    }
    res.upgrade<SocketData>({ conn: undefined, ip }, key, SUBPROTOCOL, extensions, context);
  }

  function releaseIp(ip: string | undefined): void {
    if (ip === undefined) return;
    const open = (perIp.get(ip) ?? 1) - 1;
    if (open <= 0) perIp.delete(ip);
    else perIp.set(ip, open);
  }

  app.ws<SocketData>('/ws', {
    // uWS cuts the TCP connection without a close frame (client sees 1006) above its own limit, so
    // its limit is the larger frame ceiling and the core answers everything between maxPayloadBytes
    // and the ceiling with a proper 1009 (docs/security.md "Limits").
    maxPayloadLength: Math.max(limits.frameCeilingBytes, limits.maxPayloadBytes * 2),
    // The core closes a slow reader (4002) as soon as its buffer passes maxBackpressureBytes; uWS's
    // own limit is a safety net above it (uWS drops/closes silently, without a reason).
    maxBackpressure: limits.maxBackpressureBytes * 2 + limits.maxPayloadBytes,
    closeOnBackpressureLimit: 1,
    // Heartbeats are the protocol's liveness check; uWS's idle timeout only reaps dead TCP.
    idleTimeout: Math.min(960, Math.max(16, Math.ceil(signalling.heartbeatTimeoutMs / 1000) * 2)),
    sendPingsAutomatically: true,
    compression: uws.DISABLED,
    // The JS fallback cannot run an upgrade handler ("not implemented"); there the subprotocol is
    // not enforced (its `ws` server echoes the first one offered).
    upgrade: uwsNative ? upgrade : undefined,
    // The core catches its own errors; these guards keep a bug out of uWS's native frames, where
    // a throw would take the process down.
    open: (ws) => {
      guarded('open', () => {
        const conn = new UwsConnection(ws);
        if (uwsNative) ws.getUserData().conn = conn;
        else connectionOf.set(ws, conn);
        setCallbackConnection(conn);
        try {
          core.onOpen(conn);
        } finally {
          setCallbackConnection(null);
        }
      });
    },
    message: (ws, message, isBinary) => {
      guarded('message', () => {
        const conn = connOf(ws);
        if (!conn) return;
        setCallbackConnection(conn);
        try {
          core.onMessage(conn, new Uint8Array(message), isBinary);
        } finally {
          setCallbackConnection(null);
        }
      });
    },
    close: (ws, code) => {
      guarded('close', () => {
        if (uwsNative) {
          const data = ws.getUserData();
          releaseIp(data.ip);
          data.ip = undefined;
        }
        const conn = connOf(ws);
        if (!conn) return;
        conn.markClosed();
        if (uwsNative) ws.getUserData().conn = undefined;
        else connectionOf.delete(ws);
        core.onClose(conn, code);
      });
    },
  });

  app.get('/healthz', (res) => {
    const media = options.mediaPlane?.stats();
    const stats = core.stats();
    sendJson(res, '200 OK', {
      status: 'ok',
      version: VERSION,
      uws: { native: uwsNative, binary: uwsBinaryName },
      workers: media?.workers ?? 0,
      mediaRooms: media?.rooms ?? 0,
      ...stats,
      uptimeSec: Math.round(process.uptime()),
      ...options.health?.(),
    });
  });

  const metricsToken = config.metrics.token === undefined ? undefined : Buffer.from(config.metrics.token);
  app.get('/metrics', (res, req) => {
    if (!config.metrics.enabled) {
      sendJson(res, '404 Not Found', { error: 'METRICS_DISABLED' });
      return;
    }
    if (metricsToken !== undefined) {
      const given = Buffer.from(bearer(req) ?? '');
      // Constant-time compare: the token is a shared secret.
      if (given.length !== metricsToken.length || !timingSafeEqual(given, metricsToken)) {
        sendJson(res, '401 Unauthorized', { error: 'AUTH_FAILED', message: 'Authorization: Bearer <metrics.token> required' });
        return;
      }
    }
    const aborted = { value: false };
    res.onAborted(() => {
      aborted.value = true;
    });
    metricsText().then(
      (text) => {
        if (aborted.value) return;
        res.cork(() => {
          res.writeStatus('200 OK').writeHeader('content-type', metricsContentType).end(text);
        });
      },
      (err: unknown) => {
        log.error({ err }, 'metrics collection failed');
        sendJson(res, '500 Internal Server Error', { error: 'INTERNAL' }, aborted);
      },
    );
  });

  app.get('/turn', (res, req) => {
    const token = bearer(req);
    const aborted = { value: false };
    res.onAborted(() => {
      aborted.value = true;
    });
    if (config.turn.urls.length === 0 || turnSecret === undefined) {
      sendJson(res, '404 Not Found', { error: 'TURN_DISABLED', message: 'no TURN server configured (turn.urls, turn.secret)' }, aborted);
      return;
    }
    if (!token) {
      sendJson(res, '401 Unauthorized', { error: 'AUTH_FAILED', message: 'Authorization: Bearer <token> required' }, aborted);
      return;
    }
    verifyToken(token, keys.verify).then(
      (identity) => {
        const creds = turnCredentials(turnSecret, identity.userId, config.turn.ttlSec, config.turn.urls);
        // Field names of draft-uberti-behave-turn-rest-00 §2.2 (password, uris) plus an iceServers list.
        sendJson(
          res,
          '200 OK',
          {
            username: creds.username,
            password: creds.credential,
            ttl: creds.ttl,
            uris: creds.urls,
            iceServers: [
              ...(config.turn.stunUrls.length > 0 ? [{ urls: config.turn.stunUrls }] : []),
              { urls: creds.urls, username: creds.username, credential: creds.credential },
            ],
          },
          aborted,
        );
      },
      (err: unknown) => {
        signallingMetrics.authFailures.inc({ reason: 'turn' });
        sendJson(res, '401 Unauthorized', { error: 'AUTH_FAILED', message: isVoxError(err) ? err.message : 'token rejected' }, aborted);
      },
    );
  });
  const routes = options.routes;
  if (typeof routes === 'function') routes(app, { core });
  else for (const install of routes ?? []) install(app, { core });

  app.any('/*', (res) => {
    sendJson(res, '404 Not Found', { error: 'NOT_FOUND' });
  });

  const listenSocket = await listenExclusive(app, config.server.host, config.server.port);
  if (!listenSocket) {
    core.close();
    await turn.close();
    throw await listenError(config.server.host, config.server.port);
  }
  const port = uws.us_socket_local_port(listenSocket);
  const localHost = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
  const scheme = tls === undefined ? 'http' : 'https';
  let closed = false;
  const server: VoxServer = {
    port,
    url: `${scheme}://${localHost.includes(':') ? `[${localHost}]` : localHost}:${port}`,
    urls: reachableUrls(config, port, tls !== undefined),
    tls,
    core,
    observer: core.observer,
    app,
    keys,
    native: uwsNative,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      uws.us_listen_socket_close(listenSocket);
      core.close();
      await turn.close();
    },
  };
  log.info({ port, native: uwsNative, tls: tls === undefined ? false : tls.selfSigned ? 'self-signed' : 'configured' }, 'listening');
  return server;
}

/**
 * uWS says only "no" when a listen fails; binding the same address with Node's net module tells
 * why (EADDRINUSE, EACCES, EADDRNOTAVAIL), so the message can say what to do.
 */
async function listenError(host: string, port: number): Promise<VoxError> {
  const code = await new Promise<string | undefined>((resolveCode) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolveCode(err.code));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolveCode(undefined)));
  });
  const where = `${host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new VoxError('PORT_IN_USE', `port ${port} is already in use on ${host} (another VoxLink or another program): stop it, or choose another port with server.port / VOXLINK_PORT`);
    case 'EACCES':
      return new VoxError('PORT_IN_USE', `not allowed to listen on port ${port} (ports below 1024 need privileges): choose another port with server.port / VOXLINK_PORT`);
    case 'EADDRNOTAVAIL':
      return new VoxError('PORT_IN_USE', `cannot listen on ${where}: ${host} is not an address of this host (server.host / VOXLINK_HOST)`);
    default:
      return new VoxError('PORT_IN_USE', `cannot listen on ${where}${code ? ` (${code})` : ''}`);
  }
}
