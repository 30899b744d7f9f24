import { RtpPacket, type Extensions, type RTCPeerConnection } from 'werift';
import type { ClientMediaMessage, ServerMediaMessage } from '../protocol/index.ts';
import type { MediaGrants, MediaParticipant, MediaRoomMode, RecordingState } from '../rooms/media-contract.ts';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import type { RecordingContinuation } from '../recording/layout.ts';
import { inboundAudio, type AudioTap, type InboundAudio } from './audio-tap.ts';
import { MixRoomAudio, type MixRoomAudioOptions, type MixRoomAudioStats, type MixRoomMode } from './mix-room.ts';
import { closePeer, negotiatedCodec, openPeer, peerOutputs, type Peer } from './peer.ts';
import { keepBundleTagOpen, keepHostCandidates, mediaPeerConfig, waitGathered } from './peer-config.ts';
import { portAllocator, type PortAllocator } from './port-allocator.ts';
import { RecordingTap } from './recording-tap.ts';
import { ROOM_MODES, type RoomModeRow } from './room-modes.ts';
import { AUDIO_LEVEL_SILENCE, AUDIO_LEVEL_URI } from './rtp.ts';
import { SlotForwarder } from './slot-forwarder.ts';
import type { SlotHeader } from './slot-stream.ts';
import { asBuffer } from './slot-output.ts';
import { SpeakerDetector, type SpeakerDetectorOptions } from './speaker-detector.ts';
import { SpillFabric, type RemoteMember, type SpillLinkEnd, type SpillStats } from './spill.ts';
import { VideoForwarder } from './video.ts';
import { addReceiveStats, addSrtpRejects, emptySrtpRejects, installRtpHeaderGuard, type ReceiveStats, type SrtpRejects } from './werift-adapter.ts';

export type { ClientMediaMessage, ServerMediaMessage };
export type { MediaGrants, MediaParticipant, MediaRoomMode, RecordingState };
export type { RemoteMember, SpillLinkEnd, SpillStats };

export interface MediaRoomOptions {
  roomId: string;
  /** K: outgoing audio tracks per subscriber. Default 3 in config. */
  slots: number;
  /** IP put into ICE host candidates. */
  announcedIp: string;
  /** Inclusive UDP port range for ICE (one port per participant; see docs/media.md). */
  rtcMinPort: number;
  rtcMaxPort: number;
  /**
   * `sfu`: K forwarded slots per subscriber. `mix`: one outgoing audio track per subscriber carrying
   * a server mix (N−1 for active speakers). `hybrid`: K slots plus one mix track with everyone the
   * slots do not carry. `mix`/`hybrid` also negotiate PCMU/PCMA for peers without Opus. What each
   * mode has is its row in room-modes.ts.
   */
  mode: MediaRoomMode;
  /** Mixer tuning for `mix`/`hybrid` rooms (jitter buffer, limiter, VAD, clock, Opus profile; defaults in docs/audio.md). */
  mixing?: Pick<MixRoomAudioOptions, 'mixer' | 'clock' | 'opusProfile' | 'codecs'>;
  /** Advertise Opus DTX. Default false. */
  opusDtx?: boolean;
  /** Speaker detection tuning (defaults in SpeakerDetector). */
  speaker?: SpeakerDetectorOptions;
  /** How often the ranking is re-evaluated and slots re-mapped, ms. Default 100. */
  rankIntervalMs?: number;
  /** ICE servers (TURN) for the server's peers. */
  iceServers?: { urls: string; username?: string; credential?: string }[];
  /** Local address the peers' UDP sockets bind to. Default: all interfaces. */
  bindIp?: string;
  /** Forwarded audio through VoxLink's own SRTP straight onto the socket (docs/media.md "Fast path"). Default true. */
  fastSrtp?: boolean;
  /**
   * One UDP port per worker thread for every peer (config `media.udpPort`; docs/media.md "Transport"):
   * the lowest free port of base … base + count − 1. Unset: a port per peer from rtcMinPort…rtcMaxPort.
   */
  udpPort?: { base: number; count: number };
  /** RED and audio NACK (docs/audio.md "Resilience"); defaults: all on. */
  resilience?: import('./red-output.ts').ResilienceOptions;
  /** Folder recordings are written to (config `recording.dir`); unset → `record` fails with RECORDING_UNAVAILABLE. */
  recordingDir?: string;
  /** Recordings roll into a new segment every this many ms (config `recording.segmentSeconds`; 0/unset: one segment). */
  recordingSegmentMs?: number;
  /**
   * This room is one shard of a room spread over several workers (docs/media.md "Rooms over
   * several workers"): `home` ranks the speakers and records; the others take its ranking.
   */
  spill?: { shard: number; home: boolean };
}

export type MediaRoomEvent =
  | { to: 'participant'; participantId: string; message: ServerMediaMessage }
  | { to: 'room'; message: ServerMediaMessage };

