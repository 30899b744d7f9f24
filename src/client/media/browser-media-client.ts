import { MediaClientBase, type MediaClientEvents, type RemoteCandidate, type ServerOffer } from './media-client-base.ts';
import type { MediaSignalChannel } from './media-signal.ts';

export interface BrowserMediaClientOptions {
  room: string;
  signal: MediaSignalChannel;
  /** The microphone track to publish (from getUserMedia), or null to only listen. Settable later. */
  microphone?: MediaStreamTrack | null;
  /**
   * ICE servers and policy (`{ iceServers: client.iceServers, iceTransportPolicy }`, TURN
   * credentials from `ready`), applied to every peer this client creates (media reconnects included).
   */
  rtcConfiguration?: RTCConfiguration;
  /** How long to wait for ICE gathering before sending the answer anyway (later candidates trickle). Default 1500 ms. */
  gatherTimeoutMs?: number;
}

export interface BrowserMediaClientEvents extends MediaClientEvents {
  /** The remote track of slot k is available (once per slot; it stays the same across speakers). */
  track: [slot: number, track: MediaStreamTrack];
}

/**
 * The SDK's media part in the browser: answers the server's offer with the page's
 * RTCPeerConnection, publishes the microphone on m-line 0, and exposes the K slot tracks
 * (m-lines 1…K) with the participant each slot carries (docs/media.md).
 */
export class BrowserMediaClient extends MediaClientBase<BrowserMediaClientEvents> {
  #pc: RTCPeerConnection;
  #rtcConfiguration: RTCConfiguration;
  readonly #gatherTimeoutMs: number;
  #slotTracks: MediaStreamTrack[] = [];
  #microphone: MediaStreamTrack | null;

  constructor(options: BrowserMediaClientOptions) {
    super(options.room, options.signal);
    this.#microphone = options.microphone ?? null;
    this.#gatherTimeoutMs = options.gatherTimeoutMs ?? 1500;
    this.#rtcConfiguration = { bundlePolicy: 'max-bundle', ...options.rtcConfiguration };
    this.#pc = this.#newPeer();
  }

  /** The current PeerConnection (replaced on media reconnect). */
  get pc(): RTCPeerConnection {
    return this.#pc;
  }

  /**
   * Replaces the ICE servers, e.g. with the fresh TURN credentials of a `resumed`
   * (`VoxClient` `ice_servers` event). Every later peer (media reconnect) uses them; the current
   * peer gets them through `setConfiguration()` (W3C webrtc-pc §4.4.1.6) for any later gathering.
   */
  setIceServers(servers: RTCIceServer[]): void {
    this.#rtcConfiguration = { ...this.#rtcConfiguration, iceServers: servers.map((s) => ({ ...s })) };
    if (!this.closed) this.#pc.setConfiguration(this.#rtcConfiguration);
  }

  #newPeer(): RTCPeerConnection {
    const pc = new RTCPeerConnection(this.#rtcConfiguration);
    pc.addEventListener('icecandidate', (e) => {
      // Candidates found after the answer went out trickle (RFC 8838); earlier ones are in the SDP.
      if (e.candidate === null || pc !== this.#pc || pc.signalingState !== 'stable') return;
      const c = e.candidate.toJSON();
      this.signal.send({
        op: 'media',
        room: this.room,
        kind: 'candidate',
        candidate: { candidate: c.candidate ?? '', sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null },
      });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed' && pc === this.#pc) this.requestRestart('failed');
    });
    return pc;
  }

  protected addRemoteCandidate(candidate: RemoteCandidate): Promise<void> {
    return this.#pc.addIceCandidate(candidate);
  }

  /** Publishes another microphone track (or stops with null) without renegotiation (replaceTrack). */
  async setMicrophone(track: MediaStreamTrack | null): Promise<void> {
    this.#microphone = track;
    const mic = this.#audioTransceivers()[0];
    if (mic !== undefined) await mic.sender.replaceTrack(track);
  }

  /** The remote track of slot k, or null before the first offer. A media reconnect emits new tracks. */
  slotTrack(slot: number): MediaStreamTrack | null {
    return this.#slotTracks[slot] ?? null;
  }

  close(): void {
    this.markClosed();
    this.#pc.close();
  }

  #audioTransceivers(): RTCRtpTransceiver[] {
    // In m-line order: m-line 0 is our microphone, then the K slots (docs/media.md).
    return this.#pc.getTransceivers().filter((t) => t.receiver.track.kind === 'audio');
  }

  protected async answerOffer({ sdp, negotiationId, restart }: ServerOffer): Promise<void> {
    if (restart) {
      // The server replaced our peer (new ICE, new DTLS): a fresh PeerConnection, new slot tracks.
      this.#pc.close();
      this.#pc = this.#newPeer();
      this.#slotTracks = [];
    }
    const pc = this.#pc;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const audio = this.#audioTransceivers();
    audio.forEach((t, i) => {
      if (i === 0) {
        t.direction = 'sendonly';
        void t.sender.replaceTrack(this.#microphone);
        return;
      }
      t.direction = 'recvonly';
      const slot = i - 1;
      if (this.#slotTracks[slot] === undefined) {
        this.#slotTracks[slot] = t.receiver.track;
        this.emit('track', slot, t.receiver.track);
      }
    });
    await pc.setLocalDescription(await pc.createAnswer());
    await this.#gathered(pc);
    const local = pc.localDescription?.sdp;
    if (local === undefined || this.closed) return;
    this.signal.send({ op: 'media', room: this.room, kind: 'answer', sdp: local, negotiationId });
  }

  #gathered(pc: RTCPeerConnection): Promise<void> {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = (): void => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = setTimeout(done, this.#gatherTimeoutMs);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }
}
