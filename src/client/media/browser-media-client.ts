import type { ServerPeerMessage, TransportMessage, Unstamped } from '../../protocol/index.ts';
import { DirectLink } from './direct-link.ts';
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

export type AudioPath = 'direct' | 'server';

export interface BrowserMediaClientEvents extends MediaClientEvents {
  /**
   * Play this track for slot k (replacing what slot k played). Once per slot and server peer (it
   * stays the same across speakers), and again at each switch between the server and a direct link
   * (p2p/auto rooms: the direct link is slot 0), once the new path carries audio.
   */
  track: [slot: number, track: MediaStreamTrack];
  /**
   * What the played tracks come from now: the server (slots) or the direct link to the other
   * participant. At a switch it comes first, then the new path's `track` events; the old path's
   * tracks keep carrying audio for OVERLAP_MS, so an app can play both until the new one is heard.
   */
  transport: [path: AudioPath];
}

/** How often a switch checks whether the new path carries audio (RTCRtpReceiver.getStats). */
const FLOW_POLL_MS = 40;
/** A connected path without packets this long is taken anyway: the other end may be silent (muted, listen-only). */
const SILENT_PEER_MS = 2000;
/** A new path without audio after this long is given up; the server's switch timeout decides what follows. */
const FLOW_GIVE_UP_MS = 20_000;
/**
 * The old path stays open this long after the new one's tracks were handed out, so the app's new
 * <audio> is heard before the old one goes silent: a fresh receiver's jitter buffer needs 100–400 ms
 * to play out on a busy machine (measured: test/p2p/chromium-auto.test.ts). Apps keep the old
 * element playing until the new track is heard (the demo: src/web/call.ts).
 */
const OVERLAP_MS = 1000;

/**
 * The SDK's media part in the browser: answers the server's offer with the page's
 * RTCPeerConnection, publishes the microphone on m-line 0, and exposes the K slot tracks
 * (m-lines 1…K) with the participant each slot carries (docs/media.md). In p2p/auto rooms it also
 * connects directly to the other participant when the server says so (`transport`), and switches
 * between the two make-before-break: the new path is negotiated while the old one plays, its
 * tracks are handed out once it carries audio, then the old path closes and the server is told
 * (`peer` switched).
 */
export class BrowserMediaClient extends MediaClientBase<BrowserMediaClientEvents> {
  #pc: RTCPeerConnection;
  #rtcConfiguration: RTCConfiguration;
  readonly #gatherTimeoutMs: number;
  #slotTracks: MediaStreamTrack[] = [];
  #microphone: MediaStreamTrack | null;
  #path: AudioPath = 'server';
  #direct: DirectLink | null = null;
  /** Server slot tracks negotiated but not handed out yet: the direct link plays until they carry audio. */
  #holdSlots = false;
  #serverLink = 0;
  /** Who the direct link carried, and the server's slot assignments since the move to the server began. */
  #directPeer: string | null = null;
  #serverSlots: (string | null)[] = [];
  /** Bumped by every `transport`: a switch waiting for audio on an older decision stops. */
  #decision = 0;

  constructor(options: BrowserMediaClientOptions) {
    super(options.room, options.signal);
    this.#microphone = options.microphone ?? null;
    this.#gatherTimeoutMs = options.gatherTimeoutMs ?? 1500;
    this.#rtcConfiguration = { bundlePolicy: 'max-bundle', ...options.rtcConfiguration };
    this.#pc = this.#newPeer();
  }

  /** The PeerConnection that carries what plays now: the server's (replaced on media reconnect) or the direct link's. */
  get pc(): RTCPeerConnection {
    return this.#path === 'direct' && this.#direct ? this.#direct.pc : this.#pc;
  }

  /** Where the played audio comes from: `server` (slots) or `direct` (p2p/auto rooms, docs/media.md). */
  get transport(): AudioPath {
    return this.#path;
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
    await this.#direct?.setMicrophone(track);
  }

  /** The remote track of slot k, or null before the first offer. A media reconnect emits new tracks. */
  slotTrack(slot: number): MediaStreamTrack | null {
    return this.#slotTracks[slot] ?? null;
  }

  close(): void {
    this.markClosed();
    this.#pc.close();
    this.#direct?.close();
    this.#direct = null;
  }

