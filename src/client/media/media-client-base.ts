import type { ServerPeerMessage, TransportMessage, Unstamped } from '../../protocol/index.ts';
import { TypedEmitter } from '../emitter.ts';
import type { MediaClientMessage, MediaSignalChannel } from './media-signal.ts';
import { SlotMap } from './slot-map.ts';

/** The events every media client emits (the browser and Node clients add their own). */
export interface MediaClientEvents {
  [event: string]: unknown[];
  slots: [slots: readonly (string | null)[], changed: number[]];
  speaking: [participantId: string, speaking: boolean, level: number];
  /** The client asked the server for a fresh peer (ICE failed, or the server said `media_reconnect`). */
  reconnect: [reason: string];
}

/** The server's offer as the clients answer it (docs/media.md: the server always offers). */
export interface ServerOffer {
  sdp: string;
  negotiationId: number | undefined;
  /** The server replaced our peer (media reconnect): answer with a fresh PeerConnection. */
  restart: boolean;
  options: Record<string, unknown> | undefined;
}

export interface RemoteCandidate {
  candidate: string;
  sdpMid: string | null;
  sdpMLineIndex: number | null;
}

/**
 * What the browser and Node media clients share: the room's server messages (`handle`), offers
 * answered strictly in order, the slot map and speaking state, and the media reconnect handshake
 * (ask once with `ice_restart`, until the server's restart offer arrives). The subclass owns its
 * PeerConnection and answers one offer at a time (`answerOffer`).
 */
export abstract class MediaClientBase<E extends MediaClientEvents> extends TypedEmitter<E> {
  readonly room: string;
  readonly slotMap = new SlotMap();
  protected readonly signal: MediaSignalChannel;
  /** Offers answered (restart offers included). */
  offersReceived = 0;
  /** Our participant id in the room, once a p2p/auto room's `transport` said it. */
  protected selfId: string | null = null;
  /** Participants the server has muted, as its `peer` `muted` messages say (p2p/auto rooms). */
  protected readonly serverMuted = new Set<string>();
  #negotiation: Promise<void> = Promise.resolve();
  #restartRequested = false;
  #closed = false;
  /** The DTLS fingerprint of the server's last offer (RFC 8122 §5 `a=fingerprint`). */
  #serverFingerprint: string | null = null;

