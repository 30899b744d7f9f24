import type { ClientMediaMessage, ServerMediaMessage } from '../../protocol/index.ts';

/**
 * How a media client talks to the server: it sends `media` messages through `send`, and is fed
 * every `media`/`slots`/`speaking`/`media_reconnect` message for its room through its `handle()`.
 * The signalling SDK implements `send` over the WebSocket; tests wire it straight to a MediaRoom.
 */
export interface MediaSignalChannel {
  send(message: ClientMediaMessage): void;
}

export type { ClientMediaMessage, ServerMediaMessage };
