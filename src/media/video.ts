import type { MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver, RtcpPacket, RtpPacket } from 'werift';
import { logger } from '../log.ts';
import { addFreshTransceiver, isKeyFrameRequest } from './werift-adapter.ts';

const log = logger('media-video');

/** Ask the publisher for a key frame at most this often per publisher (PLI storms help nobody). */
const MIN_PLI_INTERVAL_MS = 300;

interface Publisher {
  /** Null for a publisher on another worker of the room (its video arrives through `onRemoteVideo`). */
  transceiver: RTCRtpTransceiver | null;
  track: MediaStreamTrack | null;
  lastPliMs: number;
}

/**
 * A room spread over several workers (docs/media.md "Rooms over several workers"): how video
 * crosses to the other workers. `localVideo` sees every local publisher's packet before it is
 * sent here; `want` says this worker's subscribers start/stop needing a remote publisher;
 * `keyFrame` asks the remote publisher's worker for a key frame.
 */
export interface VideoSpill {
  localVideo(publisherId: string, rtp: RtpPacket): void;
  want(publisherId: string, want: boolean): void;
  keyFrame(publisherId: string): void;
}

interface Forward {
  publisherId: string;
  transceiver: RTCRtpTransceiver;
}

/**
 * Video forwarding (never transcoded, docs/architecture.md): each publisher has one recvonly video m-line
 * from the start; a subscriber who sends `subscribe_video` gets a sendonly video m-line for that
 * publisher, which is a renegotiation (allowed for video, unlike audio). Key-frame requests from
 * subscribers (PLI, FIR) and a new subscription turn into a PLI upstream; NACKs are answered by
 * werift's sender from its RTP history (`sender.sendRtp()` keeps one), and the server's
 * receiver NACKs the publisher for losses on its side.
 */
export class VideoForwarder {
  readonly #roomId: string;
  readonly #renegotiate: (participantId: string) => void;
  readonly #pcs = new Map<string, RTCPeerConnection>();
  readonly #publishers = new Map<string, Publisher>();
  /** subscriberId → publisherId → forward */
  readonly #forwards = new Map<string, Map<string, Forward>>();
  /** publisherId → subscribers' transceivers */
  readonly #fanout = new Map<string, RTCRtpTransceiver[]>();
  #packetsIn = 0;
  #bytesIn = 0;
  #packetsOut = 0;
  #bytesOut = 0;

  readonly #spill: VideoSpill | null;

  constructor(roomId: string, renegotiate: (participantId: string) => void, spill: VideoSpill | null = null) {
    this.#roomId = roomId;
    this.#renegotiate = renegotiate;
    this.#spill = spill;
  }

