import type { ClientMediaMessage, ClientPeerMessage, ServerMediaMessage, ServerPeerMessage, TransportMessage, Unstamped } from '../../protocol/index.ts';

/**
 * How a media client talks to the server: it sends `media` messages through `send`, and is fed
 * every `media`/`slots`/`speaking`/`media_reconnect` message for its room through its `handle()`.
 * The signalling SDK implements `send` over the WebSocket; tests wire it straight to a MediaRoom.
 */
export interface MediaSignalChannel {
  send(message: ClientMediaMessage): void;
  /**
   * p2p/auto rooms: `peer` messages for the other participant and `switched` reports (both go out
   * through VoxClient.sendMedia too). Without it the client never connects directly.
   */
  sendPeer?(message: ClientPeerMessage): void;
}

/** Everything a media client is fed: the media plane's messages, and in p2p/auto rooms `transport` and `peer`. */
export type MediaClientMessage = ServerMediaMessage | Unstamped<ServerPeerMessage | TransportMessage>;

export type { ClientMediaMessage, ServerMediaMessage };
