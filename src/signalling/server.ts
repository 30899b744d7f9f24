import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { open } from 'node:fs/promises';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t, WebSocket } from 'uWebSockets.js';
import { resolveAuthKeys, type AuthKeys } from '../auth/keys.ts';
import { startTurn } from '../turn/service.ts';
import { grantsForRoom, verifyToken, type Identity } from '../auth/tokens.ts';
import { isLoopback, recordingDirOf, type VoxConfig } from '../config.ts';
import { isVoxError, VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { collectProcessMetrics, metricsContentType, metricsText, signallingMetrics } from '../metrics/registry.ts';
import { stampSeqInto } from '../protocol/codec.ts';
import { roomIdSchema, SUBPROTOCOL } from '../protocol/messages.ts';
import { findRecordingFile, listRecordings } from '../recording/store.ts';
import { turnCredentials } from '../turn/credentials.ts';
import { createSignallingCore, type SignallingCore } from './core.ts';
import type { MediaPlane } from './media-plane.ts';
import type { Connection } from './transport.ts';
import { announcedIpProblem, reachableUrls, resolveTls, type TlsFiles } from './tls.ts';
import { listenExclusive, uws, uwsBinaryName, uwsNative } from './uws.ts';

const log = logger('server');

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface StartServerOptions {
  mediaPlane?: MediaPlane;
  /** Default: resolveAuthKeys(config) (configured secret/key, or the dev secret in dataDir). */
  keys?: AuthKeys;
  /** Register extra HTTP routes (demo page, recordings) before the 404 catch-all. */
  routes?: (app: TemplatedApp) => void;
}

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
  readonly app: TemplatedApp;
  readonly keys: AuthKeys;
  readonly native: boolean;
  /** Stop listening, close every connection with 1001. Does not close the media plane. */
  close(): Promise<void>;
}

/**
 * uWS user data: the socket's Connection. The JS fallback has no user data (no upgrade handler),
 * so there `connectionOf` holds it instead.
 */
interface SocketData {
  conn?: UwsConnection;
}
const connectionOf = new WeakMap<WebSocket<SocketData>, UwsConnection>();

// ------------------------------------------------------------------------------------------------
// Outgoing frames are coalesced per connection and written once per event-loop turn inside
// `ws.cork()` (uWS user manual, "Corking"): uWS corks only the socket whose callback is running, so
// without this a room event costs one write syscall per recipient, and a recipient that gets k
// events in one turn costs k syscalls; corked, it costs one.
//
// Queued frames live in module-level parallel arrays as one linked list per connection (a
// connection holds two indices, no array of its own), so idle connections pay nothing for the queue.
// Sequenced frames are queued as (shared body, seq) and stamped at write time into one reused scratch
// buffer: uWS `send` copies the bytes into its cork or backpressure buffer before returning
// (WebSocket::send formats the frame into the socket's send buffer), so the scratch is free again
// for the next frame.

const queuedFrames: (Uint8Array | undefined)[] = [];
const queuedSeqs: number[] = [];
const queuedNext: number[] = [];
let queuedCount = 0;
/** Connections with queued frames, in the order they got their first one this turn. */
const dirty: UwsConnection[] = [];
let flushScheduled = false;

function flushAll(): void {
  // Writing can run uWS's close handler synchronously (closeOnBackpressureLimit), and the core may
  // queue more frames from there: those land at the end of `dirty` and go out in this same pass.
  // A throw must not stop the pass: `flushScheduled` would stay set and every later send stall.
  for (let i = 0; i < dirty.length; i++) {
    try {
      dirty[i].flush();
    } catch (err) {
      signallingMetrics.internalErrors.inc();
      log.error({ err }, 'flushing queued frames failed');
    }
  }
  dirty.length = 0;
  queuedFrames.fill(undefined, 0, queuedCount);
  queuedCount = 0;
  flushScheduled = false;
}

const INITIAL_SCRATCH = 4096;
let scratch = new Uint8Array(INITIAL_SCRATCH);
/** Views of `scratch` by length, made once: no view object per frame either. */
let scratchViews: (Uint8Array | undefined)[] = [];

