import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
  type RTCIceServer,
  type PeerConfig,
  type RTCRtpTransceiver,
  type MediaStreamTrack,
} from 'werift';
import type { ServerMediaMessage, ServerPeerMessage, TransportMessage, Unstamped } from '../../protocol/index.ts';
import {
  Downsampler48to8,
  G711_PAYLOAD_TYPE,
  OpusEncoder,
  g711EncodeFloat,
  type G711Law,
} from '../../codec/index.ts';
import { VoxError } from '../../errors.ts';
import { clientPeerConfig, keepHostCandidates, waitGathered } from '../../media/peer-config.ts';
import { AUDIO_LEVEL_URI } from '../../media/rtp.ts';
import { isKeyFrameRequest, preventInactiveReuse } from '../../media/werift-adapter.ts';
import { audioLevelOf } from './audio-level.ts';
import { LevelReport } from './level-report.ts';
import { NodeDirectLink } from './node-direct-link.ts';
import { PathSplice } from './path-splice.ts';
import { PcmRecorder } from './pcm-recorder.ts';
import { SlotPlayout, type PlayoutStats } from './slot-playout.ts';
import { DRED_FMTP_PARAMETER } from '../../media/dred-policy.ts';
import type { PcmSource } from './pcm-source.ts';
import { MediaClientBase, type MediaClientEvents, type RemoteCandidate, type ServerOffer } from './media-client-base.ts';
import type { MediaSignalChannel } from './media-signal.ts';


/** The part of RTCConfiguration (W3C webrtc-pc §4.2.1) the Node client applies to its peers. */
export interface NodeRtcConfiguration {
  /** STUN/TURN servers, e.g. `VoxClient.iceServers` (TURN credentials from `ready` / `resumed`). */
  iceServers?: RTCIceServer[];
  /** `relay`: only TURN candidates. Default `all`. */
  iceTransportPolicy?: 'all' | 'relay';
  /**
   * TLS options for `turns:` servers (Node's tls.connect options: `ca` for a private CA or a
   * self-signed TURN certificate, `servername`). Default: Node's trusted CAs.
   */
  turnTlsOptions?: { ca?: string | Buffer; servername?: string; rejectUnauthorized?: boolean };
}

export interface NodeMediaClientOptions {
  room: string;
  /** Where this client's `media` messages go (signalling SDK, or straight to a MediaRoom in tests). */
  signal: MediaSignalChannel;
  /** Local address for ICE. Default 127.0.0.1. */
  bindIp?: string;
  /**
   * Decode received slot audio and keep it per participant: played through a jitter buffer that
   * rebuilds lost frames from in-band FEC or DRED, else conceals them (`playoutStats`). Default true.
   */
  decode?: boolean;
  /**
   * Tell the server (Opus fmtp `x-voxlink-dred=1` in the answer) that this client decodes DRED, so a
   * mix toward it may carry DRED instead of in-band FEC when its loss calls for it (docs/audio.md
   * "DRED"). Default: on when `decode` is on and the codec is Opus.
   */
  dred?: boolean;
  /** Seconds of decoded audio kept per participant. Default 10. */
  recordSeconds?: number;
  /** Offer a camera: answer the server's video m-line sendonly so `sendVideoFrame()` works. Default false. */
  publishVideo?: boolean;
  /**
   * The one audio codec this client supports, as a telephony peer would: `pcmu`/`pcma` answer
   * with G.711 only (RFC 3551, 8 kHz), publish G.711 and decode G.711. Only `mix`/`hybrid` rooms
   * offer G.711. Decoded audio is still kept at 48 kHz. Default `opus`.
   */
  audioCodec?: 'opus' | G711Law;
  /** ICE servers and policy, applied to every peer this client creates (media reconnects included). */
  rtcConfiguration?: NodeRtcConfiguration;
}

export interface PublishOptions {
  /** Opus bitrate, bits/s. Default 24000 (wideband voice). */
  bitrate?: number;
  /** Opus in-band FEC (RFC 7587 §3.3 `useinbandfec`). Default true. */
  inbandFec?: boolean;
}

export interface ReceivedPacket {
  slot: number;
  /** The slot's occupant per the last `slots` message when the packet arrived. */
  participantId: string | null;
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  /** RFC 6464 level from the header extension, or -1. */
  level: number;
  payload: Buffer;
  arrivalMs: number;
}

export interface SlotReceiveStats {
  packets: number;
  /** Missing sequence numbers (forward jumps beyond +1). */
  seqGaps: number;
  /** Packets whose timestamp went backwards while the sequence number went forwards. */
  timestampRegressions: number;
  duplicates: number;
  ssrc: number | null;
}