  protected override async handlePeer(message: Unstamped<ServerPeerMessage | TransportMessage>): Promise<void> {
    const sendPeer = this.signal.sendPeer?.bind(this.signal);
    if (!sendPeer) return super.handlePeer(message);
    if (message.op === 'peer') {
      await this.#direct?.handle(message);
      return;
    }
    const decision = ++this.#decision;
    if (message.transport === 'server') {
      this.#serverLink = message.link;
      if (this.#path === 'server') {
        // Nothing direct plays: the server's offer is answered as in any sfu room.
        this.#closeDirect();
        this.#holdSlots = false;
        sendPeer({ op: 'peer', room: this.room, kind: 'switched', transport: 'server', link: message.link });
        return;
      }
      this.#holdSlots = true;
      this.#serverSlots = [];
      this.#direct?.stopLevelReports();
      // The server peer may be negotiated already (a switch back that was undone): wait for its audio now.
      if (this.#pc.remoteDescription !== null && this.#pc.signalingState !== 'closed') void this.#awaitServer(decision);
      return;
    }
    this.#holdSlots = false;
    if (message.peer === undefined) {
      // Alone in the room: the server has no peer for us either.
      this.#closeDirect();
      this.#closeServerPeer();
      this.#setPath('direct');
      return;
    }
    if (this.#direct?.link !== message.link) {
      this.#closeDirect();
      this.#direct = new DirectLink({
        room: this.room,
        peer: message.peer,
        link: message.link,
        offerer: message.offerer === true,
        microphone: this.#microphone,
        rtcConfiguration: this.#rtcConfiguration,
        send: sendPeer,
      });
      this.muteArrived(message.peer);
    }
    const link = this.#direct;
    const receivers = (): RTCRtpReceiver[] => (link.receiver ? [link.receiver] : []);
    if (!(await this.#flowing(link.pc, receivers, decision)) || this.#direct !== link || link.track === null) return;
    // Make-before-break: the direct link carries audio, so it plays, and after the overlap the server peer goes.
    this.#directPeer = link.peer;
    this.#setPath('direct');
    this.emit('track', 0, link.track);
    await new Promise((resolve) => setTimeout(resolve, OVERLAP_MS));
    if (decision !== this.#decision || this.#direct !== link) return;
    this.#closeServerPeer();
    sendPeer({ op: 'peer', room: this.room, kind: 'switched', transport: 'direct', link: link.link });
  }

  /** The server's mute state of us or the other end reaches the direct link (the server path drops muted RTP itself). */
  protected override muteArrived(_participantId: string): void {
    const link = this.#direct;
    if (link) link.setMuted(this.selfId !== null && this.serverMuted.has(this.selfId), this.serverMuted.has(link.peer));
  }

  protected override slotsArrived(slots: readonly { slot: number; participantId: string | null }[]): void {
    for (const { slot, participantId } of slots) this.#serverSlots[slot] = participantId;
  }

  /**
   * The held server slots carry audio: they play, and after the overlap the direct link goes. What
   * must flow is the slot the server gave the direct peer (the others, e.g. a newcomer, may come
   * first): switching on any slot would silence the peer until its own server peer is up.
   */
  async #awaitServer(decision: number): Promise<void> {
    const pc = this.#pc;
    const slots = this.#audioTransceivers().slice(1);
    const receivers = (): RTCRtpReceiver[] => {
      const peer = this.#directPeer;
      if (peer === null) return slots.map((t) => t.receiver);
      const slot = this.#serverSlots.indexOf(peer);
      return slot >= 0 && slots[slot] ? [slots[slot].receiver] : [];
    };
    if (!(await this.#flowing(pc, receivers, decision)) || pc !== this.#pc || !this.#holdSlots) return;
    this.#holdSlots = false;
    this.#slotTracks = slots.map((t) => t.receiver.track);
    this.#setPath('server');
    this.#slotTracks.forEach((track, slot) => this.emit('track', slot, track));
    await new Promise((resolve) => setTimeout(resolve, OVERLAP_MS));
    if (decision !== this.#decision) return;
    this.#closeDirect();
    this.#directPeer = null;
    this.signal.sendPeer?.({ op: 'peer', room: this.room, kind: 'switched', transport: 'server', link: this.#serverLink });
  }

  /**
   * Resolves true once one of `receivers` has received RTP (inbound-rtp packetsReceived, W3C
   * webrtc-stats §8.6), or the connection has been up SILENT_PEER_MS without any; false when a
   * newer decision overtook this one, the peer failed, or FLOW_GIVE_UP_MS passed.
   */
  async #flowing(pc: RTCPeerConnection, receivers: () => RTCRtpReceiver[], decision: number): Promise<boolean> {
    const started = Date.now();
    let connectedAt = 0;
    while (decision === this.#decision && !this.closed) {
      const state = pc.connectionState;
      if (state === 'failed' || state === 'closed' || Date.now() - started > FLOW_GIVE_UP_MS) return false;
      if (state === 'connected') {
        connectedAt ||= Date.now();
        for (const receiver of receivers()) {
          const stats = await receiver.getStats();
          for (const report of stats.values()) {
            if (report.type === 'inbound-rtp' && (report as RTCInboundRtpStreamStats).packetsReceived! > 0) return decision === this.#decision;
          }
        }
        if (Date.now() - connectedAt >= SILENT_PEER_MS) return decision === this.#decision;
      }
      await new Promise((resolve) => setTimeout(resolve, FLOW_POLL_MS));
    }
    return false;
  }

  #setPath(path: AudioPath): void {
    if (this.#path === path) return;
    this.#path = path;
    this.emit('transport', path);
  }

  #closeDirect(): void {
    this.#direct?.close();
    this.#direct = null;
  }

  /** The server dropped (or will drop) our server peer: close ours; its next offer gets a fresh one. */
  #closeServerPeer(): void {
    this.#pc.close();
    this.#slotTracks = [];
  }

  #audioTransceivers(): RTCRtpTransceiver[] {
    // In m-line order: m-line 0 is our microphone, then the K slots (docs/media.md).
    return this.#pc.getTransceivers().filter((t) => t.receiver.track.kind === 'audio');
  }

  protected async answerOffer({ sdp, negotiationId, restart }: ServerOffer): Promise<void> {
    if (restart || this.#pc.signalingState === 'closed') {
      // The server replaced our peer (new ICE, new DTLS), or this is a new server peer after a
      // direct link: a fresh PeerConnection, new slot tracks.
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
      if (this.#slotTracks[slot] === undefined && !this.#holdSlots) {
        this.#slotTracks[slot] = t.receiver.track;
        this.emit('track', slot, t.receiver.track);
      }
    });
    await pc.setLocalDescription(await pc.createAnswer());
    await this.#gathered(pc);
    const local = pc.localDescription?.sdp;
    if (local === undefined || this.closed) return;
    this.signal.send({ op: 'media', room: this.room, kind: 'answer', sdp: local, negotiationId });
    if (this.#holdSlots) void this.#awaitServer(this.#decision);
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