/** `body` stamped with `seq`, in the scratch buffer; valid until the next call. */
function stamped(body: Uint8Array, seq: number): Uint8Array {
  const max = body.length + 13; // stampSeq adds at most a 5-byte map header + "seq" key + 9-byte uint64 − 1-byte header
  if (max > scratch.length) {
    let size = scratch.length;
    while (size < max) size *= 2;
    scratch = new Uint8Array(size);
    scratchViews = [];
  }
  const n = stampSeqInto(body, seq, scratch);
  return (scratchViews[n] ??= scratch.subarray(0, n));
}

/** The connection whose uWS callback is running (uWS has corked its socket for us). */
let inCallback: UwsConnection | null = null;
/** The connection being flushed, for `writeQueued` (one shared cork callback, no closure per flush). */
let flushing: UwsConnection | null = null;
function writeQueued(): void {
  (flushing as UwsConnection).writeQueued();
}

/** Connection (transport.ts) on a uWS WebSocket; ignores calls after the socket closed. */
class UwsConnection implements Connection {
  readonly #ws: WebSocket<SocketData>;
  #open = true;
  /** First and last queued frame (indices into queuedFrames), -1 when none. */
  #head = -1;
  #tail = -1;
  #queuedBytes = 0;
  /** uWS had no backpressure for this socket when last asked, and nothing was written since. */
  #drained = true;

  constructor(ws: WebSocket<SocketData>) {
    this.#ws = ws;
  }

  markClosed(): void {
    this.#open = false;
    this.#head = this.#tail = -1;
    this.#queuedBytes = 0;
  }

  send(bytes: Uint8Array): void {
    this.#enqueue(bytes, 0, bytes.length);
  }

  sendSequenced(body: Uint8Array, seq: number): void {
    this.#enqueue(body, seq, body.length + 9);
  }

  #enqueue(frame: Uint8Array, seq: number, size: number): void {
    if (!this.#open) return;
    if (inCallback === this && this.#head < 0) {
      // Inside this socket's own callback uWS has corked it already, and nothing queued earlier
      // would be overtaken: write now.
      this.#ws.send(seq === 0 ? frame : stamped(frame, seq), true, false);
      this.#drained = false;
      return;
    }
    const i = queuedCount++;
    queuedFrames[i] = frame;
    queuedSeqs[i] = seq;
    queuedNext[i] = -1;
    if (this.#head < 0) {
      this.#head = i;
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    } else {
      queuedNext[this.#tail] = i;
    }
    this.#tail = i;
    this.#queuedBytes += size;
  }

  /** Write every queued frame in one cork (one syscall when the socket takes it all). */
  flush(): void {
    if (!this.#open || this.#head < 0) return;
    flushing = this;
    try {
      this.#ws.cork(writeQueued);
    } finally {
      flushing = null;
      this.#head = this.#tail = -1;
      this.#queuedBytes = 0;
    }
    if (this.#open) this.#drained = this.#ws.getBufferedAmount() === 0;
  }

  writeQueued(): void {
    const ws = this.#ws;
    for (let i = this.#head; i >= 0 && this.#open; i = queuedNext[i]) {
      const seq = queuedSeqs[i];
      const frame = queuedFrames[i] as Uint8Array;
      ws.send(seq === 0 ? frame : stamped(frame, seq), true, false);
    }
  }

  close(code: number, reason: string): void {
    if (!this.#open) return;
    this.flush(); // what was queued goes out before the close frame
    if (!this.#open) return;
    this.#open = false;
    this.#ws.end(code, reason);
  }

  /** Queued bytes plus uWS's backpressure; uWS is asked only when it may have some. */
  bufferedAmount(): number {
    if (!this.#open) return 0;
    if (this.#drained) return this.#queuedBytes;
    const buffered = this.#ws.getBufferedAmount();
    this.#drained = buffered === 0;
    return buffered + this.#queuedBytes;
  }
}

function connOf(ws: WebSocket<SocketData>): UwsConnection | undefined {
  return uwsNative ? ws.getUserData().conn : connectionOf.get(ws);
}

function guarded(where: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    signallingMetrics.internalErrors.inc();
    log.error({ err, where }, 'uncaught error in a uWS handler');
  }
}

function sendJson(res: HttpResponse, status: string, body: unknown, aborted?: { value: boolean }): void {
  if (aborted?.value) return;
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(body));
  });
}

/**
 * Sends a file in 64 KiB reads with uWS backpressure (`tryEnd` + `onWritable`), so a long recording
 * never sits in memory whole and a slow client only holds one chunk. The size is taken when the
 * request starts (a running recording keeps growing; the client gets what existed then).
 */
async function streamFile(
  res: HttpResponse,
  path: string,
  headers: Record<string, string>,
  aborted: { value: boolean; onAbort: () => void },
): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const chunk = Buffer.allocUnsafe(64 * 1024);
    let position = 0;
    let started = false;
    while (!aborted.value) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - position), position);
      if (aborted.value) return;
      const data = chunk.subarray(0, bytesRead);
      let ok = false;
      let done = false;
      let writeOffset = 0;
      res.cork(() => {
        if (!started) {
          res.writeStatus('200 OK').writeHeader('cache-control', 'no-store');
          for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
          started = true;
        }
        writeOffset = res.getWriteOffset();
        [ok, done] = res.tryEnd(data, size);
      });
      position += bytesRead;
      if (done || (bytesRead === 0 && position >= size)) return;
      if (!ok) {
        // The socket is full: resume from where uWS stopped once it drains (the chunk stays untouched meanwhile).
        await new Promise<void>((resolve) => {
          aborted.onAbort = resolve;
          res.onWritable((offset) => {
            const [retryOk, retryDone] = res.tryEnd(data.subarray(offset - writeOffset), size);
            if (retryDone || retryOk) resolve();
            return retryOk;
          });
        });
      }
      if (bytesRead === 0) return; // the file shrank under us; the client sees a short body
    }
  } finally {
    await handle.close();
  }
}