export interface MediaRoomStats {
  participants: number;
  /**
   * werift peers the room holds open: its participants', plus joins and media reconnects under
   * way and peers still closing. 0 after everyone left (a leave during a join included).
   */
  peers?: number;
  /** Of those, peers holding their own UDP port from the range (`rtcMinPort`…`rtcMaxPort`); peers on the worker's shared port hold none. */
  portsInUse?: number;
  packetsIn: number;
  packetsOut: number;
  /** Of packetsOut: audio sent on the fast path (VoxLink's SRTP, docs/media.md "Fast path"). */
  packetsOutFast?: number;
  /** Inbound RTP and RTCP packets VoxLink's SRTP unprotected (the fast receive path), all peers. */
  packetsInFast?: number;
  /** Inbound SRTP/SRTCP the fast receive path refused, by reason; none of it reached a track, the mixer or the recorder. */
  srtpRejected?: SrtpRejects;
  bytesIn: number;
  bytesOut: number;
  /** Upstream loss seen on publishers' audio, percent (RFC 3550 §6.4.1 cumulative lost / expected). */
  lossPct: number;
  /** Mean interarrival jitter of publishers' audio (RFC 3550 §6.4.1), ms. */
  jitterMs: number;
  /** Mean round-trip time to subscribers from their RTCP RR (RFC 3550 §6.4.1 LSR/DLSR), ms. */
  rttMs: number;
  slotSwitches: number;
  /** Offers the room has sent (initial ones, media reconnects, video renegotiations). */
  offers: number;
  /** Media reconnects: peers replaced after `ice_restart`. */
  reconnects: number;
  /** Inbound RTP the room refused: not allowed to publish, muted, or malformed. */
  packetsDropped: number;
  /** `mix`/`hybrid` rooms: the mixer's counters (late ticks, encodes, concealment). */
  mix?: MixRoomAudioStats;
  /** The running recording: its id and the bytes its files hold so far. */
  recording?: { id: string; bytes: number };
  /** A room over several workers: this shard's links and counters. */
  spill?: SpillStats;
}

export interface MediaRoom {
  join(p: MediaParticipant): Promise<void>;
  leave(participantId: string): Promise<void>;
  signal(participantId: string, message: ClientMediaMessage): Promise<void>;
  setMuted(participantId: string, muted: boolean): Promise<void>;
  /**
   * Starts or stops recording the room (docs/recording.md). `start` while recording returns the
   * running one; `stop` while not recording returns null. Closing the room stops it too.
   */
  record(action: 'start' | 'stop', byParticipantId: string, continues?: RecordingContinuation): Promise<RecordingState | null>;
  stats(): MediaRoomStats;
  /** Participants on the room's other workers: added or updated (mute), and removed. */
  setRemoteMembers?(add: readonly RemoteMember[], remove: readonly string[]): void;
  /** Links this shard to another worker of the room (one end of each direction); `unlinkShard` undoes it. */
  linkShard?(end: SpillLinkEnd): void;
  unlinkShard?(shard: number): void;
  close(): Promise<void>;
}

const log = logger('media-room');

/** RFC 6464 level (−dBov) → the protocol's linear 0…1 scale (`speaking.level`). */
function linearLevel(level: number): number {
  if (level >= AUDIO_LEVEL_SILENCE) return 0;
  return Math.round(10 ** (-level / 20) * 1000) / 1000;
}

/** A join in progress (`MediaRoom.#joining`). */
interface PendingJoin {
  /** Set by `leave()`: the join closes its peer as soon as it has one. */
  cancelled: boolean;
  /** Resolves when the join has either entered the room or closed its peer. */
  readonly settled: Promise<void>;
}

/**
 * Host candidates gathered, or the peer closed meanwhile (the participant left during its offer:
 * a closed werift peer never completes gathering, and the join would hang).
 */
function gatheredOrClosed(pc: RTCPeerConnection): Promise<void> {
  if (pc.signalingState === 'closed') return Promise.resolve();
  let unsubscribe = (): void => undefined;
  const closed = new Promise<void>((resolve) => {
    const { unSubscribe } = pc.signalingStateChange.subscribe((state) => {
      if (state === 'closed') resolve();
    });
    unsubscribe = unSubscribe;
  });
  return Promise.race([waitGathered(pc), closed]).finally(() => unsubscribe());
}

interface Participant {
  readonly id: string;
  /** Whose voice (token `sub`, display name): recordings name their files and tags with it. */
  readonly userId: string | undefined;
  readonly name: string;
  readonly grants: MediaGrants;
  /** Replaced on media reconnect (`ice_restart`). */
  peer: Peer;
  muted: boolean;
  /** What the peer's answer negotiated for audio: a G.711 publisher is mixed, never forwarded as a slot. */
  codec: 'opus' | 'pcmu' | 'pcma';
  negotiationId: number;
  negotiating: Promise<void>;
  restarting: boolean;
  /**
   * Receives one mixed track instead of K slots: always in modes without slots; in `sfu` rooms
   * when the subscriber asked for it (`ice_restart` with `options.audio = 'mix'`, e.g. a weak link).
   */
  mixOnly: boolean;
}

/**
 * A media room inside a worker, as a composition (docs/architecture.md): one werift peer per
 * participant (peer.ts), the speaker detector, video forwarding (video.ts), and the audio taps its
 * mode's row names (room-modes.ts): the slot forwarder, the mixer, the recorder. Inbound audio is
 * checked here once, then handed to every tap.
 */
export function createMediaRoom(options: MediaRoomOptions, onEvent: (e: MediaRoomEvent) => void): MediaRoom {
  return new ComposedMediaRoom(options, onEvent);
}

