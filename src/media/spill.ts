import type { MessagePort } from 'node:worker_threads';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { inboundAudio, type InboundAudio } from './audio-tap.ts';
import { BatchReceiver, BatchSender } from './spill-batch.ts';
import { RingReceiver, RingSender } from './spill-ring.ts';
import {
  AUDIO_HEADER_BYTES,
  KIND_AUDIO,
  KIND_KEYFRAME,
  KIND_RANKING,
  KIND_VIDEO,
  KIND_VIDEO_WANT,
  MAX_RECORD_BYTES,
  NO_LEVEL,
  OFF_COUNT,
  OFF_FLAGS,
  OFF_KIND,
  OFF_LEN,
  OFF_LEVEL,
  OFF_MEMBER,
  OFF_PAYLOAD_LEN,
  OFF_PT,
  OFF_RTP_LEN,
  OFF_SEQ,
  OFF_SSRC,
  OFF_TS,
  RANKING_HEADER_BYTES,
  VIDEO_HEADER_BYTES,
  padded,
  type SpillReceiver,
  type SpillSender,
} from './spill-wire.ts';

/**
 * One room over several workers (docs/media.md "Rooms over several workers"): the part of a
 * room's worker that talks to the room's other workers. Each worker of the room (a "shard") hosts
 * some participants' peers; the main thread tells every shard who is in the room on the others
 * (`RemoteMember`, numbered the same everywhere) and links every pair of shards. Per accepted
 * publisher packet a shard writes one record per linked shard (not per subscriber there); the
 * receiving shard hands it to its taps as if the publisher were local. The home shard ranks the
 * speakers for the whole room and sends its ranking to the others, which map their own
 * subscribers' slots from it.
 */

/** A participant whose peer is on another worker of the room. */
export interface RemoteMember {
  participantId: string;
  /** The participant's number in the room (1…65535), the same on every shard. */
  number: number;
  name: string;
  userId?: string;
  publish: boolean;
  muted: boolean;
}

/** One link to another shard of the room, as the main thread hands it over (one end of each direction). */
export type SpillLinkEnd =
  | { peer: number; transport: 'ring'; send: SharedArrayBuffer; receive: SharedArrayBuffer }
  | { peer: number; transport: 'batch'; port: MessagePort };

export interface SpillStats {
  shard: number;
  home: boolean;
  links: number;
  remoteMembers: number;
  /** Records written to other shards (audio once per linked shard, rankings). */
  recordsOut: number;
  recordsIn: number;
  /** Records a full link refused. */
  dropped: number;
  /** Audio records naming no known member (e.g. it left meanwhile). */
  unknownMember: number;
}

export interface SpillFabricOptions {
  shard: number;
  home: boolean;
  /** Audio of a remote publisher, in a reused InboundAudio (valid during the call only). */
  onAudio(participantId: string, a: Readonly<InboundAudio>): void;
  /** The home's ranking arrived (spill shards only); the array is reused. */
  onRanking(ranking: readonly string[]): void;
  /** A remote publisher's video packet (a copy, the room may keep it). */
  onVideo?(participantId: string, rtp: Buffer): void;
  /** Another shard asks for a key frame of a publisher here. */
  onKeyFrame?(participantId: string): void;
}

interface Link {
  readonly peer: number;
  readonly sender: SpillSender;
  readonly receiver: SpillReceiver;
}

const log = logger('media-spill');

type CopyOut = (start: number, length: number) => Buffer;

export class SpillFabric {
  readonly shard: number;
  readonly home: boolean;
  readonly #options: SpillFabricOptions;
  readonly #links: Link[] = [];
  readonly #remote = new Map<string, RemoteMember>();
  /** number → participant id, for every member (local and remote) this shard knows. */
  readonly #ids: (string | undefined)[] = [];
  readonly #numbers = new Map<string, number>();
  readonly #out = Buffer.alloc(MAX_RECORD_BYTES);
  /**
   * Views of `#out`'s first n bytes, one per record length, made once: a link copies a whole view
   * with `TypedArray#set` (Node 20's Buffer#copy of part of `#out` would make a view per packet).
   */
  readonly #outViews: (Buffer | undefined)[] = [];
  readonly #inbound = inboundAudio();
  readonly #ranking: string[] = [];
  /** Local publisher → the shards that asked for its video. */
  readonly #videoWants = new Map<string, Set<number>>();
  #recordsOut = 0;
  #unknownMember = 0;
  #droppedRetired = 0;
  #recordsInRetired = 0;
  #closed = false;

