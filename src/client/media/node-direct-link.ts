import { RTCPeerConnection, RtpHeader, RtpPacket, type MediaStreamTrack, type PeerConfig, type RTCRtpTransceiver } from 'werift';
import type { ClientPeerMessage, ServerPeerMessage, Unstamped } from '../../protocol/index.ts';
import { keepHostCandidates, waitGathered } from '../../media/peer-config.ts';
import { AUDIO_LEVEL_URI } from '../../media/rtp.ts';

export interface NodeDirectLinkOptions {
  room: string;
  /** The participant at the other end. */
  peer: string;
  /** The server's number for this link (`transport.link`); every `peer` message carries it. */
  link: number;
  /** This end creates the offer (the server picks exactly one end). */
  offerer: boolean;
  /** werift configuration (codecs, header extensions, ICE servers and addresses), as the client's server peer uses. */
  config: Partial<PeerConfig>;
  /** Host candidates on other addresses are not advertised (as with the server peer's answer). */
  bindIp: string;
  send(message: ClientPeerMessage): void;
  /** Every RTP packet the other end sends us, with its header extensions. */
  onRtp(rtp: RtpPacket, extensions: Record<string, unknown> | undefined): void;
}

/**
 * One werift audio connection straight to the other participant of a p2p/auto room (docs/media.md
 * "Peer to peer"), the Node SDK's counterpart of the browser's DirectLink: one sendrecv Opus m-line
 * with the RFC 6464 level extension, offer/answer through the server's `peer` relay. Our own SDP
 * goes out after ICE gathering (its candidates inside, no trickle); the other end's trickled
 * candidates are added, held until the remote description is set (W3C webrtc-pc §4.4.1.6).
 */
export class NodeDirectLink {
  readonly peer: string;
  readonly link: number;
  readonly pc: RTCPeerConnection;
  readonly #options: NodeDirectLinkOptions;
  #transceiver: RTCRtpTransceiver | null = null;
  #levelExtId = 0;
  #early: Parameters<RTCPeerConnection['addIceCandidate']>[0][] | null = [];
  #closed = false;
  readonly #listening = new WeakSet<MediaStreamTrack>();

  constructor(options: NodeDirectLinkOptions) {
    this.#options = options;
    this.peer = options.peer;
    this.link = options.link;
    this.pc = new RTCPeerConnection({ ...options.config, bundlePolicy: 'max-bundle' });
    if (options.offerer) {
      this.#use(this.pc.addTransceiver('audio', { direction: 'sendrecv' }));
      void this.#offer().catch(() => undefined);
    }
  }

  get connected(): boolean {
    return this.pc.connectionState === 'connected';
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one 20 ms audio frame with its RFC 6464 level. A fresh packet per link: werift's
   * sendRtp rewrites the header it is given (SSRC, offsets, extensions).
   */
  sendFrame(payload: Uint8Array, sequenceNumber: number, timestamp: number, marker: boolean, level: number, payloadType: number): void {
    const t = this.#transceiver;
    if (t === null || this.#closed || !this.connected) return;
    const header = new RtpHeader({
      payloadType,
      sequenceNumber,
      timestamp,
      marker,
      extensions: this.#levelExtId > 0 ? [{ id: this.#levelExtId, payload: Buffer.from([level & 0x7f]) }] : [],
    });
    t.sender.sendRtp(new RtpPacket(header, Buffer.from(payload))).catch(() => undefined);
  }

  /** The other end's offer, answer or candidate (from the server's relay). */
  async handle(message: Unstamped<ServerPeerMessage>): Promise<void> {
    if (this.#closed || message.link !== this.link || message.from !== this.peer) return;
    if (message.kind === 'offer' || message.kind === 'answer') {
      await this.pc.setRemoteDescription({ type: message.kind, sdp: message.sdp ?? '' });
      const early = this.#early ?? [];
      this.#early = null;
      for (const candidate of early) await this.pc.addIceCandidate(candidate).catch(() => undefined);
      if (message.kind === 'offer') {
        const audio = this.pc.getTransceivers().find((t) => t.kind === 'audio');
        if (audio) {
          // werift keeps the reverse of the remote direction; we send and receive.
          audio.setDirection('sendrecv');
          this.#use(audio);
        }
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        await this.#sendDescription('answer');
      } else if (this.#transceiver) {
        this.#listen(this.#transceiver);
      }
      return;
    }
    if (message.kind !== 'candidate') return;
    const c = message.candidate;
    // End of candidates (null or ''), and TCP candidates werift does not use: nothing to add.
    if (!c || c.candidate === '' || / tcp /i.test(c.candidate)) return;
    const init = { candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined };
    if (this.#early) this.#early.push(init);
    else await this.pc.addIceCandidate(init).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pc.close().catch(() => undefined);
  }

  #use(t: RTCRtpTransceiver): void {
    this.#transceiver = t;
    this.#listen(t);
  }

  /** Listens to the remote track (werift creates it when the remote description arrives). */
  #listen(t: RTCRtpTransceiver): void {
    this.#levelExtId = t.headerExtensions.find((e) => e.uri === AUDIO_LEVEL_URI)?.id ?? this.#levelExtId;
    const listen = (track: MediaStreamTrack): void => {
      if (this.#listening.has(track)) return;
      this.#listening.add(track);
      track.onReceiveRtp.subscribe((rtp, extensions) => {
        if (!this.#closed) this.#options.onRtp(rtp, extensions);
      });
    };
    for (const track of t.receiver.tracks) listen(track);
    t.onTrack.subscribe(listen);
  }

  async #offer(): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await this.#sendDescription('offer');
  }

  async #sendDescription(kind: 'offer' | 'answer'): Promise<void> {
    await waitGathered(this.pc);
    const sdp = this.pc.localDescription?.sdp;
    if (sdp === undefined || this.#closed) return;
    this.#options.send({ op: 'peer', room: this.#options.room, kind, to: this.peer, link: this.link, sdp: keepHostCandidates(sdp, this.#options.bindIp) });
  }
}