function bearer(req: HttpRequest): string | undefined {
  const header = req.getHeader('authorization');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
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
  const turnSecret = await startTurn(config); // turn.secret, the dev secret, or a secret store's (src/turn/service.ts)
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
    turnSecret,
    serverInfo: { version: VERSION, native: uwsNative },
    // No uWS pub/sub for ephemeral room events: a publish would overtake frames still queued for
    // this turn (see UwsConnection), and a topic subscription costs memory per idle socket. They
    // go through the per-connection queues like everything else, coalesced.
  });
  const { limits, signalling } = config;

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const protocols = req.getHeader('sec-websocket-protocol');
    const key = req.getHeader('sec-websocket-key');
    const extensions = req.getHeader('sec-websocket-extensions');
    const offered = protocols.split(',').map((p) => p.trim());
    if (!offered.includes(SUBPROTOCOL)) {
      res.writeStatus('400 Bad Request').writeHeader('content-type', 'text/plain').end(`WebSocket subprotocol ${SUBPROTOCOL} required\n`);
      return;
    }
    res.upgrade<SocketData>({ conn: undefined }, key, SUBPROTOCOL, extensions, context);
  }

  app.ws<SocketData>('/ws', {
    // uWS cuts the TCP connection without a close frame (client sees 1006) above its limit. Twice
    // the configured limit lets the core answer frames in between with a proper 1009.
    maxPayloadLength: limits.maxPayloadBytes * 2,
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
        inCallback = conn;
        try {
          core.onOpen(conn);
        } finally {
          inCallback = null;
        }
      });
    },
    message: (ws, message, isBinary) => {
      guarded('message', () => {
        const conn = connOf(ws);
        if (!conn) return;
        inCallback = conn;
        try {
          core.onMessage(conn, new Uint8Array(message), isBinary);
        } finally {
          inCallback = null;
        }
      });
    },
    close: (ws, code) => {
      guarded('close', () => {
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
  const recordingDir = recordingDirOf(config);
  /** The identity of `Authorization: Bearer <token>`, or null with the 401 already sent. */
  const bearerIdentity = async (token: string | undefined, res: HttpResponse, aborted: { value: boolean }): Promise<Identity | null> => {
    if (!token) {
      sendJson(res, '401 Unauthorized', { error: 'AUTH_FAILED', message: 'Authorization: Bearer <token> required' }, aborted);
      return null;
    }
    try {
      return await verifyToken(token, keys.verify);
    } catch (err) {
      signallingMetrics.authFailures.inc({ reason: 'recordings' });
      sendJson(res, '401 Unauthorized', { error: 'AUTH_FAILED', message: isVoxError(err) ? err.message : 'token rejected' }, aborted);
      return null;
    }
  };
  // GET /recordings?room=<room>: that room's recordings, newest first (docs/recording.md).
  app.get('/recordings', (res, req) => {
    const token = bearer(req);
    const roomId = new URLSearchParams(req.getQuery() ?? '').get('room') ?? '';
    const aborted = { value: false };
    res.onAborted(() => {
      aborted.value = true;
    });
    if (recordingDir === undefined) {
      sendJson(res, '404 Not Found', { error: 'RECORDING_DISABLED', message: 'recording is off (recording.enabled)' }, aborted);
      return;
    }
    if (!roomIdSchema.safeParse(roomId).success) {
      sendJson(res, '400 Bad Request', { error: 'INVALID_MESSAGE', message: 'query parameter room=<room id> required' }, aborted);
      return;
    }
    void (async () => {
      const identity = await bearerIdentity(token, res, aborted);
      if (identity === null) return;
      if (!grantsForRoom(identity, roomId).has('record')) {
        sendJson(res, '403 Forbidden', { error: 'FORBIDDEN', message: `the token has no record grant for room "${roomId}"` }, aborted);
        return;
      }
      const recordings = await listRecordings(recordingDir, roomId);
      sendJson(res, '200 OK', { room: roomId, recordings }, aborted);
    })().catch((err: unknown) => {
      log.error({ err }, 'listing recordings failed');
      sendJson(res, '500 Internal Server Error', { error: 'INTERNAL' }, aborted);
    });
  });
  // GET /recordings/<id>/<file>: one Ogg Opus file (audio/ogg), streamed, for a token with the record grant for its room.
  app.get('/recordings/:id/:file', (res, req) => {
    const token = bearer(req);
    const id = req.getParameter(0) ?? '';
    const file = req.getParameter(1) ?? '';
    const aborted = { value: false, onAbort: (): void => undefined };
    res.onAborted(() => {
      aborted.value = true;
      aborted.onAbort();
    });
    if (recordingDir === undefined) {
      sendJson(res, '404 Not Found', { error: 'RECORDING_DISABLED', message: 'recording is off (recording.enabled)' }, aborted);
      return;
    }
    void (async () => {
      // The token first, then the disk: without one nothing is looked up, and "no such file" and
      // "not your room" look the same (404), so ids and room names cannot be probed.
      const identity = await bearerIdentity(token, res, aborted);
      if (identity === null) return;
      const found = await findRecordingFile(recordingDir, id, file).catch((err: unknown) => {
        if (isVoxError(err, 'RECORDING_NOT_FOUND')) return null;
        throw err;
      });
      if (found === null || !grantsForRoom(identity, found.roomId).has('record')) {
        sendJson(res, '404 Not Found', { error: 'NOT_FOUND', message: 'no such recording file' }, aborted);
        return;
      }
      if (aborted.value) return;
      await streamFile(res, found.path, { 'content-type': 'audio/ogg; codecs=opus', 'content-disposition': `attachment; filename="${id}-${file}"` }, aborted);
    })().catch((err: unknown) => {
      log.error({ err }, 'serving a recording failed');
      sendJson(res, '500 Internal Server Error', { error: 'INTERNAL' }, aborted);
    });
  });

  options.routes?.(app);

  app.any('/*', (res) => {
    sendJson(res, '404 Not Found', { error: 'NOT_FOUND' });
  });

  const listenSocket = await listenExclusive(app, config.server.host, config.server.port);
  if (!listenSocket) {
    core.close();
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
    app,
    keys,
    native: uwsNative,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      uws.us_listen_socket_close(listenSocket);
      core.close();
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