  constructor(room: string, signal: MediaSignalChannel) {
    super();
    this.room = room;
    this.signal = signal;
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  /** Marks the client closed; false when it already was. */
  protected markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Answers one offer (after the previous one was answered): apply it, create the answer, send it. */
  protected abstract answerOffer(offer: ServerOffer): Promise<void>;

  /** Adds one trickled server candidate to the current peer. */
  protected abstract addRemoteCandidate(candidate: RemoteCandidate): Promise<void>;

  /** A `slots` message was applied (after `slotMap`). */
  protected slotsArrived(_slots: readonly { slot: number; participantId: string | null }[]): void {}

  /** An offer arrived (synchronously, before it is queued): for state the offer's options carry. */
  protected offerArrived(_offer: ServerOffer): void {}

  /**
   * p2p/auto rooms (docs/media.md "Peer to peer"): which way the audio goes, and the other peer's
   * offer/answer/candidates. This default only ever uses the server: it reports `switched` to the
   * server at once and never connects directly (its app joins without `direct`, so the server
   * keeps the room on its own media). BrowserMediaClient and NodeMediaClient connect directly when
   * they have `signal.sendPeer`.
   */
  protected handlePeer(message: Unstamped<ServerPeerMessage | TransportMessage>): Promise<void> {
    if (message.op === 'transport' && message.transport === 'server') {
      this.signal.sendPeer?.({ op: 'peer', room: this.room, kind: 'switched', transport: 'server', link: message.link });
    }
    return Promise.resolve();
  }

  /**
   * A p2p/auto room's `peer` `muted` changed `participantId`'s entry in `serverMuted`: a client
   * with a direct link stops sending on it (ourselves) or stops playing it (the other end).
   */
  protected muteArrived(_participantId: string): void {}

  /** Feed every server `media`, `slots`, `speaking`, `media_reconnect`, `transport` and `peer` message for this room here. */
  handle(message: MediaClientMessage): Promise<void> {
    if (this.#closed || message.room !== this.room) return Promise.resolve();
    switch (message.op) {
      case 'media':
        if (message.kind === 'offer') {
          const sdp = message.sdp ?? '';
          const offer: ServerOffer = {
            sdp,
            negotiationId: message.negotiationId,
            // A new fingerprint is a new server-side peer (a re-join on a fresh session after a
            // server restart offers without `restart`): our DTLS association is with the old one.
            restart: message.options?.restart === true || this.#newServerPeer(sdp),
            options: message.options as Record<string, unknown> | undefined,
          };
          this.offerArrived(offer);
          // Offers are answered in order; a renegotiation waits for the previous answer.
          this.#negotiation = this.#negotiation.then(() => this.#answer(offer));
          return this.#negotiation;
        }
        if (message.kind === 'candidate' && message.candidate) {
          return this.addRemoteCandidate({
            candidate: message.candidate.candidate,
            sdpMid: message.candidate.sdpMid ?? null,
            sdpMLineIndex: message.candidate.sdpMLineIndex ?? null,
          });
        }
        return Promise.resolve();
      case 'slots':
        this.#events.emit('slots', this.slotMap.slots, this.slotMap.applySlots(message));
        this.slotsArrived(message.slots);
        return Promise.resolve();
      case 'speaking':
        this.slotMap.applySpeaking(message);
        this.#events.emit('speaking', message.participantId, message.speaking, message.level);
        return Promise.resolve();
      case 'media_reconnect':
        this.requestRestart(message.reason);
        return Promise.resolve();
      case 'recording':
        // Room state, not media: VoxClient reports it (its 'recording' event).
        return Promise.resolve();
      case 'transport':
        if (message.self !== undefined) this.selfId = message.self;
        return this.handlePeer(message);
      case 'peer':
        if (message.kind === 'muted') {
          if (message.muted === true) this.serverMuted.add(message.from);
          else this.serverMuted.delete(message.from);
          this.muteArrived(message.from);
          return Promise.resolve();
        }
        return this.handlePeer(message);
    }
  }

  /** Asks the server for a fresh peer, once until its restart offer arrives. */
  protected requestRestart(reason: string): void {
    if (this.#restartRequested || this.#closed) return;
    this.#restartRequested = true;
    this.#events.emit('reconnect', reason);
    try {
      this.signal.send({ op: 'media', room: this.room, kind: 'ice_restart' });
    } catch {
      // Signalling is down (VoxClient throws CLIENT_NOT_CONNECTED while reconnecting) and this runs
      // inside a peer's state callback: never throw there. Once signalling is back the server
      // offers again (media_reconnect, or a re-join's offer), and a later failure may ask again.
      this.#restartRequested = false;
    }
  }

  /** Whether `sdp` carries another DTLS certificate than the previous offer (RFC 8842 §5.1: a new association). */
  #newServerPeer(sdp: string): boolean {
    const fingerprint = /^a=fingerprint:(.+)$/m.exec(sdp)?.[1]?.trim() ?? null;
    if (fingerprint === null) return false;
    const previous = this.#serverFingerprint;
    this.#serverFingerprint = fingerprint;
    return previous !== null && previous !== fingerprint;
  }

  async #answer(offer: ServerOffer): Promise<void> {
    if (this.#closed) return;
    this.offersReceived++;
    this.#restartRequested = false;
    await this.answerOffer(offer);
  }

  /** The base's own events, typed without the subclass's additions. */
  get #events(): TypedEmitter<MediaClientEvents> {
    return this as unknown as TypedEmitter<MediaClientEvents>;
  }
}
