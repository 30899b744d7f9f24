/**
 * EXPERIMENT (not a baseline), kept for comparison: the first version of per-connection write
 * coalescing, which src/signalling/server.ts now does itself (plus seq stamping at write time into
 * a scratch buffer, and no queue array per connection). Before that, the production adapter sent
 * every frame at once; a
 * fan-out to other sockets is then one write syscall per recipient per message, because uWS only
 * corks the socket whose callback is running. Here frames are queued per connection and flushed
 * once per event-loop turn inside `ws.cork()` (uWS user manual, "Corking"), so a recipient that got
 * k frames during one turn costs one syscall. Run with `--only=uws,uws-batched` to compare.
 */
import type { WebSocket } from 'uWebSockets.js';
import type { AuthKeys } from '../../src/auth/index.ts';
import type { VoxConfig } from '../../src/config.ts';
import { SUBPROTOCOL } from '../../src/protocol/index.ts';
import { createSignallingCore, VERSION, type Connection } from '../../src/signalling/index.ts';
import { uws, uwsNative } from '../../src/signalling/uws.ts';

interface SocketData {
  conn: BatchedConnection | null;
}

const dirty: BatchedConnection[] = [];
let flushScheduled = false;
function flushAll(): void {
  flushScheduled = false;
  for (const conn of dirty.splice(0)) conn.flush();
}

class BatchedConnection implements Connection {
  readonly #ws: WebSocket<SocketData>;
  #open = true;
  readonly #queue: Uint8Array[] = [];
  #queuedBytes = 0;

  constructor(ws: WebSocket<SocketData>) {
    this.#ws = ws;
  }

  send(bytes: Uint8Array): void {
    if (!this.#open) return;
    if (this.#queue.length === 0) {
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    }
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
  }

  flush(): void {
    if (this.#open && this.#queue.length > 0) {
      this.#ws.cork(() => {
        for (const frame of this.#queue) this.#ws.send(frame, true, false);
      });
    }
    this.#queue.length = 0;
    this.#queuedBytes = 0;
  }

  close(code: number, reason: string): void {
    if (!this.#open) return;
    this.flush();
    this.#open = false;
    this.#ws.end(code, reason);
  }

  markClosed(): void {
    this.#open = false;
    this.#queue.length = 0;
  }

  bufferedAmount(): number {
    return this.#open ? this.#ws.getBufferedAmount() + this.#queuedBytes : 0;
  }
}

export async function startUwsBatchedServer(config: VoxConfig, keys: AuthKeys): Promise<{ port: number }> {
  const app = uws.App();
  const core = createSignallingCore(config, {
    keys,
    serverInfo: { version: VERSION, native: uwsNative },
    transport: { publish: (topic, bytes) => void app.publish(topic, bytes, true, false) },
  });
  app.ws<SocketData>('/ws', {
    maxPayloadLength: config.limits.maxPayloadBytes,
    maxBackpressure: config.limits.maxBackpressureBytes * 2 + config.limits.maxPayloadBytes,
    closeOnBackpressureLimit: 1,
    idleTimeout: 960,
    compression: uws.DISABLED,
    upgrade: (res, req, context) => {
      if (!req.getHeader('sec-websocket-protocol').split(',').map((p) => p.trim()).includes(SUBPROTOCOL)) {
        res.writeStatus('400 Bad Request').end();
        return;
      }
      res.upgrade<SocketData>(
        { conn: null },
        req.getHeader('sec-websocket-key'),
        SUBPROTOCOL,
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      const conn = new BatchedConnection(ws);
      ws.getUserData().conn = conn;
      core.onOpen(conn);
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn;
      if (conn) core.onMessage(conn, new Uint8Array(message), isBinary);
    },
    close: (ws, code) => {
      const data = ws.getUserData();
      if (!data.conn) return;
      data.conn.markClosed();
      const conn = data.conn;
      data.conn = null;
      core.onClose(conn, code);
    },
  });
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket) => {
      if (!socket) reject(new Error('uws-batched: cannot listen'));
      else resolve({ port: uws.us_socket_local_port(socket) });
    });
  });
}