class ComposedMediaRoom implements MediaRoom {
  readonly #options: MediaRoomOptions;
  readonly #mode: RoomModeRow;
  readonly #emit: (e: MediaRoomEvent) => void;
  readonly #participants = new Map<string, Participant>();
  readonly #detector: SpeakerDetector;
  readonly #video: VideoForwarder;
  readonly #timer: NodeJS.Timeout;
  readonly #ports: PortAllocator;
  /** The slot forwarder tap, in modes with slots. */
  readonly #forwarder: SlotForwarder | null;
  /** The mixer tap: from the start in mixing modes; in `sfu` rooms only while a subscriber asked for a mix. */
  #mix: MixRoomAudio | null = null;
  /** The recorder tap while recording. */
  #recording: RecordingTap | null = null;
  /** The taps every accepted inbound audio packet goes to, in this order: mixer, recorder, forwarder. */
  #taps: AudioTap[] = [];
  readonly #inbound = inboundAudio();
  readonly #mixHeader: SlotHeader = { ssrc: 0, sequenceNumber: 0, timestamp: 0, marker: false };
  readonly #eligible = (id: string): boolean => {
    const p = this.#participants.get(id);
    // A G.711 publisher is never forwarded as a slot (Opus subscribers could not decode it): it is mixed.
    if (p !== undefined) return p.grants.publish && !p.muted && p.codec === 'opus';
    const r = this.#spill?.remote(id);
    return r !== undefined && r.publish && !r.muted;
  };
  #membershipChanged = false;
  /** Set when this room is one shard of a room over several workers. */
  readonly #spill: SpillFabric | null;
  /** A spill shard's copy of the home's ranking (the home ranks from its own detector). */
  #homeRanking: readonly string[] = [];
  #homeReranked = false;
  #rankingSentAt = 0;
  readonly #sendable: string[] = [];
  /**
   * Joins between `join()` and the participant entering `#participants` (its port claim and
   * peer set-up): a `leave()` meanwhile cancels the join, which then closes the peer it made.
   */
  readonly #joining = new Map<string, PendingJoin>();
  /** Every werift peer this room has open (joining, joined, or being replaced), for `stats().peers`. */
  readonly #peers = new Set<Peer>();
  readonly #closingPeers = new Set<Peer>();
  #closed = false;
  #packetsIn = 0;
  #bytesIn = 0;
  #packetsDropped = 0;
  #offers = 0;
  #reconnects = 0;
  /** Outputs of participants who left: their counters still belong to the room's totals. */
  #retiredOut = { packets: 0, bytes: 0, fastPackets: 0 };
  /** The same for the fast receive path of closed peers. */
  #retiredIn = { fastPackets: 0, rejected: emptySrtpRejects() };

  constructor(options: MediaRoomOptions, onEvent: (e: MediaRoomEvent) => void) {
    if (!Number.isInteger(options.slots) || options.slots < 1 || options.slots > 16) {
      throw new VoxError('INVALID_ARGUMENT', `slots must be 1…16, got ${options.slots}`);
    }
    const mode = ROOM_MODES[options.mode];
    if (mode === undefined) throw new VoxError('INVALID_ARGUMENT', `unknown media room mode ${String(options.mode)}`);
    mediaPeerConfig(options); // validates the port range up front
    installRtpHeaderGuard();
    this.#options = options;
    this.#mode = mode;
    this.#ports = portAllocator(options.rtcMinPort, options.rtcMaxPort);
    this.#emit = (e) => {
      try {
        onEvent(e);
      } catch (error) {
        log.error({ err: error, roomId: options.roomId }, 'media event listener threw');
      }
    };
    this.#forwarder = mode.slots
      ? new SlotForwarder({ slots: options.slots, fillIn: mode.slotFillIn, onSlotsChanged: (id) => this.#sendSlots(id) })
      : null;
    this.#detector = new SpeakerDetector(options.speaker);
    // One of the top K+1 may be the subscriber themself, so K+1 places are sticky.
    this.#detector.stickyPlaces = options.slots + 1;
    this.#spill =
      options.spill === undefined
        ? null
        : new SpillFabric({
            ...options.spill,
            onAudio: (id, a) => this.#onRemoteAudio(id, a),
            onRanking: (ranking) => {
              this.#homeRanking = ranking;
              this.#homeReranked = true;
            },
            onVideo: (id, rtp) => this.#video.onRemoteVideo(id, RtpPacket.deSerialize(rtp)),
            onKeyFrame: (id) => this.#video.requestKeyFrame(id),
          });
    const spill = this.#spill;
    this.#video = new VideoForwarder(
      options.roomId,
      (participantId) => this.#renegotiate(participantId),
      spill === null
        ? null
        : {
            localVideo: (id, rtp) => {
              if (spill.wantsVideo(id)) spill.forwardVideo(id, rtp.serialize());
            },
            want: (id, want) => spill.wantVideo(id, want),
            keyFrame: (id) => spill.requestKeyFrame(id),
          },
    );
    if (mode.mixer !== null) this.#setMix(this.#createMix(mode.mixer));
    else this.#rebuildTaps();
    this.#timer = setInterval(() => this.#tick(), options.rankIntervalMs ?? 100);
    this.#timer.unref();
  }

  async join(p: MediaParticipant): Promise<void> {
    this.#assertOpen();
    if (this.#participants.has(p.participantId) || this.#joining.has(p.participantId)) {
      throw new VoxError('MEDIA_ALREADY_JOINED', `${p.participantId} is already in media room ${this.#options.roomId}`);
    }
    const participant: Participant = {
      id: p.participantId,
      userId: p.userId,
      name: p.name,
      grants: { ...p.grants },
      peer: null as unknown as Peer,
      muted: false,
      codec: 'opus',
      negotiationId: 0,
      negotiating: Promise.resolve(),
      restarting: false,
      mixOnly: !this.#mode.slots,
    };
    let settle!: () => void;
    const pending: PendingJoin = { cancelled: false, settled: new Promise<void>((resolve) => (settle = resolve)) };
    this.#joining.set(p.participantId, pending);
    try {
      participant.peer = await this.#createPeer(participant);
      if (this.#closed || pending.cancelled) {
        await this.#closePeer(participant.peer);
        if (this.#closed) throw new VoxError('CLOSED', `media room ${this.#options.roomId} is closed`);
        throw new VoxError('MEDIA_UNKNOWN_PARTICIPANT', `${p.participantId} left media room ${this.#options.roomId} while joining`);
      }
    } finally {
      this.#joining.delete(p.participantId);
      settle();
    }
    this.#participants.set(p.participantId, participant);
    if (this.#spill !== null) {
      this.#spill.addLocal(p.participantId, p.memberNumber);
      this.#video.removeRemote(p.participantId); // it was on another worker until now
    }
    this.#video.attach(p.participantId, participant.peer.pc, p.grants.publish, p.grants.subscribe);
    if (p.grants.subscribe && participant.peer.outputs.length > 0) {
      this.#forwarder?.addSubscriber(p.participantId, participant.peer.outputs);
      this.#membershipChanged = true;
    }
    if (this.#mix !== null) {
      // Opus until the answer says otherwise (#onAnswer).
      this.#mix.addParticipant(p.participantId, { codec: 'opus', publish: p.grants.publish, subscribe: this.#hearsMix(participant) });
      if (!this.#mix.running) this.#mix.start();
    }
    try {
      await this.#offer(participant, {});
    } catch (error) {
      await this.leave(p.participantId);
      throw new VoxError('MEDIA_NEGOTIATION_FAILED', `offer for ${p.participantId} failed`, { cause: error });
    }
    // Left (or the room closed) while the offer gathered: leave() already closed the peer.
    if (this.#participants.get(p.participantId) !== participant) {
      throw new VoxError('MEDIA_UNKNOWN_PARTICIPANT', `${p.participantId} left media room ${this.#options.roomId} while joining`);
    }
    // Tell the newcomer what its slots carry right away instead of at the next tick.
    this.#tick();
    if (this.#forwarder?.hasSubscriber(p.participantId)) this.#sendSlots(p.participantId);
  }

  /** One participant's werift peer (peer.ts) with the m-lines its grants and the room's mode call for, and its inbound audio wired to the taps. */
  async #createPeer(participant: Participant): Promise<Peer> {
    const slots = participant.mixOnly ? 0 : this.#options.slots;
    const peer = await openPeer(this.#options, this.#ports, participant.id, {
      publish: participant.grants.publish,
      subscribe: participant.grants.subscribe,
      slots,
      mixTrack: this.#mode.mixer !== null || participant.mixOnly,
      g711: this.#mode.g711,
    });
    this.#peers.add(peer);
    peer.mic.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp, extensions) => {
        // Packets of a replaced peer (media reconnect) still in flight are not this participant's voice any more.
        if (participant.peer === peer) this.#onAudio(participant, rtp, extensions);
      });
    });
    peer.pc.connectionStateChange.subscribe((state) => {
      log.debug({ roomId: this.#options.roomId, participantId: participant.id, state }, 'peer state');
      if (state === 'failed' && participant.peer === peer && this.#participants.get(participant.id) === participant) {
        this.#emit({
          to: 'participant',
          participantId: participant.id,
          message: { op: 'media_reconnect', room: this.#options.roomId, reason: 'ice_failed' },
        });
      }
    });
    return peer;
  }

  async #closePeer(peer: Peer): Promise<void> {
    // Once per peer (leave, a cancelled join and close can race); it counts until its port is free.
    if (!this.#peers.has(peer) || this.#closingPeers.has(peer)) return;
    this.#closingPeers.add(peer);
    for (const o of peerOutputs(peer)) {
      this.#retiredOut.packets += o.packets;
      this.#retiredOut.bytes += o.bytes;
      this.#retiredOut.fastPackets += o.fastPackets;
    }
    if (peer.receiver !== null) {
      this.#retiredIn.fastPackets += peer.receiver.packets;
      addSrtpRejects(this.#retiredIn.rejected, peer.receiver.rejected);
    }
    try {
      await closePeer(peer, this.#ports);
    } finally {
      this.#peers.delete(peer);
      this.#closingPeers.delete(peer);
    }
  }

  /**
   * Media reconnect: a fresh peer for the participant (new ICE, new DTLS), offered with
   * `options.restart = true` so the client starts a fresh PeerConnection too. werift 0.24's ICE
   * restart leaves the transport without media, so a new peer is the reliable way back. Slots are
   * re-mapped onto the new tracks; video subscriptions of and to the participant are dropped.
   */
  async #restart(p: Participant): Promise<void> {
    if (p.restarting) return;
    p.restarting = true;
    try {
      const peer = await this.#createPeer(p);
      if (this.#participants.get(p.id) !== p) {
        await this.#closePeer(peer);
        return;
      }
      const old = p.peer;
      p.peer = peer;
      this.#reconnects++;
      p.negotiating = Promise.resolve();
      this.#video.detach(p.id);
      this.#video.attach(p.id, peer.pc, p.grants.publish, p.grants.subscribe);
      this.#forwarder?.removeSubscriber(p.id);
      if (p.grants.subscribe && peer.outputs.length > 0) this.#forwarder?.addSubscriber(p.id, peer.outputs);
      this.#membershipChanged = true;
      void this.#closePeer(old);
      await this.#offer(p, { restart: true });
      this.#tick();
      if (this.#forwarder?.hasSubscriber(p.id)) this.#sendSlots(p.id);
    } finally {
      p.restarting = false;
    }
  }

  async leave(participantId: string): Promise<void> {
    const pending = this.#joining.get(participantId);
    if (pending !== undefined) {
      // Still claiming its port / building its peer: the join closes what it made and fails.
      pending.cancelled = true;
      await pending.settled;
      return;
    }
    const p = this.#participants.get(participantId);
    if (p === undefined) return;
    this.#participants.delete(participantId);
    this.#spill?.removeLocal(participantId);
    this.#forgetSpeaker(participantId);
    this.#forwarder?.removeSubscriber(participantId);
    this.#forwarder?.removePublisher(participantId);
    this.#video.detach(participantId);
    if (this.#mix !== null) {
      this.#mix.removeParticipant(participantId);
      // An empty room's clock would tick for nobody.
      if (this.#participants.size === 0) this.#mix.stop();
      this.#dropIdleMix();
    }
    this.#membershipChanged = true;
    this.#tick();
    await this.#closePeer(p.peer);
  }

  async signal(participantId: string, message: ClientMediaMessage): Promise<void> {
    this.#assertOpen();
    const p = this.#participants.get(participantId);
    if (p === undefined) {
      throw new VoxError('MEDIA_UNKNOWN_PARTICIPANT', `${participantId} is not in media room ${this.#options.roomId}`);
    }
    switch (message.kind) {
      case 'answer': {
        if (message.sdp === undefined) throw new VoxError('INVALID_ARGUMENT', 'answer without sdp');
        if (message.negotiationId !== undefined && message.negotiationId !== p.negotiationId) {
          log.debug({ participantId, got: message.negotiationId, want: p.negotiationId }, 'stale answer ignored');
          return;
        }
        try {
          await p.peer.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
        } catch (error) {
          throw new VoxError('MEDIA_NEGOTIATION_FAILED', `bad answer from ${participantId}`, { cause: error });
        }
        this.#onAnswer(p);
        return;
      }
      case 'candidate': {
        if (message.candidate === undefined || message.candidate === null) return; // end of candidates
        await p.peer.pc.addIceCandidate({
          candidate: message.candidate.candidate,
          sdpMid: message.candidate.sdpMid ?? undefined,
          sdpMLineIndex: message.candidate.sdpMLineIndex ?? undefined,
        });
        return;
      }
      case 'ice_restart': {
        const layout = message.options?.audio;
        if (layout === 'mix' || layout === 'slots') this.#setLayout(p, layout);
        await this.#restart(p);
        return;
      }
      case 'subscribe_video':
      case 'unsubscribe_video': {
        if (!p.grants.subscribe) throw new VoxError('MEDIA_NOT_ALLOWED', `${participantId} has no subscribe grant`);
        const publisherId = message.participantId;
        if (publisherId === undefined || (!this.#participants.has(publisherId) && this.#spill?.remote(publisherId) === undefined)) {
          throw new VoxError('MEDIA_UNKNOWN_PARTICIPANT', `no publisher ${String(publisherId)} in the room`);
        }
        if (message.kind === 'subscribe_video') this.#video.subscribe(participantId, publisherId);
        else this.#video.unsubscribe(participantId, publisherId);
        return;
      }
      case 'offer':
        // The server is the offerer (docs/media.md); a client offer would fork the m-line layout.
        throw new VoxError('MEDIA_UNSUPPORTED', 'the server offers; clients answer');
    }
  }

  async setMuted(participantId: string, muted: boolean): Promise<void> {
    this.#assertOpen();
    const p = this.#participants.get(participantId);
    if (p === undefined) {
      throw new VoxError('MEDIA_UNKNOWN_PARTICIPANT', `${participantId} is not in media room ${this.#options.roomId}`);
    }
    if (p.muted === muted) return;
    p.muted = muted;
    // A spill shard's participant: the home hears of the mute from the main thread and tells the room.
    if (muted && this.#ranksHere) {
      this.#detector.remove(participantId);
      this.#emit({
        to: 'room',
        message: { op: 'speaking', room: this.#options.roomId, participantId, speaking: false, level: 0 },
      });
    }
    this.#membershipChanged = true;
    this.#tick();
  }

  setRemoteMembers(add: readonly RemoteMember[], remove: readonly string[]): void {
    this.#assertOpen();
    const spill = this.#spill;
    if (spill === null) throw new VoxError('MEDIA_UNSUPPORTED', `media room ${this.#options.roomId} is not spread over workers`);
    for (const m of add) {
      if (this.#participants.has(m.participantId)) continue;
      spill.setRemote(m);
      if (m.publish) this.#video.addRemote(m.participantId);
      // Every worker of a mixing room mixes for its own listeners, from every publisher's packets.
      this.#mix?.addParticipant(m.participantId, { codec: 'opus', publish: m.publish, subscribe: false });
      if (m.muted || !m.publish) this.#forgetSpeaker(m.participantId);
    }
    for (const id of remove) {
      if (!spill.removeRemote(id)) continue;
      this.#video.removeRemote(id);
      this.#mix?.removeParticipant(id);
      this.#forgetSpeaker(id);
      this.#forwarder?.removePublisher(id);
    }
    this.#membershipChanged = true;
    this.#tick();
  }

  linkShard(end: SpillLinkEnd): void {
    this.#assertOpen();
    if (this.#spill === null) throw new VoxError('MEDIA_UNSUPPORTED', `media room ${this.#options.roomId} is not spread over workers`);
    this.#spill.link(end);
    // The new shard needs the current ranking now, not at the next change.
    this.#rankingSentAt = 0;
    this.#membershipChanged = true;
    this.#tick();
  }

  unlinkShard(shard: number): void {
    this.#spill?.unlink(shard);
  }

  /** Whether this room ranks its speakers (and tells the room who speaks): a room on one worker, or a spilled room's home. */
  get #ranksHere(): boolean {
    return this.#spill === null || this.#spill.home;
  }

  /** A participant left the ranking (left, muted, or gone from another worker): `speaking: false` if it was speaking. */
  #forgetSpeaker(participantId: string): void {
    if (this.#detector.isSpeaking(participantId)) {
      this.#emit({
        to: 'room',
        message: { op: 'speaking', room: this.#options.roomId, participantId, speaking: false, level: 0 },
      });
    }
    this.#detector.remove(participantId);
  }

  stats(): MediaRoomStats {
    let packetsOut = this.#retiredOut.packets;
    let bytesOut = this.#retiredOut.bytes;
    let packetsOutFast = this.#retiredOut.fastPackets;
    let packetsInFast = this.#retiredIn.fastPackets;
    const srtpRejected = { ...this.#retiredIn.rejected };
    const received: ReceiveStats = { lost: 0, expected: 0, jitterMsSum: 0, streams: 0 };
    let rttSum = 0;
    let rttCount = 0;
    for (const p of this.#participants.values()) {
      for (const o of peerOutputs(p.peer)) {
        packetsOut += o.packets;
        bytesOut += o.bytes;
        packetsOutFast += o.fastPackets;
        const rtt = o.rttMs;
        if (rtt !== undefined && rtt >= 0) {
          rttSum += rtt;
          rttCount++;
        }
      }
      addReceiveStats(p.peer.mic.receiver, received);
      const r = p.peer.receiver;
      if (r !== null) {
        packetsInFast += r.packets;
        addSrtpRejects(srtpRejected, r.rejected);
      }
    }
    const v = this.#video.stats();
    let portsInUse = 0;
    for (const peer of this.#peers) if (peer.shared === null) portsInUse++;
    return {
      participants: this.#participants.size,
      peers: this.#peers.size,
      portsInUse,
      packetsIn: this.#packetsIn + v.packetsIn,
      packetsOut: packetsOut + v.packetsOut,
      packetsOutFast,
      packetsInFast,
      srtpRejected,
      bytesIn: this.#bytesIn + v.bytesIn,
      bytesOut: bytesOut + v.bytesOut,
      lossPct: received.expected > 0 ? (received.lost / received.expected) * 100 : 0,
      jitterMs: received.streams > 0 ? received.jitterMsSum / received.streams : 0,
      rttMs: rttCount > 0 ? rttSum / rttCount : 0,
      slotSwitches: this.#forwarder?.switches ?? 0,
      offers: this.#offers,
      reconnects: this.#reconnects,
      packetsDropped: this.#packetsDropped,
      ...(this.#mix === null ? {} : { mix: this.#mix.toJSON() }),
      ...(this.#recording === null ? {} : { recording: { id: this.#recording.manifest.id, bytes: this.#recording.bytes } }),
      ...(this.#spill === null ? {} : { spill: this.#spill.stats() }),
    };
  }

  async record(action: 'start' | 'stop', byParticipantId: string, continues?: RecordingContinuation): Promise<RecordingState | null> {
    this.#assertOpen();
    if (action === 'stop') {
      const recording = this.#recording;
      if (recording === null) return null;
      this.#recording = null;
      this.#rebuildTaps();
      return recording.stop(byParticipantId);
    }
    if (this.#recording !== null) return this.#recording.manifest;
    const dir = this.#options.recordingDir;
    if (dir === undefined || dir === '') throw new VoxError('RECORDING_UNAVAILABLE', 'this server records nothing (recording.dir is unset)');
    // Modes that record the room as heard: the recorder subscribes to the mixer's room output.
    const mixer = this.#mode.recordsMix ? this.#mix : null;
    this.#recording = new RecordingTap({
      dir,
      roomId: this.#options.roomId,
      startedBy: byParticipantId,
      mixer,
      segmentMs: this.#options.recordingSegmentMs,
      ...(continues === undefined ? {} : { continues }),
      identify: (id) => {
        const p = this.#participants.get(id) ?? this.#spill?.remote(id);
        return p === undefined ? undefined : { userId: p.userId ?? null, name: p.name };
      },
    });
    this.#rebuildTaps();
    if (mixer !== null && !mixer.running) mixer.start();
    return this.#recording.manifest;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#recording?.close();
    this.#recording = null;
    // Every open peer: joined ones, and those of joins and media reconnects still under way.
    const peers = [...this.#peers];
    this.#participants.clear();
    this.#video.close();
    this.#mix?.close();
    this.#forwarder?.close();
    this.#spill?.close();
    this.#taps = [];
    await Promise.allSettled(peers.map((peer) => this.#closePeer(peer)));
  }

  /** Per inbound audio packet: check and count it, feed the speaker detector, hand it to every tap. */
  #onAudio(p: Participant, rtp: RtpPacket, extensions: Extensions | undefined): void {
    const payload = rtp.payload;
    if (!p.grants.publish || p.muted || this.#closed || payload.length === 0) {
      this.#packetsDropped++;
      return;
    }
    const header = rtp.header;
    this.#packetsIn++;
    this.#bytesIn += payload.length + header.serializeSize;
    const now = performance.now();
    const ext = extensions?.[AUDIO_LEVEL_URI] as { level: number } | undefined;
    const level = ext === undefined ? -1 : ext.level;
    // A packet without the extension still proves presence; rank it as quiet, not absent.
    if (this.#ranksHere) this.#detector.process(p.id, level < 0 ? AUDIO_LEVEL_SILENCE - 1 : level, now);
    const a = this.#inbound;
    a.payload = payload;
    a.ssrc = header.ssrc;
    a.sequenceNumber = header.sequenceNumber;
    a.timestamp = header.timestamp;
    a.marker = header.marker;
    a.payloadType = header.payloadType;
    a.level = level;
    a.now = now;
    // Once per other worker of the room, before this worker's own sends. A G.711 publisher's voice
    // stays on its worker (the others take every remote publisher as Opus): heard there only.
    if (p.codec === 'opus') this.#spill?.forward(p.id, a);
    const taps = this.#taps;
    for (let i = 0; i < taps.length; i++) taps[i]!.onAudio(p.id, a);
  }

  /** A publisher on another worker of the room (spill.ts): ranked here if this is the home, then to the taps like local audio. */
  #onRemoteAudio(id: string, a: Readonly<InboundAudio>): void {
    if (this.#closed) return;
    if (this.#ranksHere) this.#detector.process(id, a.level < 0 ? AUDIO_LEVEL_SILENCE - 1 : a.level, a.now);
    const taps = this.#taps;
    for (let i = 0; i < taps.length; i++) taps[i]!.onAudio(id, a);
  }

  /** The taps in packet order: the mixer, the recorder, the forwarder (sending last keeps the others' view of the packet untouched). */
  #rebuildTaps(): void {
    const taps: AudioTap[] = [];
    if (this.#mix !== null) taps.push(this.#mix);
    if (this.#recording !== null) taps.push(this.#recording);
    if (this.#forwarder !== null) taps.push(this.#forwarder);
    this.#taps = taps;
  }

  #setMix(mix: MixRoomAudio | null): void {
    this.#mix = mix;
    this.#rebuildTaps();
  }

  #tick(): void {
    if (this.#closed) return;
    const now = performance.now();
    const spill = this.#spill;
    if (spill !== null && !spill.home) {
      // A spill shard maps its subscribers' slots (and a hybrid mixer's leave-outs) from the home's ranking.
      if (!this.#homeReranked && !this.#membershipChanged) return;
      this.#homeReranked = false;
      this.#membershipChanged = false;
      this.#forwarder?.rank(this.#homeRanking, this.#eligible);
      const taps = this.#taps;
      for (let i = 0; i < taps.length; i++) if (taps[i] !== this.#forwarder) taps[i]!.rank?.(this.#homeRanking, this.#eligible);
      return;
    }
    const reranked = this.#detector.tick(now);
    for (const c of this.#detector.takeSpeakingChanges()) {
      if (!this.#participants.has(c.participantId) && spill?.remote(c.participantId) === undefined) continue;
      this.#emit({
        to: 'room',
        message: {
          op: 'speaking',
          room: this.#options.roomId,
          participantId: c.participantId,
          speaking: c.speaking,
          level: linearLevel(c.level),
        },
      });
    }
    if (spill?.linked === true && (reranked || this.#membershipChanged || now - this.#rankingSentAt >= 1000)) {
      this.#rankingSentAt = now;
      this.#sendRanking(spill);
    }
    if (!reranked && !this.#membershipChanged) return;
    this.#membershipChanged = false;
    const ranking = this.#detector.ranking();
    const taps = this.#taps;
    // The forwarder ranks first: its slot messages go out before the mixer changes who it leaves out.
    this.#forwarder?.rank(ranking, this.#eligible);
    for (let i = 0; i < taps.length; i++) if (taps[i] !== this.#forwarder) taps[i]!.rank?.(ranking, this.#eligible);
  }

  /** The home's ranking for the other workers: the first K+1 who may be forwarded (a subscriber's own place is filled by the next). */
  #sendRanking(spill: SpillFabric): void {
    const out = this.#sendable;
    out.length = 0;
    const ranking = this.#detector.ranking();
    for (let i = 0; i < ranking.length && out.length <= this.#options.slots; i++) {
      if (this.#eligible(ranking[i]!)) out.push(ranking[i]!);
    }
    spill.sendRanking(out);
  }

  #createMix(mode: MixRoomMode): MixRoomAudio {
    return new MixRoomAudio({
      ...this.#options.mixing,
      mode,
      forwardSlots: this.#options.slots,
      onPacket: (id, payload, seq, ts) => this.#sendMix(id, payload, seq, ts),
      // DRED in the mix (docs/audio.md "DRED"): the listener decodes it and its loss calls for it.
      dredFor: (id) => {
        const peer = this.#participants.get(id)?.peer;
        return peer?.mix?.resilience?.dredCapable === true && peer.resilience.dred.active;
      },
    });
  }

  #hearsMix(p: Participant): boolean {
    return p.grants.subscribe && (this.#mode.mixer !== null || p.mixOnly);
  }

  /**
   * A subscriber's own choice of audio layout, applied by the media reconnect that follows (a new
   * peer with the new m-lines; nobody else renegotiates). Only modes whose row allows it (`sfu`):
   * a `mix` room has no slots, and a `hybrid` room's mix leaves out the slot speakers, so a
   * mix-only subscriber there would miss them.
   */
  #setLayout(p: Participant, layout: 'mix' | 'slots'): void {
    const mixOnly = layout === 'mix';
    const onDemand = this.#mode.layoutSwitch;
    if (onDemand === null) {
      if (mixOnly === p.mixOnly) return;
      throw new VoxError('MEDIA_UNSUPPORTED', `a ${this.#options.mode} room cannot give ${p.id} ${layout} audio`);
    }
    if (!p.grants.subscribe) throw new VoxError('MEDIA_NOT_ALLOWED', `${p.id} has no subscribe grant`);
    p.mixOnly = mixOnly;
    if (mixOnly && this.#mix === null) {
      // Mixed for whoever asks: every publisher becomes an input (silent ones cost no decode, RFC 6464).
      const mix = this.#createMix(onDemand);
      for (const q of this.#participants.values()) {
        mix.addParticipant(q.id, { codec: 'opus', publish: q.grants.publish, subscribe: this.#hearsMix(q) });
      }
      for (const r of this.#spill?.remoteMembers() ?? []) mix.addParticipant(r.participantId, { codec: 'opus', publish: r.publish, subscribe: false });
      this.#setMix(mix);
      mix.start();
    } else if (this.#mix !== null) {
      this.#mix.addParticipant(p.id, { codec: 'opus', publish: p.grants.publish, subscribe: mixOnly });
    }
    this.#dropIdleMix();
  }

  /** An on-demand mixer (a mode without one of its own) goes away when no subscriber listens to it any more. */
  #dropIdleMix(): void {
    if (this.#mode.mixer !== null || this.#mix === null) return;
    for (const q of this.#participants.values()) if (q.mixOnly) return;
    this.#mix.close();
    this.#setMix(null);
  }

  /** After an answer: what the peer negotiated decides what it sends into and hears from the mixer. */
  #onAnswer(p: Participant): void {
    if (this.#mix === null || this.#participants.get(p.id) !== p) return;
    const peer = p.peer;
    const negotiated = negotiatedCodec(peer.mix?.transceiver ?? peer.mic);
    if (negotiated === null) return;
    // G.711 peers: their voice is only ever mixed (never a slot), and in hybrid rooms the slots they
    // receive are transcoded from Opus (SlotForwarder, by each output's codec).
    const wasOpus = p.codec === 'opus';
    p.codec = negotiated.codec;
    for (const o of peer.outputs) o.setCodec(negotiated.codec);
    if (wasOpus !== (p.codec === 'opus')) {
      this.#membershipChanged = true;
      this.#tick();
    }
    this.#mix.addParticipant(p.id, {
      codec: negotiated.codec,
      payloadType: negotiated.payloadType,
      publish: p.grants.publish,
      subscribe: this.#hearsMix(p),
    });
  }

  /** One mixed packet for one listener (MixRoomAudio's clock, every 20 ms): out on their mix track. */
  #sendMix(listenerId: string, payload: Uint8Array, sequenceNumber: number, timestamp: number): void {
    const out = this.#participants.get(listenerId)?.peer.mix;
    if (out == null || !out.ready) return;
    const h = this.#mixHeader;
    h.ssrc = out.stream.ssrc;
    h.sequenceNumber = sequenceNumber;
    h.timestamp = timestamp;
    h.marker = false;
    out.send(asBuffer(payload), h, -1);
  }

  #sendSlots(subscriberId: string): void {
    this.#emit({
      to: 'participant',
      participantId: subscriberId,
      message: { op: 'slots', room: this.#options.roomId, slots: this.#forwarder?.assignments(subscriberId) ?? [] },
    });
  }

  /** Creates an offer, waits for host candidates (no trickle needed on the server side) and sends it. */
  #offer(p: Participant, extra: Record<string, unknown>): Promise<void> {
    const run = async (): Promise<void> => {
      if (!this.#participants.has(p.id)) return;
      const pc = p.peer.pc;
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await gatheredOrClosed(pc);
      const local = pc.localDescription?.sdp;
      if (local === undefined || !this.#participants.has(p.id)) return;
      const sdp = keepBundleTagOpen(keepHostCandidates(local, this.#options.announcedIp));
      p.negotiationId++;
      this.#offers++;
      this.#emit({
        to: 'participant',
        participantId: p.id,
        message: {
          op: 'media',
          room: this.#options.roomId,
          kind: 'offer',
          sdp,
          negotiationId: p.negotiationId,
          options: {
            ...extra,
            video: this.#video.midsFor(p.id),
            ...(p.peer.mix === null ? {} : { mixSlot: p.peer.mix.slot }),
          },
        },
      });
    };
    // Offers are serialised per peer: a second one waits for the first answer's slot in the chain.
    const next = p.negotiating.then(run, run);
    p.negotiating = next.catch(() => undefined);
    return next;
  }

  #renegotiate(participantId: string): void {
    const p = this.#participants.get(participantId);
    if (p === undefined) return;
    const pc = p.peer.pc;
    const waitAnswer = (): Promise<void> =>
      pc.signalingState === 'stable'
        ? Promise.resolve()
        : new Promise((resolve) => {
            const { unSubscribe } = pc.signalingStateChange.subscribe((s) => {
              if (s === 'stable' || s === 'closed') {
                unSubscribe();
                resolve();
              }
            });
          });
    p.negotiating = p.negotiating.then(waitAnswer);
    this.#offer(p, {}).catch((error: unknown) => log.warn({ err: error, participantId }, 'video renegotiation failed'));
  }

  #assertOpen(): void {
    if (this.#closed) throw new VoxError('CLOSED', `media room ${this.#options.roomId} is closed`);
  }
}