export interface NodeMediaClientEvents extends MediaClientEvents {
  rtp: [packet: ReceivedPacket];
  offer: [negotiationId: number | undefined];
  /** A video packet from `publisherId` (per the offer's `options.video` mid map). */
  video: [publisherId: string | null, packet: RtpPacket];
  /** The server asked our camera for a key frame (PLI). */
  keyframeRequest: [];
  /**
   * What the decoded audio and `rtp` events come from now: the server's slots, or the direct link
   * to the other participant (p2p/auto rooms; the direct link is slot 0). At a switch the new path
   * is taken once it carries the other participant's audio (docs/media.md "Peer to peer").
   */
  transport: [path: 'direct' | 'server'];
}

/** How often a switch between paths checks whether the new one carries audio. */
const FLOW_POLL_MS = 20;
/** A connected path without packets this long is taken anyway: the other end may be silent (muted, listen-only). */
const SILENT_PEER_MS = 2000;
/** A new path without audio after this long is given up; the server's switch timeout decides what follows. */
const FLOW_GIVE_UP_MS = 20_000;
/**
 * The old path stays open this long after the new one is played: the other end may still play the
 * old one (it switches when its own new path carries audio), so ours keeps sending on it meanwhile.
 */
const OVERLAP_MS = 1000;
/** How long a switch looks for the frame where the two paths meet before it switches anyway (PathSplice). */
const SPLICE_MS = 400;

const SAMPLE_RATE = 48_000;
const FRAME_SAMPLES = 960; // 20 ms at 48 kHz (RFC 7587 §4.2 ptime default)
const FRAME_MS = 20;
/** If the event loop stalls longer than this, skip ahead instead of bursting stale audio. */
const MAX_CATCH_UP_FRAMES = 10;

interface SlotReceiver {
  stats: SlotReceiveStats;
  lastSeq: number;
  lastTs: number;
  /** Decoding through a jitter buffer (null with `decode: false`). */
  decoder: SlotPlayout | null;
  recorder: PcmRecorder | null;
}

/** Adds `name=1` to the fmtp of every Opus payload type of an SDP (a line of its own if it has none). */
function addOpusFmtp(sdp: string, name: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const pts = new Set([...sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000/gim)].map((m) => m[1]!));
  let out = sdp;
  for (const pt of pts) {
    const fmtp = new RegExp(`^(a=fmtp:${pt} [^\r\n]*)`, 'gm');
    if (fmtp.test(out)) out = out.replace(fmtp, (line) => (line.includes(`${name}=`) ? line : `${line};${name}=1`));
    else out = out.replace(new RegExp(`^(a=rtpmap:${pt} opus\\/48000[^\r\n]*)`, 'gim'), `$1${eol}a=fmtp:${pt} ${name}=1`);
  }
  return out;
}

/**
 * The SDK's media part for Node: one werift peer that answers the server's offer, publishes a PCM
 * source encoded with our Opus (with the RFC 6464 level in every packet), and receives the K slot
 * tracks — RTP per slot, and decoded PCM attributed to the participant the `slots` map names.
 * In p2p/auto rooms (with `signal.sendPeer`, joined with `direct: true`) it also connects straight
 * to the other participant (NodeDirectLink) and switches make-before-break as the server decides.
 * Tests and load generators use it as a real client.
 */
export class NodeMediaClient extends MediaClientBase<NodeMediaClientEvents> {
  #pc: RTCPeerConnection;
  readonly #decode: boolean;
  readonly #dred: boolean;
  readonly #bindIp: string;
  readonly #recordSamples: number;
  readonly #slots: SlotReceiver[] = [];
  readonly #byParticipant = new Map<string, PcmRecorder>();
  #mic: RTCRtpTransceiver | null = null;
  #camera: RTCRtpTransceiver | null = null;
  readonly #publishVideo: boolean;
  readonly #audioCodec: 'opus' | G711Law;
  #iceServers: RTCIceServer[];
  readonly #iceTransportPolicy: 'all' | 'relay';
  readonly #turnTlsOptions: NodeRtcConfiguration['turnTlsOptions'];
  #videoSeq = 0;
  /** mid → publisher of the video the server sends on it. */
  #videoMids: Record<string, string> = {};
  readonly #videoListening = new Set<RTCRtpTransceiver>();
  #slotTransceivers = new WeakSet<RTCRtpTransceiver>();
  #levelExtId = 0;
  #publishTimer: NodeJS.Timeout | null = null;
  #encoder: OpusEncoder | null = null;
  #seq = (Math.random() * 0x10000) | 0;
  #ts = (Math.random() * 0x1_0000_0000) >>> 0;
  #firstFrame = true;
  #mixSlot: number | null = null;
  /** Offers that replaced the peer (media reconnects), included in `offersReceived`. */
  restartOffers = 0;
  // p2p/auto rooms (docs/media.md "Peer to peer"): which path plays, the direct link, the switch.
  #path: 'direct' | 'server' = 'server';
  #direct: NodeDirectLink | null = null;
  #directReceiver: SlotReceiver | null = null;
  #directPackets = 0;
  /** We closed the server peer (the room went direct): the server's next offer gets a fresh one. */
  #serverClosed = false;
  /** Server slots that carried RTP on the current server peer. */
  readonly #slotsFlowing = new Set<number>();
  /** Who the direct link carried, and the server's slot assignments since the move to the server began. */
  #directPeer: string | null = null;
  #serverSlots: (string | null)[] = [];
  #serverLink = 0;
  /** Bumped by every `transport`: a switch waiting for audio on an older decision stops. */
  #decision = 0;
  /** The switch in progress, or the last one during its overlap (repeats of the old path are dropped). */
  #splice: { to: 'direct' | 'server'; splice: PathSplice } | null = null;
  readonly #levels = new LevelReport();

