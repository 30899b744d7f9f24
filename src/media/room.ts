import { RTCPeerConnection, type Extensions, type RtpPacket, type RTCRtpTransceiver } from 'werift';
import type { ClientMediaMessage, ServerMediaMessage } from '../protocol/index.ts';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { keepHostCandidates, mediaPeerConfig } from './peer-config.ts';
import { portAllocator, type PortAllocator } from './port-allocator.ts';
import { AUDIO_LEVEL_SILENCE, AUDIO_LEVEL_URI } from './rtp.ts';
import { SlotOutput } from './slot-output.ts';
import { SlotRouter } from './slot-router.ts';
import { SpeakerDetector, type SpeakerDetectorOptions } from './speaker-detector.ts';
import { VideoForwarder } from './video.ts';

export type { ClientMediaMessage, ServerMediaMessage };

import type { MediaGrants, MediaParticipant } from '../signalling/media-plane.ts';
export type { MediaGrants, MediaParticipant };

export interface MediaRoomOptions {
  roomId: string;
  /** K: outgoing audio tracks per subscriber. Default 3 in config. */
  slots: number;
  /** IP put into ICE host candidates. */
  announcedIp: string;
  /** Inclusive UDP port range for ICE (one port per participant; see docs/media.md). */
  rtcMinPort: number;
  rtcMaxPort: number;
  /** Only `sfu` is implemented here; `mix`/`hybrid` fall back to `sfu` (the audio helper owns mixing). */
  mode: 'sfu' | 'mix' | 'hybrid';
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
}

export type MediaRoomEvent =
  | { to: 'participant'; participantId: string; message: ServerMediaMessage }
  | { to: 'room'; message: ServerMediaMessage };

export interface MediaRoomStats {
  participants: number;
  packetsIn: number;
  packetsOut: number;
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
}

export interface MediaRoom {
  join(p: MediaParticipant): Promise<void>;
  leave(participantId: string): Promise<void>;
  signal(participantId: string, message: ClientMediaMessage): Promise<void>;
  setMuted(participantId: string, muted: boolean): Promise<void>;
  stats(): MediaRoomStats;
  close(): Promise<void>;
}

const log = logger('media-room');

/** RFC 6464 level (−dBov) → the protocol's linear 0…1 scale (`speaking.level`). */
function linearLevel(level: number): number {
  if (level >= AUDIO_LEVEL_SILENCE) return 0;
  return Math.round(10 ** (-level / 20) * 1000) / 1000;
}

interface Peer {
  readonly pc: RTCPeerConnection;
  readonly mic: RTCRtpTransceiver;
  readonly outputs: SlotOutput[];
  readonly port: number;
}

interface Participant {
  readonly id: string;
  readonly grants: MediaGrants;
  /** Replaced on media reconnect (`ice_restart`). */
  peer: Peer;
  muted: boolean;
  negotiationId: number;
  negotiating: Promise<void>;
  restarting: boolean;
}

/**
 * A media room inside a worker: one werift peer per participant, audio slots, speaker detection,
 * video forwarding. The server offers (docs/media.md): m-line 0 receives the participant's mic,
 * m-lines 1…K are the slots, video m-lines follow on demand.
 */
export function createMediaRoom(options: MediaRoomOptions, onEvent: (e: MediaRoomEvent) => void): MediaRoom {
  return new SfuRoom(options, onEvent);
}