  constructor(options: SpillFabricOptions) {
    this.shard = options.shard;
    this.home = options.home;
    this.#options = options;
  }

  get linked(): boolean {
    return this.#links.length > 0;
  }

  remote(participantId: string): RemoteMember | undefined {
    return this.#remote.get(participantId);
  }

  remoteMembers(): IterableIterator<RemoteMember> {
    return this.#remote.values();
  }

  /** A participant whose peer is on this shard: its number, so its packets can be named on the links. */
  addLocal(participantId: string, number: number | undefined): void {
    this.#remote.delete(participantId);
    if (number !== undefined) this.#number(participantId, number);
  }

  removeLocal(participantId: string): void {
    this.#videoWants.delete(participantId);
    this.#forget(participantId);
  }

  /** Adds or updates a remote member; returns the previous entry. */
  setRemote(member: RemoteMember): RemoteMember | undefined {
    if (!Number.isInteger(member.number) || member.number < 1 || member.number > 0xffff) {
      throw new VoxError('INVALID_ARGUMENT', `member number must be 1…65535, got ${member.number}`);
    }
    const previous = this.#remote.get(member.participantId);
    this.#remote.set(member.participantId, { ...member });
    this.#number(member.participantId, member.number);
    return previous;
  }

  removeRemote(participantId: string): boolean {
    if (!this.#remote.delete(participantId)) return false;
    this.#forget(participantId);
    return true;
  }

  link(end: SpillLinkEnd): void {
    if (this.#closed) throw new VoxError('CLOSED', 'spill fabric closed');
    this.unlink(end.peer);
    const peer = end.peer;
    const onRecord = (buf: Buffer, at: number, len: number, copy: CopyOut): void => this.#receive(buf, at, len, peer, copy);
    const link: Link =
      end.transport === 'ring'
        ? { peer: end.peer, sender: new RingSender(end.send), receiver: new RingReceiver(end.receive, onRecord) }
        : { peer: end.peer, sender: new BatchSender(end.port), receiver: new BatchReceiver(end.port, onRecord) };
    this.#links.push(link);
    log.debug({ shard: this.shard, peer: end.peer, transport: end.transport }, 'spill link up');
  }

  unlink(peer: number): void {
    const i = this.#links.findIndex((l) => l.peer === peer);
    if (i < 0) return;
    const [link] = this.#links.splice(i, 1);
    for (const wants of this.#videoWants.values()) wants.delete(peer);
    this.#droppedRetired += link!.sender.dropped;
    this.#recordsInRetired += link!.receiver.records;
    link!.sender.close();
    link!.receiver.close();
  }

  /** Per accepted local publisher packet: one record, copied once into each linked shard's link. */
  forward(participantId: string, a: Readonly<InboundAudio>): void {
    const links = this.#links;
    const n = links.length;
    if (n === 0) return;
    const number = this.#numbers.get(participantId);
    const payloadLen = a.payload.length;
    const len = padded(AUDIO_HEADER_BYTES + payloadLen);
    if (number === undefined || len > MAX_RECORD_BYTES) return;
    const out = this.#out;
    out.writeUInt16LE(len, OFF_LEN);
    out[OFF_KIND] = KIND_AUDIO;
    out[OFF_FLAGS] = a.marker ? 1 : 0;
    out.writeUInt16LE(number, OFF_MEMBER);
    out.writeUInt16LE(a.sequenceNumber & 0xffff, OFF_SEQ);
    out.writeUInt32LE(a.timestamp >>> 0, OFF_TS);
    out.writeUInt32LE(a.ssrc >>> 0, OFF_SSRC);
    out[OFF_PT] = a.payloadType & 0x7f;
    out[OFF_LEVEL] = a.level < 0 ? NO_LEVEL : a.level & 0x7f;
    out.writeUInt16LE(payloadLen, OFF_PAYLOAD_LEN);
    a.payload.copy(out, AUDIO_HEADER_BYTES);
    const record = this.#record(len);
    for (let i = 0; i < n; i++) links[i]!.sender.write(record, len);
    this.#recordsOut += n;
  }

  /** The home's ranking (already filtered to who may be forwarded) to every other shard. */
  sendRanking(ranking: readonly string[]): void {
    const links = this.#links;
    if (links.length === 0) return;
    const out = this.#out;
    let count = 0;
    for (let i = 0; i < ranking.length && RANKING_HEADER_BYTES + 2 * (count + 1) <= MAX_RECORD_BYTES; i++) {
      const number = this.#numbers.get(ranking[i]!);
      if (number === undefined) continue;
      out.writeUInt16LE(number, RANKING_HEADER_BYTES + 2 * count);
      count++;
    }
    const len = padded(RANKING_HEADER_BYTES + 2 * count);
    out.writeUInt16LE(len, OFF_LEN);
    out[OFF_KIND] = KIND_RANKING;
    out[OFF_FLAGS] = 0;
    out.writeUInt16LE(count, OFF_COUNT);
    for (const link of links) link.sender.write(out, len);
    this.#recordsOut += links.length;
  }

  /** Whether another shard asked for this local publisher's video. */
  wantsVideo(participantId: string): boolean {
    const wants = this.#videoWants.get(participantId);
    return wants !== undefined && wants.size > 0;
  }

  /** A local publisher's video packet (serialized RTP) to the shards that asked for it. */
  forwardVideo(participantId: string, rtp: Buffer): void {
    const wants = this.#videoWants.get(participantId);
    const number = this.#numbers.get(participantId);
    const len = padded(VIDEO_HEADER_BYTES + rtp.length);
    if (wants === undefined || wants.size === 0 || number === undefined || len > MAX_RECORD_BYTES) return;
    const out = this.#out;
    this.#header(out, len, KIND_VIDEO, 0, number);
    out.writeUInt16LE(rtp.length, OFF_RTP_LEN);
    rtp.copy(out, VIDEO_HEADER_BYTES);
    const record = this.#record(len);
    for (const link of this.#links) {
      if (!wants.has(link.peer)) continue;
      link.sender.write(record, len);
      this.#recordsOut++;
    }
  }

  /** This shard's subscribers want (or no longer want) a remote publisher's video: asks every other shard (its own shard acts). */
  wantVideo(participantId: string, want: boolean): void {
    this.#control(participantId, KIND_VIDEO_WANT, want ? 1 : 0);
  }

  /** A key frame of a remote publisher, asked of its shard (a PLI upstream there). */
  requestKeyFrame(participantId: string): void {
    this.#control(participantId, KIND_KEYFRAME, 0);
  }

  #control(participantId: string, kind: number, flags: number): void {
    const number = this.#numbers.get(participantId);
    if (number === undefined) return;
    const out = this.#out;
    this.#header(out, 8, kind, flags, number);
    for (const link of this.#links) link.sender.write(out, 8);
    this.#recordsOut += this.#links.length;
  }

  /** `#out`'s first `len` bytes as a whole view (made once per length). */
  #record(len: number): Buffer {
    let view = this.#outViews[len];
    if (view === undefined) this.#outViews[len] = view = this.#out.subarray(0, len);
    return view;
  }

  #header(out: Buffer, len: number, kind: number, flags: number, number: number): void {
    out.writeUInt16LE(len, OFF_LEN);
    out[OFF_KIND] = kind;
    out[OFF_FLAGS] = flags;
    out.writeUInt16LE(number, OFF_MEMBER);
  }

  stats(): SpillStats {
    let dropped = this.#droppedRetired;
    let recordsIn = this.#recordsInRetired;
    for (const l of this.#links) {
      dropped += l.sender.dropped;
      recordsIn += l.receiver.records;
    }
    return {
      shard: this.shard,
      home: this.home,
      links: this.#links.length,
      remoteMembers: this.#remote.size,
      recordsOut: this.#recordsOut,
      recordsIn,
      dropped,
      unknownMember: this.#unknownMember,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of [...this.#links]) this.unlink(l.peer);
    this.#remote.clear();
  }

  #number(participantId: string, number: number): void {
    const old = this.#numbers.get(participantId);
    if (old !== undefined && this.#ids[old] === participantId) this.#ids[old] = undefined;
    this.#numbers.set(participantId, number);
    this.#ids[number] = participantId;
  }

  #forget(participantId: string): void {
    const number = this.#numbers.get(participantId);
    if (number === undefined) return;
    this.#numbers.delete(participantId);
    if (this.#ids[number] === participantId) this.#ids[number] = undefined;
  }

  #receive(buf: Buffer, at: number, len: number, peer: number, copy: CopyOut): void {
    if (this.#closed) return;
    const kind = buf[at + OFF_KIND];
    if (kind === KIND_VIDEO || kind === KIND_VIDEO_WANT || kind === KIND_KEYFRAME) {
      this.#receiveVideo(buf, at, len, peer, kind, copy);
      return;
    }
    if (kind === KIND_AUDIO) {
      const id = this.#ids[buf.readUInt16LE(at + OFF_MEMBER)];
      const payloadLen = buf.readUInt16LE(at + OFF_PAYLOAD_LEN);
      if (id === undefined || !this.#remote.has(id) || AUDIO_HEADER_BYTES + payloadLen > len) {
        this.#unknownMember++;
        return;
      }
      const a = this.#inbound;
      // The payload as a Buffer of its own length (taps read `payload.length`), reused per length.
      a.payload = copy(at + AUDIO_HEADER_BYTES, payloadLen);
      a.marker = (buf[at + OFF_FLAGS]! & 1) !== 0;
      a.sequenceNumber = buf.readUInt16LE(at + OFF_SEQ);
      a.timestamp = buf.readUInt32LE(at + OFF_TS);
      a.ssrc = buf.readUInt32LE(at + OFF_SSRC);
      a.payloadType = buf[at + OFF_PT]!;
      const level = buf[at + OFF_LEVEL]!;
      a.level = level === NO_LEVEL ? -1 : level;
      a.now = performance.now();
      this.#options.onAudio(id, a);
      return;
    }
    if (kind === KIND_RANKING && !this.home) {
      const count = buf.readUInt16LE(at + OFF_COUNT);
      const ranking = this.#ranking;
      ranking.length = 0;
      for (let i = 0; i < count && RANKING_HEADER_BYTES + 2 * (i + 1) <= len; i++) {
        const id = this.#ids[buf.readUInt16LE(at + RANKING_HEADER_BYTES + 2 * i)];
        if (id !== undefined) ranking.push(id);
      }
      this.#options.onRanking(ranking);
    }
  }

  /**
   * Video records. The packet handed on is a copy the room may keep (werift's RtpPacket keeps its
   * buffer): one allocation per video packet, the copy itself, and no view besides.
   */
  #receiveVideo(buf: Buffer, at: number, len: number, peer: number, kind: number, copy: CopyOut): void {
    const id = this.#ids[buf.readUInt16LE(at + OFF_MEMBER)];
    if (id === undefined) {
      this.#unknownMember++;
      return;
    }
    if (kind === KIND_VIDEO) {
      const rtpLen = buf.readUInt16LE(at + OFF_RTP_LEN);
      if (!this.#remote.has(id) || VIDEO_HEADER_BYTES + rtpLen > len) return;
      const rtp = Buffer.allocUnsafe(rtpLen);
      rtp.set(copy(at + VIDEO_HEADER_BYTES, rtpLen));
      this.#options.onVideo?.(id, rtp);
      return;
    }
    // Wants and key-frame requests are for the publisher's own shard only.
    if (this.#remote.has(id)) return;
    if (kind === KIND_KEYFRAME) {
      this.#options.onKeyFrame?.(id);
      return;
    }
    let wants = this.#videoWants.get(id);
    if (wants === undefined) this.#videoWants.set(id, (wants = new Set()));
    if ((buf[at + OFF_FLAGS]! & 1) !== 0) {
      wants.add(peer);
      this.#options.onKeyFrame?.(id);
    } else wants.delete(peer);
  }
}