  /** A publisher on another worker of the room: subscribable here, its packets come through `onRemoteVideo`. */
  addRemote(publisherId: string): void {
    if (!this.#publishers.has(publisherId)) this.#publishers.set(publisherId, { transceiver: null, track: null, lastPliMs: 0 });
  }

  /** The remote publisher left (or moved here): its subscriptions end. */
  removeRemote(publisherId: string): void {
    if (this.#publishers.get(publisherId)?.transceiver !== null) return;
    this.#publishers.delete(publisherId);
    for (const [subscriberId, forwards] of this.#forwards) {
      if (forwards.has(publisherId)) this.#drop(subscriberId, publisherId, true);
    }
    this.#fanout.delete(publisherId);
  }

  /** A remote publisher's packet, to this worker's subscribers of it. */
  onRemoteVideo(publisherId: string, rtp: RtpPacket): void {
    this.#packetsIn++;
    this.#bytesIn += rtp.payload.length + rtp.header.serializeSize;
    this.#fanoutVideo(publisherId, rtp);
  }

  /** A key frame asked for by another worker's subscriber: a PLI to the local publisher (rate-limited). */
  requestKeyFrame(publisherId: string): void {
    this.#requestKeyFrame(publisherId);
  }

  attach(participantId: string, pc: RTCPeerConnection, publish: boolean, subscribe: boolean): void {
    this.#pcs.set(participantId, pc);
    if (subscribe) this.#forwards.set(participantId, new Map());
    if (!publish) return;
    const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    const publisher: Publisher = { transceiver, track: null, lastPliMs: 0 };
    this.#publishers.set(participantId, publisher);
    transceiver.onTrack.subscribe((track) => {
      publisher.track = track;
      track.onReceiveRtp.subscribe((rtp) => this.#onVideo(participantId, rtp));
      this.#requestKeyFrame(participantId);
    });
  }

  detach(participantId: string): void {
    this.#pcs.delete(participantId);
    this.#publishers.delete(participantId);
    this.#fanout.delete(participantId);
    const mine = this.#forwards.get(participantId);
    if (mine !== undefined) for (const publisherId of [...mine.keys()]) this.#drop(participantId, publisherId, false);
    this.#forwards.delete(participantId);
    for (const [subscriberId, forwards] of this.#forwards) {
      if (forwards.has(participantId)) this.#drop(subscriberId, participantId, true);
    }
  }

  subscribe(subscriberId: string, publisherId: string): void {
    const forwards = this.#forwards.get(subscriberId);
    const pc = this.#pcs.get(subscriberId);
    if (forwards === undefined || pc === undefined || forwards.has(publisherId) || subscriberId === publisherId) return;
    if (!this.#publishers.has(publisherId)) return;
    const transceiver = addFreshTransceiver(pc, 'video', 'sendonly');
    forwards.set(publisherId, { publisherId, transceiver });
    let list = this.#fanout.get(publisherId);
    if (list === undefined) this.#fanout.set(publisherId, (list = []));
    list.push(transceiver);
    if (list.length === 1 && this.#publishers.get(publisherId)?.transceiver === null) this.#spill?.want(publisherId, true);
    transceiver.sender.onPictureLossIndication.subscribe(() => this.#requestKeyFrame(publisherId));
    // FIR reaches the sender only as raw RTCP; and werift's RtpRouter routes PSFB by *sender*
    // SSRC first, so feedback from a peer that announced an SSRC on this m-line lands on the
    // receiver instead. Listen on both.
    const onFeedback = (packet: RtcpPacket): void => {
      if (isKeyFrameRequest(packet)) this.#requestKeyFrame(publisherId);
    };
    transceiver.sender.onRtcp.subscribe(onFeedback);
    transceiver.receiver.onRtcp.subscribe(onFeedback);
    this.#renegotiate(subscriberId);
    this.#requestKeyFrame(publisherId);
  }

  /** mid → publisher for the video m-lines `subscriberId` receives (sent with each offer). */
  midsFor(subscriberId: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of this.#forwards.get(subscriberId)?.values() ?? []) {
      if (f.transceiver.mid !== null && f.transceiver.direction !== 'inactive') out[f.transceiver.mid] = f.publisherId;
    }
    return out;
  }

  unsubscribe(subscriberId: string, publisherId: string): void {
    this.#drop(subscriberId, publisherId, true);
  }

  stats(): { packetsIn: number; bytesIn: number; packetsOut: number; bytesOut: number } {
    return { packetsIn: this.#packetsIn, bytesIn: this.#bytesIn, packetsOut: this.#packetsOut, bytesOut: this.#bytesOut };
  }

  close(): void {
    this.#pcs.clear();
    this.#publishers.clear();
    this.#forwards.clear();
    this.#fanout.clear();
  }

  #drop(subscriberId: string, publisherId: string, renegotiate: boolean): void {
    const forwards = this.#forwards.get(subscriberId);
    const f = forwards?.get(publisherId);
    if (forwards === undefined || f === undefined) return;
    forwards.delete(publisherId);
    const list = this.#fanout.get(publisherId);
    if (list !== undefined) {
      const i = list.indexOf(f.transceiver);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0 && this.#publishers.get(publisherId)?.transceiver === null) this.#spill?.want(publisherId, false);
    }
    f.transceiver.setDirection('inactive');
    if (renegotiate) this.#renegotiate(subscriberId);
  }

  #onVideo(publisherId: string, rtp: RtpPacket): void {
    this.#packetsIn++;
    this.#bytesIn += rtp.payload.length + rtp.header.serializeSize;
    // Before the local sends: sendRtp() rewrites the header it is given.
    this.#spill?.localVideo(publisherId, rtp);
    this.#fanoutVideo(publisherId, rtp);
  }

  #fanoutVideo(publisherId: string, rtp: RtpPacket): void {
    const list = this.#fanout.get(publisherId);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      const sender = list[i].sender;
      // sendRtp() rewrites the header it is given and keeps it for NACK: one copy per subscriber.
      const copy = i === list.length - 1 ? rtp : rtp.clone();
      this.#packetsOut++;
      this.#bytesOut += copy.payload.length + copy.header.serializeSize;
      sender.sendRtp(copy).catch((error: unknown) => log.debug({ err: error, roomId: this.#roomId }, 'video send failed'));
    }
  }

  #requestKeyFrame(publisherId: string): void {
    const p = this.#publishers.get(publisherId);
    if (p === undefined) return;
    const now = performance.now();
    if (p.transceiver === null) {
      if (now - p.lastPliMs < MIN_PLI_INTERVAL_MS) return;
      p.lastPliMs = now;
      this.#spill?.keyFrame(publisherId);
      return;
    }
    const ssrc = p.track?.ssrc;
    if (ssrc === undefined) return;
    if (now - p.lastPliMs < MIN_PLI_INTERVAL_MS) return;
    p.lastPliMs = now;
    p.transceiver.receiver.sendRtcpPLI(ssrc).catch(() => undefined);
  }
}
