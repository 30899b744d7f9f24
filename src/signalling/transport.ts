/**
 * The transport seam between the signalling core (sessions, presence, resume; transport-agnostic)
 * and a WebSocket implementation. `startServer` wires it to uWebSockets.js; a benchmark can wire the
 * SAME core to the `ws` package:
 *
 * ```ts
 * const core = createSignallingCore(config, { mediaPlane });
 * wss.on('connection', (ws) => {
 *   const conn: Connection = {
 *     send: (bytes) => ws.send(bytes),
 *     close: (code, reason) => ws.close(code, reason),
 *     bufferedAmount: () => ws.bufferedAmount,
 *   };
 *   core.onOpen(conn);
 *   ws.on('message', (data, isBinary) => core.onMessage(conn, data as Buffer, isBinary));
 *   ws.on('close', (code) => core.onClose(conn, code));
 * });
 * ```
 *
 * Contract: `onOpen` once, then any number of `onMessage`, then exactly one `onClose` (also after
 * the core itself called `close`). The core never calls `send` after `close`. `bytes` passed to
 * `onMessage` may be reused by the transport after the call returns (uWS neuters its ArrayBuffer).
 */
export interface Connection {
  /**
   * Queue one binary frame. Must not throw for a closed socket (ignore the frame instead). The
   * bytes are not modified afterwards but may be shared: copy them if they outlive the call.
   */
  send(bytes: Uint8Array): void;
  /**
   * Optional: queue a sequenced message as its encoded body (without `seq`, shared by every
   * recipient and by their replay buffers) plus this recipient's seq; the transport stamps it
   * (protocol/codec.ts stampSeqInto) when it writes, e.g. into one scratch buffer. Without it the
   * core calls `send(stampSeq(body, seq))`, one allocation per recipient.
   */
  sendSequenced?(body: Uint8Array, seq: number): void;
  /** Close with a WebSocket close code (RFC 6455 §7.4) and a short reason (≤ 123 bytes UTF-8). */
  close(code: number, reason: string): void;
  /** Bytes queued in user space and not yet written to the socket (backpressure). */
  bufferedAmount(): number;
  /** Optional pub/sub: join/leave a topic (one per room) that `Transport.publish` fans out to. */
  subscribe?(topic: string): void;
  unsubscribe?(topic: string): void;
}

/** Optional transport-wide fan-out (uWS `app.publish`: one call, copied to subscribers in C++). */
export interface Transport {
  publish(topic: string, bytes: Uint8Array): void;
}

export function roomTopic(roomId: string): string {
  return `room/${roomId}`;
}
