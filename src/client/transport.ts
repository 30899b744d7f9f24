/**
 * The slice of the WHATWG WebSocket API the SDK uses. Browsers provide it as
 * `globalThis.WebSocket`; in Node 20 there is no global WebSocket, so the Node entry
 * (`node.ts`) injects `ws`'s class, which implements the same interface. Keeping to this slice
 * keeps Node-only APIs out of the browser path.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** WebSocket readyState values (WHATWG HTML, "The WebSocket interface"). */
export const WS_OPEN = 1;

export function defaultWebSocket(): WebSocketConstructor | undefined {
  const candidate = (globalThis as { WebSocket?: unknown }).WebSocket;
  return typeof candidate === 'function' ? (candidate as WebSocketConstructor) : undefined;
}

/** Normalises a message payload (ArrayBuffer in browsers with binaryType 'arraybuffer', Buffer from `ws`). */
export function toBytes(data: unknown): Uint8Array | null {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // `ws` may hand over fragmented messages as Buffer[] when binaryType is 'fragments'; we never set that.
  return null;
}
