import { PEER_LEVEL_INTERVAL_MS, type ClientPeerMessage, type ServerPeerMessage, type Unstamped } from '../../protocol/index.ts';
import { LevelReport } from './level-report.ts';

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
  /** The server muted us: nothing goes out on this link (there is no server in between to drop it). */
  #sendMuted = false;
  /** The server muted the other end: its track plays silence. */
  #peerMuted = false;
  readonly #levels = new LevelReport();
  readonly #levelTimer: ReturnType<typeof setInterval>;
  #energy = { energy: 0, seconds: 0 };
  /** Level reports stop once the room moves to the server (its media room detects speakers then). */
  #reporting = true;

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
    this.#levelTimer = setInterval(() => void this.#reportLevel(), PEER_LEVEL_INTERVAL_MS);
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
    await this.#transceiver?.sender.replaceTrack(this.#sendMuted ? null : track);
  }

  /**
   * The server's mute state of the two ends (`peer` `muted`, docs/media.md "Peer to peer"): muted,
   * we send nothing on the link; the other end muted, its track is disabled (plays silence).
   */
  setMuted(self: boolean, peer: boolean): void {
    if (this.#closed) return;
    if (self !== this.#sendMuted) {
      this.#sendMuted = self;
      this.#levels.reset();
      void this.#transceiver?.sender.replaceTrack(self ? null : this.#microphone);
    }
    this.#peerMuted = peer;
    const track = this.track;
    if (track) track.enabled = !peer;
  }

  #useTransceiver(transceiver: RTCRtpTransceiver): void {
    this.#transceiver = transceiver;
    transceiver.direction = 'sendrecv';
    transceiver.receiver.track.enabled = !this.#peerMuted;
    if (this.#microphone && !this.#sendMuted) void transceiver.sender.replaceTrack(this.#microphone);
  }

  /** The room is moving to the server: no more level reports (and no stats polling during the switch). */
  stopLevelReports(): void {
    this.#reporting = false;
    clearInterval(this.#levelTimer);
  }

  /**
   * Our microphone's level over the last interval, from the sender's media-source stats (W3C
   * webrtc-stats §8.3 totalAudioEnergy / totalSamplesDuration), to the server (`peer` `level`):
   * the server sees no RTP of a direct link, so this is how the room gets `speaking` events.
   */
  async #reportLevel(): Promise<void> {
    const sender = this.#transceiver?.sender;
    if (this.#closed || !this.#reporting || this.#sendMuted || !sender?.track || this.pc.connectionState !== 'connected') return;
    const stats = await sender.getStats();
    for (const report of stats.values()) {
      if (report.type !== 'media-source' || report.kind !== 'audio') continue;
      const energy = Number(report.totalAudioEnergy ?? 0);
      const seconds = Number(report.totalSamplesDuration ?? 0);
      const level = this.#levels.addEnergy(energy - this.#energy.energy, seconds - this.#energy.seconds);
      const first = this.#energy.seconds === 0;
      this.#energy = { energy, seconds };
      if (level >= 0 && !first && !this.#closed && !this.#sendMuted) this.#message({ kind: 'level', level });
      return;
    }
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
    clearInterval(this.#levelTimer);
    this.pc.close();
  }

  async #offer(): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this.#message({ kind: 'offer', sdp: this.pc.localDescription?.sdp ?? '' });
  }

  #message(fields: Pick<ClientPeerMessage, 'kind' | 'sdp' | 'candidate' | 'level'>): void {
    if (this.#closed) return;
    this.#send({ op: 'peer', room: this.#room, to: this.peer, link: this.link, ...fields });
  }
}