  constructor(options: NodeMediaClientOptions) {
    super(options.room, options.signal);
    this.#decode = options.decode ?? true;
    this.#dred = options.dred ?? (this.#decode && (options.audioCodec ?? 'opus') === 'opus');
    this.#recordSamples = Math.round((options.recordSeconds ?? 10) * SAMPLE_RATE);
    this.#bindIp = options.bindIp ?? '127.0.0.1';
    this.#publishVideo = options.publishVideo ?? false;
    this.#audioCodec = options.audioCodec ?? 'opus';
    this.#iceServers = copyIceServers(options.rtcConfiguration?.iceServers ?? []);
    this.#iceTransportPolicy = options.rtcConfiguration?.iceTransportPolicy ?? 'all';
    this.#turnTlsOptions = options.rtcConfiguration?.turnTlsOptions;
    this.#pc = this.#newPeer();
  }

  /** The current PeerConnection (replaced on media reconnect). */
  get pc(): RTCPeerConnection {
    return this.#pc;
  }

  /** The ICE servers the next peer gathers with. */
  get iceServers(): RTCIceServer[] {
    return copyIceServers(this.#iceServers);
  }

  /**
   * Replaces the ICE servers, e.g. with the fresh TURN credentials of a `resumed`
   * (`VoxClient` `ice_servers` event). Every later peer (media reconnect) uses them; the current
   * peer gets them too, for any gathering it has not done yet.
   */
  setIceServers(servers: RTCIceServer[]): void {
    this.#iceServers = copyIceServers(servers);
    if (!this.closed) this.#pc.setConfiguration({ iceServers: copyIceServers(servers) });
  }

  #newPeer(): RTCPeerConnection {
    const pc = new RTCPeerConnection(this.#peerConfig());
    pc.connectionStateChange.subscribe((state) => {
      // ICE or DTLS gave up: ask the server for a fresh peer (it answers with a restart offer).
      if (state === 'failed' && pc === this.#pc) this.requestRestart('failed');
    });
    return pc;
  }

  /** werift configuration of every peer this client creates: the server's and the direct link's. */
  #peerConfig(): Partial<PeerConfig> {
    const config = clientPeerConfig(this.#bindIp);
    config.iceServers = copyIceServers(this.#iceServers);
    config.iceTransportPolicy = this.#iceTransportPolicy;
    if (this.#turnTlsOptions !== undefined) config.turnTlsOptions = { ...this.#turnTlsOptions };
    const law = this.#audioCodec;
    if (law !== 'opus') {
      const g711 = new RTCRtpCodecParameters({
        mimeType: law === 'pcmu' ? 'audio/PCMU' : 'audio/PCMA',
        clockRate: 8000,
        channels: 1,
        payloadType: G711_PAYLOAD_TYPE[law],
      });
      config.codecs = { ...config.codecs, audio: [g711] };
    }
    return config;
  }

  /**
   * Asks for one mixed audio stream instead of K slots (a weak link: one stream's bandwidth), or
   * back to slots. The server replaces this client's peer with the new layout (a restart offer
   * follows, answered automatically); `sfu` rooms only, others refuse with MEDIA_UNSUPPORTED.
   */
  setAudioLayout(layout: 'mix' | 'slots'): void {
    if (this.closed) return;
    this.signal.send({ op: 'media', room: this.room, kind: 'ice_restart', options: { audio: layout } });
  }

  /** `mix`/`hybrid` rooms say which slot carries the server mix (the last audio m-line). */
  protected override offerArrived(offer: ServerOffer): void {
    const mixSlot = offer.options?.mixSlot;
    this.#mixSlot = typeof mixSlot === 'number' ? mixSlot : null;
  }

  protected addRemoteCandidate(c: RemoteCandidate): Promise<void> {
    return this.#pc.addIceCandidate({
      candidate: c.candidate,
      sdpMid: c.sdpMid ?? undefined,
      sdpMLineIndex: c.sdpMLineIndex ?? undefined,
    });
  }

  /**
   * Resolves once ICE and DTLS are up. A failed attempt is not the end: the client asks for a
   * media reconnect and keeps waiting for the fresh peer, until `timeoutMs`.
   */
  async connected(timeoutMs = 10_000): Promise<void> {
    const end = performance.now() + timeoutMs;
    // Either path: the server peer, or in a p2p/auto room the direct link.
    while (!(this.#pc.connectionState === 'connected' && !this.#serverClosed) && !this.#direct?.connected) {
      if (this.closed) throw new VoxError('CLOSED', 'media client closed');
      if (performance.now() > end) {
        throw new VoxError('TIMEOUT', `media not connected after ${timeoutMs} ms (${this.#direct ? `direct ${this.#direct.pc.connectionState}` : this.#pc.connectionState})`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Starts sending `source` (48 kHz) as 20 ms Opus frames — or G.711 ones — on the microphone m-line. */
  publish(source: PcmSource, options: PublishOptions = {}): void {
    if (this.#mic === null && this.#path !== 'direct' && this.#direct === null) {
      throw new VoxError('MEDIA_NEGOTIATION_FAILED', 'publish() before the first offer was answered (or a direct link was set up)');
    }
    this.unpublish();
    const law = this.#audioCodec;
    let encode: (frame: Float32Array) => Uint8Array;
    if (law === 'opus') {
      const encoder = new OpusEncoder({
        sampleRate: SAMPLE_RATE,
        channels: 1,
        bitrate: options.bitrate ?? 24_000,
        inbandFec: options.inbandFec ?? true,
      });
      this.#encoder = encoder;
      encode = (frame) => encoder.encode(frame);
    } else {
      const down = new Downsampler48to8();
      const narrow = new Float32Array(160);
      const packet = new Uint8Array(160);
      encode = (frame) => {
        down.process(frame, narrow, FRAME_SAMPLES);
        g711EncodeFloat(law, narrow, packet);
        return packet;
      };
    }
    const frame = new Float32Array(FRAME_SAMPLES);
    const start = performance.now();
    let sent = 0;
    this.#publishTimer = setInterval(() => {
      const due = Math.floor((performance.now() - start) / FRAME_MS);
      if (due - sent > MAX_CATCH_UP_FRAMES) {
        this.skipFrames(due - sent - 1);
        sent = due - 1;
      }
      while (sent < due) {
        source.read(frame);
        this.sendAudioFrame(encode(frame), audioLevelOf(frame));
        sent++;
      }
    }, 5);
  }

  /**
   * Sends one 20 ms Opus (or, for a G.711 client, 160-byte G.711) frame on the microphone m-line with
   * its RFC 6464 level (0–127). For callers with their own clock and payloads (load generators);
   * `publish()` uses it too.
   */
  sendAudioFrame(payload: Uint8Array, level: number): void {
    if (this.closed) return;
    const mic = this.#serverClosed ? null : this.#mic;
    const direct = this.#direct;
    const payloadType = this.#audioCodec === 'opus' ? 111 : G711_PAYLOAD_TYPE[this.#audioCodec];
    if (mic === null && direct === null) return;
    if (mic !== null) {
      const header = new RtpHeader({
        payloadType,
        sequenceNumber: this.#seq,
        timestamp: this.#ts,
        marker: this.#firstFrame,
        extensions: this.#levelExtId > 0 ? [{ id: this.#levelExtId, payload: Buffer.from([level & 0x7f]) }] : [],
      });
      mic.sender.sendRtp(new RtpPacket(header, Buffer.from(payload))).catch(() => undefined);
    }
    // The server cannot drop a muted participant's audio on a direct link: we do not send it.
    if (direct !== null && !this.#selfMuted) {
      direct.sendFrame(payload, this.#seq, this.#ts, this.#firstFrame, level, payloadType);
      const report = this.#levels.addFrame(level, FRAME_MS);
      if (report >= 0) this.signal.sendPeer?.({ op: 'peer', room: this.room, kind: 'level', to: direct.peer, link: direct.link, level: report });
    }
    this.#firstFrame = false;
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#ts = (this.#ts + this.#frameTicks) >>> 0;
  }

  get #selfMuted(): boolean {
    return this.selfId !== null && this.serverMuted.has(this.selfId);
  }

  /** Where the decoded audio and `rtp` events come from now: the server's slots or the direct link (p2p/auto rooms). */
  get transport(): 'direct' | 'server' {
    return this.#path;
  }

  /** The direct link's PeerConnection while there is one (p2p/auto rooms). */
  get directPc(): RTCPeerConnection | null {
    return this.#direct?.pc ?? null;
  }

  /** Advances the RTP clock over frames that were never sent (a stall), so timestamps stay wall-clock true. */
  skipFrames(frames: number): void {
    this.#ts = (this.#ts + frames * this.#frameTicks) >>> 0;
  }

  /** RTP timestamp units per 20 ms: 960 on Opus's 48 kHz clock (RFC 7587 §4.1), 160 on G.711's 8 kHz. */
  get #frameTicks(): number {
    return this.#audioCodec === 'opus' ? FRAME_SAMPLES : 160;
  }

  unpublish(): void {
    if (this.#publishTimer !== null) clearInterval(this.#publishTimer);
    this.#publishTimer = null;
    this.#encoder?.close();
    this.#encoder = null;
  }

  /** The last `seconds` of decoded audio received from `participantId` (through any slot). */
  audioFrom(participantId: string, seconds?: number): Float32Array {
    const r = this.#byParticipant.get(participantId);
    if (r === undefined) return new Float32Array(0);
    return r.recent(seconds === undefined ? undefined : Math.round(seconds * SAMPLE_RATE));
  }

  /** The last `seconds` of decoded audio of slot k, whoever was in it. */
  audioOfSlot(slot: number, seconds?: number): Float32Array {
    const r = this.#slots[slot]?.recorder;
    if (r == null) return new Float32Array(0);
    return r.recent(seconds === undefined ? undefined : Math.round(seconds * SAMPLE_RATE));
  }

  /** Participants heard so far (decoded audio exists for them). */
  heard(): string[] {
    return [...this.#byParticipant.keys()];
  }

  clearRecordings(): void {
    for (const r of this.#byParticipant.values()) r.clear();
    for (const s of this.#slots) s.recorder?.clear();
  }

  /**
   * How slot k's received audio was played (null without `decode`): frames by kind, and the lost ones
   * rebuilt from FEC or DRED or concealed (`recoveredFrames`). The direct link's are `directPlayoutStats()`.
   */
  playoutStats(slot: number): PlayoutStats | null {
    return this.#slots[slot]?.decoder?.stats() ?? null;
  }

  /** The direct link's playout (p2p/auto rooms), or null. */
  directPlayoutStats(): PlayoutStats | null {
    return this.#directReceiver?.decoder?.stats() ?? null;
  }

  slotStats(slot: number): SlotReceiveStats | undefined {
    const s = this.#slots[slot];
    return s === undefined ? undefined : { ...s.stats };
  }

  /** The slot carrying the server mix (`mix` rooms: 0; `hybrid`: K), or null in `sfu` rooms. */
  get mixSlot(): number | null {
    return this.#mixSlot;
  }

  get slotCount(): number {
    return this.#slots.length;
  }

  async close(): Promise<void> {
    if (!this.markClosed()) return;
    this.unpublish();
    for (const s of this.#slots) s.decoder?.close();
    this.#closeDirect();
    await this.#pc.close();
  }

  protected override muteArrived(participantId: string): void {
    if (participantId === this.selfId) this.#levels.reset();
  }

  /**
   * p2p/auto rooms: follows the server's `transport` decisions make-before-break. The new path is
   * set up while the old one plays; once it carries the other participant's audio (or has been
   * connected SILENT_PEER_MS without any: a silent peer) it plays, the old path keeps sending for
   * OVERLAP_MS, then closes and the server is told (`peer` switched). Without `signal.sendPeer`
   * the client stays on the server (the base class reports `switched` at once).
   */
  protected override async handlePeer(message: Unstamped<ServerPeerMessage | TransportMessage>): Promise<void> {
    const sendPeer = this.signal.sendPeer?.bind(this.signal);
    if (!sendPeer) return super.handlePeer(message);
    if (message.op === 'peer') {
      await this.#direct?.handle(message);
      return;
    }
    const decision = ++this.#decision;
    this.#splice = null;
    if (message.transport === 'server') {
      this.#serverLink = message.link;
      if (this.#path === 'server') {
        this.#closeDirect();
        sendPeer({ op: 'peer', room: this.room, kind: 'switched', transport: 'server', link: message.link });
        return;
      }
      this.#serverSlots = [];
      // The server's slot of the peer we hear directly must carry audio (a newcomer's may come first).
      const flowing = (): boolean | null => {
        // Until the server's offer arrives our old server peer is closed: wait for the fresh one.
        if (this.#serverClosed) return false;
        // A failed server peer is replaced (media reconnect): keep waiting for the fresh one.
        if (this.#pc.connectionState === 'failed') return false;
        const peer = this.#directPeer;
        const slot = peer === null ? -1 : this.#serverSlots.indexOf(peer);
        return peer === null ? this.#slotsFlowing.size > 0 : slot >= 0 && this.#slotsFlowing.has(slot);
      };
      await this.#awaitFlow(decision, () => this.#pc, flowing);
      // The room is on the server now, flowing or not (FLOW_GIVE_UP_MS): the direct link is going away.
      if (decision !== this.#decision || this.closed) return;
      await this.#spliceTo('server', this.#directPeer, decision);
      await sleep(OVERLAP_MS);
      if (decision !== this.#decision) return;
      this.#splice = null;
      this.#closeDirect();
      this.#directPeer = null;
      sendPeer({ op: 'peer', room: this.room, kind: 'switched', transport: 'server', link: this.#serverLink });
      return;
    }
    if (message.peer === undefined) {
      // Alone in the room: the server has no peer for us either.
      this.#closeDirect();
      this.#closeServerPeer();
      this.#setPath('direct');
      return;
    }
    if (this.#direct?.link !== message.link) this.#openDirect(message.peer, message.link, message.offerer === true, sendPeer);
    const link = this.#direct!;
    const flowing = (): boolean | null => (link.closed || link.pc.connectionState === 'failed' ? null : this.#directPackets > 0);
    if (!(await this.#awaitFlow(decision, () => link.pc, flowing)) || this.#direct !== link) return;
    this.#directPeer = link.peer;
    await this.#spliceTo('direct', link.peer, decision);
    if (decision !== this.#decision || this.#direct !== link) return;
    await sleep(OVERLAP_MS);
    if (decision !== this.#decision || this.#direct !== link) return;
    this.#splice = null;
    this.#closeServerPeer();
    sendPeer({ op: 'peer', room: this.room, kind: 'switched', transport: 'direct', link: link.link });
  }

  protected override slotsArrived(slots: readonly { slot: number; participantId: string | null }[]): void {
    for (const { slot, participantId } of slots) this.#serverSlots[slot] = participantId;
  }

  /**
   * Resolves true once `flowing()` says the new path carries audio, or its peer has been connected
   * SILENT_PEER_MS; false when a newer decision overtook this one, `flowing()` gave up (null) or
   * FLOW_GIVE_UP_MS passed.
   */
  async #awaitFlow(decision: number, pc: () => RTCPeerConnection, flowing: () => boolean | null): Promise<boolean> {
    const started = performance.now();
    let connectedAt = 0;
    while (decision === this.#decision && !this.closed) {
      const state = flowing();
      if (state === null || performance.now() - started > FLOW_GIVE_UP_MS) return false;
      if (state) return true;
      if (pc().connectionState === 'connected') {
        connectedAt ||= performance.now();
        if (performance.now() - connectedAt >= SILENT_PEER_MS) return true;
      }
      await sleep(FLOW_POLL_MS);
    }
    return false;
  }

  #openDirect(peer: string, link: number, offerer: boolean, send: NonNullable<MediaSignalChannel['sendPeer']>): void {
    this.#closeDirect();
    this.#levels.reset();
    this.#directPackets = 0;
    const receiver = this.#newReceiver();
    receiver.recorder = this.#slotReceiver(0).recorder;
    this.#directReceiver = receiver;
    const direct: NodeDirectLink = new NodeDirectLink({
      room: this.room,
      peer,
      link,
      offerer,
      config: this.#peerConfig(),
      bindIp: this.#bindIp,
      send,
      onRtp: (rtp, extensions) => {
        if (this.#direct !== direct) return;
        this.#directPackets++;
        // The other end muted by the server: its audio is not played (no server in between to drop it).
        if (this.serverMuted.has(peer)) return;
        this.#route('direct', peer, rtp.payload, () => this.#receive(0, receiver, rtp, extensions, peer));
      },
    });
    this.#direct = direct;
  }

  #closeDirect(): void {
    const direct = this.#direct;
    if (direct === null) return;
    this.#direct = null;
    this.#directReceiver?.decoder?.close();
    this.#directReceiver = null;
    void direct.close();
  }

  /** The server dropped (or will drop) our server peer: close ours; its next offer gets a fresh one. */
  #closeServerPeer(): void {
    if (this.#serverClosed) return;
    this.#serverClosed = true;
    this.#mic = null;
    this.#slotsFlowing.clear();
    void this.#pc.close().catch(() => undefined);
  }

  /**
   * One packet of `path`: played when that path plays, held or dropped while a splice decides
   * where the other participant's audio continues (PathSplice), dropped otherwise.
   */
  #route(path: 'direct' | 'server', participantId: string | null, payload: Buffer, play: () => void): void {
    const splice = this.#splice;
    if (path === this.#path) {
      if (splice?.to === path) {
        if (!splice.splice.isRepeat(participantId, payload)) play();
        return;
      }
      play();
      splice?.splice.oldPlayed(participantId, payload);
      return;
    }
    if (splice?.to === path) splice.splice.newArrived(participantId, payload, play);
  }

  /** Plays `to` from the frame where the other participant's audio continues on it (PathSplice), at most SPLICE_MS from now. */
  async #spliceTo(to: 'direct' | 'server', peer: string | null, decision: number): Promise<void> {
    if (peer === null || this.#path === to) {
      this.#setPath(to);
      return;
    }
    const splice = new PathSplice(peer, () => {
      if (decision === this.#decision) this.#setPath(to);
    });
    this.#splice = { to, splice };
    const timer = setTimeout(() => splice.expire(), SPLICE_MS);
    await splice.switched;
    clearTimeout(timer);
  }

  #setPath(path: 'direct' | 'server'): void {
    if (this.#path === path) return;
    this.#path = path;
    this.emit('transport', path);
  }

  protected async answerOffer({ sdp, negotiationId, restart, options }: ServerOffer): Promise<void> {
    const videoMids = (options?.video ?? {}) as Record<string, string>;
    if (restart || this.#serverClosed) {
      if (restart) this.restartOffers++;
      // The server replaced our peer (new ICE, new DTLS), or this is a new server peer after a
      // direct link: start a fresh PeerConnection too.
      this.#serverClosed = false;
      this.#slotsFlowing.clear();
      const old = this.#pc;
      this.#pc = this.#newPeer();
      this.#mic = null;
      this.#camera = null;
      this.#videoListening.clear();
      this.#slotTransceivers = new WeakSet();
      for (const r of this.#slots) r.lastSeq = -1;
      void old.close().catch(() => undefined);
    }
    this.#videoMids = videoMids;
    this.emit('offer', negotiationId);
    // werift 0.24 lets a new remote m-line take over any transceiver negotiated `inactive`
    // (transceiverManager "reuse inactive"), which would scramble the m-line → slot mapping.
    preventInactiveReuse(this.#pc);
    await this.#pc.setRemoteDescription({ type: 'offer', sdp });
    const transceivers = [...this.#pc.getTransceivers()].sort((a, b) => (a.mLineIndex ?? 0) - (b.mLineIndex ?? 0));
    let audioIndex = 0;
    for (const t of transceivers) {
      if (t.kind === 'audio') {
        if (audioIndex === 0) {
          this.#setupMic(t);
        } else {
          this.#setupSlot(t, audioIndex - 1);
        }
        audioIndex++;
      } else if (t.offerDirection === 'sendonly') {
        // The server receives on it: our camera, if we publish one.
        t.setDirection(this.#publishVideo ? 'sendonly' : 'inactive');
        if (this.#publishVideo && this.#camera !== t) {
          this.#camera = t;
          t.sender.onPictureLossIndication.subscribe(() => this.emit('keyframeRequest'));
          // werift 0.24 routes PSFB by sender SSRC first (RtpRouter.routeRtcp), so a PLI/FIR from
          // the server lands on this m-line's receiver when the server listed an SSRC for it.
          t.receiver.onRtcp.subscribe((packet) => {
            if (isKeyFrameRequest(packet)) this.emit('keyframeRequest');
          });
        }
      } else {
        t.setDirection('recvonly');
        this.#listenVideo(t);
      }
    }
    const answer = await this.#pc.createAnswer();
    await this.#pc.setLocalDescription(answer);
    await waitGathered(this.#pc);
    const local = this.#pc.localDescription?.sdp;
    if (local === undefined || this.closed) return;
    const answerSdp = keepHostCandidates(local, this.#bindIp);
    this.signal.send({
      op: 'media',
      room: this.room,
      kind: 'answer',
      sdp: this.#dred ? addOpusFmtp(answerSdp, DRED_FMTP_PARAMETER) : answerSdp,
      negotiationId,
    });
  }

  /**
   * Sends one video packet (any payload: the server forwards video without looking inside) on the
   * camera m-line. `timestamp` is the 90 kHz RTP clock (RFC 7741 §4.1 for VP8).
   */
  sendVideoPacket(payload: Uint8Array, timestamp: number, marker: boolean): void {
    const camera = this.#camera;
    if (camera === null || this.closed) return;
    const header = new RtpHeader({ payloadType: 96, sequenceNumber: this.#videoSeq, timestamp: timestamp >>> 0, marker });
    this.#videoSeq = (this.#videoSeq + 1) & 0xffff;
    camera.sender.sendRtp(new RtpPacket(header, Buffer.from(payload))).catch(() => undefined);
  }

  #listenVideo(t: RTCRtpTransceiver): void {
    if (this.#videoListening.has(t)) return;
    this.#videoListening.add(t);
    const listen = (track: MediaStreamTrack): void => {
      track.onReceiveRtp.subscribe((rtp) => this.emit('video', this.#videoMids[t.mid ?? ''] ?? null, rtp));
    };
    for (const track of t.receiver.tracks) listen(track);
    t.onTrack.subscribe(listen);
  }

  #setupMic(t: RTCRtpTransceiver): void {
    // werift stores the reverse of the remote direction: 'sendonly' = the server receives our mic.
    t.setDirection('sendonly');
    if (this.#mic === t) return;
    this.#mic = t;
    this.#levelExtId = t.headerExtensions.find((e) => e.uri === AUDIO_LEVEL_URI)?.id ?? 0;
  }

  #setupSlot(t: RTCRtpTransceiver, slot: number): void {
    t.setDirection('recvonly');
    if (this.#slotTransceivers.has(t)) return;
    this.#slotTransceivers.add(t);
    const r = this.#slotReceiver(slot);
    const pc = this.#pc;
    const listen = (track: MediaStreamTrack): void => {
      track.onReceiveRtp.subscribe((rtp, extensions) => {
        if (pc !== this.#pc) return;
        this.#slotsFlowing.add(slot);
        // While the direct link plays (p2p/auto rooms), the server's slots are set up but not played.
        const participantId = this.slotMap.occupant(slot);
        this.#route('server', participantId, rtp.payload, () => this.#receive(slot, r, rtp, extensions, participantId));
      });
    };
    // werift creates the remote track inside setRemoteDescription(), before we get here.
    for (const track of t.receiver.tracks) listen(track);
    t.onTrack.subscribe(listen);
  }

  #slotReceiver(slot: number): SlotReceiver {
    let receiver = this.#slots[slot];
    if (receiver === undefined) {
      receiver = this.#newReceiver();
      this.#slots[slot] = receiver;
    }
    return receiver;
  }

  #newReceiver(): SlotReceiver {
    return {
      stats: { packets: 0, seqGaps: 0, timestampRegressions: 0, duplicates: 0, ssrc: null },
      lastSeq: -1,
      lastTs: 0,
      decoder: this.#decode ? new SlotPlayout(this.#audioCodec) : null,
      recorder: this.#decode ? new PcmRecorder(this.#recordSamples) : null,
    };
  }

  /** One played packet of slot `slot` (or the direct link, as slot 0) from `participantId`: stats, `rtp` event, decoded audio. */
  #receive(slot: number, r: SlotReceiver, rtp: RtpPacket, extensions: Record<string, unknown> | undefined, participantId: string | null): void {
    const { sequenceNumber: seq, timestamp: ts } = rtp.header;
    const st = r.stats;
    st.packets++;
    st.ssrc = rtp.header.ssrc;
    if (r.lastSeq >= 0) {
      const d = (seq - r.lastSeq) & 0xffff;
      if (d === 0) {
        st.duplicates++;
        return;
      }
      if (d < 0x8000) {
        st.seqGaps += d - 1;
        if (((ts - r.lastTs) >>> 0) >= 0x8000_0000) st.timestampRegressions++;
        r.lastSeq = seq;
        r.lastTs = ts;
      }
    } else {
      r.lastSeq = seq;
      r.lastTs = ts;
    }
    const levelExt = extensions?.[AUDIO_LEVEL_URI] as { level: number } | undefined;
    this.emit('rtp', {
      slot,
      participantId,
      ssrc: rtp.header.ssrc,
      sequenceNumber: seq,
      timestamp: ts,
      marker: rtp.header.marker,
      level: levelExt?.level ?? -1,
      payload: rtp.payload,
      arrivalMs: performance.now(),
    });
    const recorder = r.recorder;
    if (r.decoder === null || recorder === null) return;
    let rec: PcmRecorder | undefined;
    if (participantId !== null) {
      rec = this.#byParticipant.get(participantId);
      if (rec === undefined) this.#byParticipant.set(participantId, (rec = new PcmRecorder(this.#recordSamples)));
    }
    // Every frame up to this packet: lost ones rebuilt (FEC, DRED) or concealed; a corrupt packet is concealed.
    r.decoder.receive(rtp.header.ssrc, rtp.payload, seq, ts, performance.now(), (pcm) => {
      recorder.append(pcm);
      rec?.append(pcm);
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function copyIceServers(servers: readonly RTCIceServer[]): RTCIceServer[] {
  return servers.map((s) => ({ ...s, urls: Array.isArray(s.urls) ? [...s.urls] : s.urls }));
}
