import type { ClientPeerMessage, ServerPeerMessage, Unstamped } from '../../protocol/index.ts';

export interface DirectLinkOptions {
  room: string;
  /** The participant at the other end. */
  peer: string;
  /** The server's number for this link (`transport.link`); every `peer` message carries it. */
  link: number;
  /** This end creates the offer (the server picks exactly one end). */
  offerer: boolean;
  microphone: MediaStreamTrack | null;
  rtcConfiguration: RTCConfiguration;
  send(message: ClientPeerMessage): void;
}

/**
 * One browser-to-browser audio connection of a p2p/auto room (docs/media.md "Peer to peer"): one
 * sendrecv audio m-line, offer/answer and trickled candidates through the server's `peer` relay.
 * Candidates that arrive before the remote description are held until it is set (W3C webrtc-pc
 * §4.4.1.6: addIceCandidate needs one).
 */
export class DirectLink {
  readonly peer: string;
  readonly link: number;
  readonly pc: RTCPeerConnection;
  readonly #room: string;
  readonly #send: (message: ClientPeerMessage) => void;
  /** Ours from the start at the offerer; the answerer takes the one its remote offer creates (JSEP §5.10: addTransceiver ones are not reused). */
  #transceiver: RTCRtpTransceiver | null = null;
  #microphone: MediaStreamTrack | null;
  #early: RTCIceCandidateInit[] | null = [];
  #closed = false;

  constructor(options: DirectLinkOptions) {
    this.peer = options.peer;
    this.link = options.link;
    this.#room = options.room;
    this.#send = options.send;
    this.#microphone = options.microphone;
    this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', ...options.rtcConfiguration });
    if (options.offerer) this.#useTransceiver(this.pc.addTransceiver('audio', { direction: 'sendrecv' }));
    this.pc.addEventListener('icecandidate', (e) => {
      if (this.#closed) return;
      const c = e.candidate?.toJSON();
      this.#message({
        kind: 'candidate',
        candidate: c ? { candidate: c.candidate ?? '', sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null } : null,
      });
    });
    if (options.offerer) void this.#offer();
  }

  /** The remote participant's audio (null at the answering end before the offer). */
  get track(): MediaStreamTrack | null {
    return this.#transceiver?.receiver.track ?? null;
  }

  get receiver(): RTCRtpReceiver | null {
    return this.#transceiver?.receiver ?? null;
  }

  async setMicrophone(track: MediaStreamTrack | null): Promise<void> {
    this.#microphone = track;
    await this.#transceiver?.sender.replaceTrack(track);
  }

  #useTransceiver(transceiver: RTCRtpTransceiver): void {
    this.#transceiver = transceiver;
    transceiver.direction = 'sendrecv';
    if (this.#microphone) void transceiver.sender.replaceTrack(this.#microphone);
  }

  /** The other end's offer, answer or candidate (from the server's relay). */
  async handle(message: Unstamped<ServerPeerMessage>): Promise<void> {
    if (this.#closed || message.link !== this.link || message.from !== this.peer) return;
    if (message.kind === 'offer' || message.kind === 'answer') {
      await this.pc.setRemoteDescription({ type: message.kind, sdp: message.sdp ?? '' });
      const early = this.#early ?? [];
      this.#early = null;
      for (const candidate of early) await this.pc.addIceCandidate(candidate);
      if (message.kind === 'offer') {
        const audio = this.pc.getTransceivers().find((t) => t.receiver.track.kind === 'audio');
        if (audio && audio !== this.#transceiver) this.#useTransceiver(audio);
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.#message({ kind: 'answer', sdp: this.pc.localDescription?.sdp ?? '' });
      }
      return;
    }
    const c = message.candidate;
    const init: RTCIceCandidateInit = c ? { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null } : { candidate: '' };
    if (this.#early) this.#early.push(init);
    else await this.pc.addIceCandidate(init);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.pc.close();
  }

  async #offer(): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this.#message({ kind: 'offer', sdp: this.pc.localDescription?.sdp ?? '' });
  }

  #message(fields: Pick<ClientPeerMessage, 'kind' | 'sdp' | 'candidate'>): void {
    if (this.#closed) return;
    this.#send({ op: 'peer', room: this.#room, to: this.peer, link: this.link, ...fields });
  }
}
