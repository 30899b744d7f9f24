import '../js-only.ts';
/**
 * Node entry of the client SDK: Node 20 has no global WebSocket, so this passes `ws`'s class
 * (same WHATWG-style interface) unless the caller brings its own.
 */
import { WebSocket } from 'ws';
import { VoxClient, type VoxClientOptions } from './index.ts';
import type { WebSocketConstructor } from './transport.ts';

export * from './index.ts';

export function createNodeClient(options: VoxClientOptions = {}): VoxClient {
  return new VoxClient({ WebSocket: WebSocket as unknown as WebSocketConstructor, ...options });
}
