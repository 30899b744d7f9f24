import type { ServerMediaMessage } from '../../protocol/index.ts';
import { TypedEmitter } from '../emitter.ts';
import type { MediaSignalChannel } from './media-signal.ts';
import { SlotMap } from './slot-map.ts';

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

export interface BrowserMediaClientEvents {
  [event: string]: unknown[];
  /** The remote track of slot k is available (once per slot; it stays the same across speakers). */
  track: [slot: number, track: MediaStreamTrack];
  slots: [slots: readonly (string | null)[], changed: number[]];
  speaking: [participantId: string, speaking: boolean, level: number];
  reconnect: [reason: string];
}

/**
 * The SDK's media part in the browser: answers the server's offer with the page's
 * RTCPeerConnection, publishes the microphone on m-line 0, and exposes the K slot tracks
 * (m-lines 1…K) with the participant each slot carries (docs/media.md).
 */
export class BrowserMediaClient extends TypedEmitter<BrowserMediaClientEvents> {
  readonly room: string;
  #pc: RTCPeerConnection;
  #rtcConfiguration: RTCConfiguration;
  readonly slotMap = new SlotMap();
  readonly #signal: MediaSignalChannel;
  readonly #gatherTimeoutMs: number;
  #slotTracks: MediaStreamTrack[] = [];
  #restartRequested = false;
  #microphone: MediaStreamTrack | null;
  #negotiation: Promise<void> = Promise.resolve();
  #closed = false;
  offersReceived = 0;

  constructor(options: BrowserMediaClientOptions) {
    super();
    this.room = options.room;
    this.#signal = options.signal;
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
    if (!this.#closed) this.#pc.setConfiguration(this.#rtcConfiguration);
  }

  #newPeer(): RTCPeerConnection {
    const pc = new RTCPeerConnection(this.#rtcConfiguration);
    pc.addEventListener('icecandidate', (e) => {
      // Candidates found after the answer went out trickle (RFC 8838); earlier ones are in the SDP.
      if (e.candidate === null || pc !== this.#pc || pc.signalingState !== 'stable') return;
      const c = e.candidate.toJSON();
      this.#signal.send({
        op: 'media',
        room: this.room,
        kind: 'candidate',
        candidate: { candidate: c.candidate ?? '', sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null },
      });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed' && pc === this.#pc) this.#requestRestart('failed');
    });
    return pc;
  }

  #requestRestart(reason: string): void {
    if (this.#restartRequested || this.#closed) return;
    this.#restartRequested = true;
    this.emit('reconnect', reason);
    this.#signal.send({ op: 'media', room: this.room, kind: 'ice_restart' });
  }

  handle(message: ServerMediaMessage): Promise<void> {
    if (this.#closed || message.room !== this.room) return Promise.resolve();
    switch (message.op) {
      case 'media':
        if (message.kind === 'offer') {
          const restart = message.options?.restart === true;
          this.#negotiation = this.#negotiation.then(() => this.#answer(message.sdp ?? '', message.negotiationId, restart));
          return this.#negotiation;
        }
        if (message.kind === 'candidate' && message.candidate) {
          return this.#pc.addIceCandidate(message.candidate as RTCIceCandidateInit);
        }
        return Promise.resolve();
      case 'slots':
        this.emit('slots', this.slotMap.slots, this.slotMap.applySlots(message));
        return Promise.resolve();
      case 'speaking':
        this.slotMap.applySpeaking(message);
        this.emit('speaking', message.participantId, message.speaking, message.level);
        return Promise.resolve();
      case 'media_reconnect':
        this.#requestRestart(message.reason);
        return Promise.resolve();
      case 'recording':
        // Room state, not media: VoxClient reports it (its 'recording' event).
        return Promise.resolve();
    }
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
    this.#closed = true;
    this.#pc.close();
  }

  #audioTransceivers(): RTCRtpTransceiver[] {
    // In m-line order: m-line 0 is our microphone, then the K slots (docs/media.md).
    return this.#pc.getTransceivers().filter((t) => t.receiver.track.kind === 'audio');
  }

  async #answer(sdp: string, negotiationId: number | undefined, restart: boolean): Promise<void> {
    if (this.#closed) return;
    this.offersReceived++;
    if (restart) {
      // The server replaced our peer (new ICE, new DTLS): a fresh PeerConnection, new slot tracks.
      this.#pc.close();
      this.#pc = this.#newPeer();
      this.#slotTracks = [];
    }
    this.#restartRequested = false;
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
    if (local === undefined || this.#closed) return;
    this.#signal.send({ op: 'media', room: this.room, kind: 'answer', sdp: local, negotiationId });
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
