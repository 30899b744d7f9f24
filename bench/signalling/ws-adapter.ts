/**
 * VoxLink's transport-agnostic signalling core behind the `ws` package instead of uWebSockets.js:
 * the baseline that isolates what uWS itself buys. Same core, same config, same protocol; only the
 * WebSocket server differs (no uWS pub/sub, so the rare unsequenced `speaking` fan-out goes per
 * connection — it is not part of the benchmark's message mix).
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { AuthKeys } from '../../src/auth/index.ts';
import type { VoxConfig } from '../../src/config.ts';
import { SUBPROTOCOL } from '../../src/protocol/index.ts';
import { createSignallingCore, VERSION, type Connection } from '../../src/signalling/index.ts';

export async function startWsServer(config: VoxConfig, keys: AuthKeys): Promise<{ port: number; close(): Promise<void> }> {
  const core = createSignallingCore(config, { keys, serverInfo: { version: VERSION, native: false } });
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    path: '/ws',
    perMessageDeflate: false,
    maxPayload: config.limits.maxPayloadBytes,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  wss.on('connection', (ws: WebSocket) => {
    let open = true;
    const conn: Connection = {
      send: (bytes) => {
        if (open) ws.send(bytes, { binary: true });
      },
      close: (code, reason) => {
        if (!open) return;
        open = false;
        ws.close(code, reason);
      },
      bufferedAmount: () => ws.bufferedAmount,
    };
    core.onOpen(conn);
    ws.on('message', (data, isBinary) => core.onMessage(conn, data as Buffer, isBinary));
    ws.on('close', (code) => {
      open = false;
      core.onClose(conn, code);
    });
    ws.on('error', () => ws.terminate());
  });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const port = (wss.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        core.close();
        wss.close(() => resolve());
      }),
  };
}