class SfuRoom implements MediaRoom {
  readonly #options: MediaRoomOptions;
  readonly #emit: (e: MediaRoomEvent) => void;
  readonly #participants = new Map<string, Participant>();
  readonly #router: SlotRouter<SlotOutput>;
  readonly #detector: SpeakerDetector;
  readonly #video: VideoForwarder;
  readonly #timer: NodeJS.Timeout;
  readonly #ports: PortAllocator;
  readonly #eligible = (id: string): boolean => {
    const p = this.#participants.get(id);
    return p !== undefined && p.grants.publish && !p.muted;
  };
  #membershipChanged = false;
  readonly #joining = new Set<string>();
  #closed = false;
  #packetsIn = 0;
  #bytesIn = 0;
  #packetsDropped = 0;
  #offers = 0;
  #reconnects = 0;
  /** Outputs of participants who left: their counters still belong to the room's totals. */
  #retiredOut = { packets: 0, bytes: 0 };

  constructor(options: MediaRoomOptions, onEvent: (e: MediaRoomEvent) => void) {
    if (!Number.isInteger(options.slots) || options.slots < 1 || options.slots > 16) {
      throw new VoxError('INVALID_ARGUMENT', `slots must be 1…16, got ${options.slots}`);
    }
    mediaPeerConfig(options); // validates the port range up front
    this.#options = options;
    this.#ports = portAllocator(options.rtcMinPort, options.rtcMaxPort);
    this.#emit = (e) => {
      try {
        onEvent(e);
      } catch (error) {
        log.error({ err: error, roomId: options.roomId }, 'media event listener threw');
      }
    };
    this.#router = new SlotRouter<SlotOutput>(options.slots);
    this.#detector = new SpeakerDetector(options.speaker);
    // One of the top K+1 may be the subscriber themself, so K+1 places are sticky.
    this.#detector.stickyPlaces = options.slots + 1;
    this.#video = new VideoForwarder(options.roomId, (participantId) => this.#renegotiate(participantId));
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
      grants: { ...p.grants },
      peer: null as unknown as Peer,
      muted: false,
      negotiationId: 0,
      negotiating: Promise.resolve(),
      restarting: false,
    };
    this.#joining.add(p.participantId);
    try {
      participant.peer = await this.#createPeer(participant);
    } finally {
      this.#joining.delete(p.participantId);
    }
    if (this.#closed) {
      await this.#closePeer(participant.peer);
      throw new VoxError('CLOSED', `media room ${this.#options.roomId} is closed`);
    }
    this.#participants.set(p.participantId, participant);
    this.#video.attach(p.participantId, participant.peer.pc, p.grants.publish, p.grants.subscribe);
    if (p.grants.subscribe) {
      this.#router.addSubscriber(p.participantId, participant.peer.outputs);
      this.#membershipChanged = true;
    }
    try {
      await this.#offer(participant, {});
    } catch (error) {
      await this.leave(p.participantId);
      throw new VoxError('MEDIA_NEGOTIATION_FAILED', `offer for ${p.participantId} failed`, { cause: error });
    }
    // Tell the newcomer what its slots carry right away instead of at the next tick.
    this.#tick();
    if (p.grants.subscribe) this.#sendSlots(p.participantId);
  }

  /** One participant's werift peer: mic m-line, K slot m-lines, UDP port, state watch. */
  async #createPeer(participant: Participant): Promise<Peer> {
    let port: number;
    try {
      port = await this.#ports.acquire(this.#options.bindIp);
    } catch (error) {
      throw new VoxError('MEDIA_NEGOTIATION_FAILED', `no UDP port for ${participant.id}`, { cause: error });
    }
    const pc = new RTCPeerConnection(mediaPeerConfig(this.#options, port));
    const { publish, subscribe } = participant.grants;
    const mic = pc.addTransceiver('audio', { direction: publish ? 'recvonly' : 'inactive' });
    const outputs: SlotOutput[] = [];
    if (subscribe) {
      for (let k = 0; k < this.#options.slots; k++) {
        outputs.push(new SlotOutput(participant.id, k, pc.addTransceiver('audio', { direction: 'sendonly' })));
      }
    }
    const peer: Peer = { pc, mic, outputs, port };
    mic.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp, extensions) => {
        // Packets of a replaced peer (media reconnect) still in flight are not this participant's voice any more.
        if (participant.peer === peer) this.#onAudio(participant, rtp, extensions);
      });
    });
    pc.connectionStateChange.subscribe((state) => {
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
    for (const o of peer.outputs) {
      this.#retiredOut.packets += o.packets;
      this.#retiredOut.bytes += o.bytes;
    }
    await peer.pc.close().catch((error: unknown) => log.warn({ err: error }, 'peer close failed'));
    this.#ports.release(peer.port);
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
      if (p.grants.subscribe) {
        this.#router.removeSubscriber(p.id);
        this.#router.addSubscriber(p.id, peer.outputs);
        this.#membershipChanged = true;
      }
      void this.#closePeer(old);
      await this.#offer(p, { restart: true });
      this.#tick();
      if (p.grants.subscribe) this.#sendSlots(p.id);
    } finally {
      p.restarting = false;
    }
  }

  async leave(participantId: string): Promise<void> {
    const p = this.#participants.get(participantId);
    if (p === undefined) return;
    this.#participants.delete(participantId);
    if (this.#detector.isSpeaking(participantId)) {
      this.#emit({
        to: 'room',
        message: { op: 'speaking', room: this.#options.roomId, participantId, speaking: false, level: 0 },
      });
    }
    this.#detector.remove(participantId);
    this.#router.removeSubscriber(participantId);
    this.#video.detach(participantId);
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
      case 'ice_restart':
        await this.#restart(p);
        return;
      case 'subscribe_video':
      case 'unsubscribe_video': {
        if (!p.grants.subscribe) throw new VoxError('MEDIA_NOT_ALLOWED', `${participantId} has no subscribe grant`);
        const publisherId = message.participantId;
        if (publisherId === undefined || !this.#participants.has(publisherId)) {
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
    if (muted) {
      this.#detector.remove(participantId);
      this.#emit({
        to: 'room',
        message: { op: 'speaking', room: this.#options.roomId, participantId, speaking: false, level: 0 },
      });
    }
    this.#membershipChanged = true;
    this.#tick();
  }

  stats(): MediaRoomStats {
    let packetsOut = this.#retiredOut.packets;
    let bytesOut = this.#retiredOut.bytes;
    let lost = 0;
    let expected = 0;
    let jitterSum = 0;
    let jitterCount = 0;
    let rttSum = 0;
    let rttCount = 0;
    for (const p of this.#participants.values()) {
      for (const o of p.peer.outputs) {
        packetsOut += o.packets;
        bytesOut += o.bytes;
        const rtt = o.rttMs;
        if (rtt !== undefined && rtt >= 0) {
          rttSum += rtt;
          rttCount++;
        }
      }
      const streams = (p.peer.mic.receiver as unknown as { remoteStreams: Record<string, ReceiveStatistics> }).remoteStreams;
      for (const s of Object.values(streams ?? {})) {
        lost += Math.max(0, s.packets_lost);
        expected += s.packets_expected;
        jitterSum += (s.jitter / s.clockRate) * 1000;
        jitterCount++;
      }
    }
    const v = this.#video.stats();
    return {
      participants: this.#participants.size,
      packetsIn: this.#packetsIn + v.packetsIn,
      packetsOut: packetsOut + v.packetsOut,
      bytesIn: this.#bytesIn + v.bytesIn,
      bytesOut: bytesOut + v.bytesOut,
      lossPct: expected > 0 ? (lost / expected) * 100 : 0,
      jitterMs: jitterCount > 0 ? jitterSum / jitterCount : 0,
      rttMs: rttCount > 0 ? rttSum / rttCount : 0,
      slotSwitches: this.#router.switches,
      offers: this.#offers,
      reconnects: this.#reconnects,
      packetsDropped: this.#packetsDropped,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const peers = [...this.#participants.values()].map((p) => p.peer);
    this.#participants.clear();
    this.#video.close();
    await Promise.allSettled(peers.map((peer) => this.#closePeer(peer)));
  }

  /** Per inbound audio packet: count, feed the speaker detector, forward to the slots carrying this publisher. */
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
    this.#detector.process(p.id, level < 0 ? AUDIO_LEVEL_SILENCE - 1 : level, now);
    const routes = this.#router.routes(p.id);
    for (let i = 0; i < routes.length; i++) {
      const out = routes[i];
      if (!out.ready) continue;
      const h = out.stream.rewriteFields(header.ssrc, header.sequenceNumber, header.timestamp, header.marker, now);
      if (h !== null) out.send(payload, h, level);
    }
  }

  #tick(): void {
    if (this.#closed) return;
    const now = performance.now();
    const reranked = this.#detector.tick(now);
    for (const c of this.#detector.takeSpeakingChanges()) {
      if (!this.#participants.has(c.participantId)) continue;
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
    if (!reranked && !this.#membershipChanged) return;
    this.#membershipChanged = false;
    for (const subscriberId of this.#router.update(this.#detector.ranking(), this.#eligible)) {
      this.#sendSlots(subscriberId);
    }
  }

  #sendSlots(subscriberId: string): void {
    this.#emit({
      to: 'participant',
      participantId: subscriberId,
      message: { op: 'slots', room: this.#options.roomId, slots: this.#router.assignments(subscriberId) },
    });
  }

  /** Creates an offer, waits for host candidates (no trickle needed on the server side) and sends it. */
  #offer(p: Participant, extra: Record<string, unknown>): Promise<void> {
    const run = async (): Promise<void> => {
      if (!this.#participants.has(p.id)) return;
      const pc = p.peer.pc;
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await waitGathered(pc);
      const local = pc.localDescription?.sdp;
      if (local === undefined || !this.#participants.has(p.id)) return;
      const sdp = keepHostCandidates(local, this.#options.announcedIp);
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
          options: { ...extra, video: this.#video.midsFor(p.id) },
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

interface ReceiveStatistics {
  packets_lost: number;
  packets_expected: number;
  jitter: number;
  clockRate: number;
}

function waitGathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') {
        unSubscribe();
        resolve();
      }
    });
  });
}
