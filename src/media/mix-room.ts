import { VoxError } from '../errors.ts';
import type { MediaRoomMode } from '../rooms/media-contract.ts';
import { G711_PAYLOAD_TYPE } from '../codec/g711.ts';
import type { OpusProfileName } from '../codec/profiles.ts';
import { MixClock, type MixClockOptions, type MixClockStats } from './mix-clock.ts';
import { createMixCodecs, type MixCodecs, type MixInputCodec, type MixOutputFormat } from './mix-codecs.ts';
import type { AudioTap, InboundAudio } from './audio-tap.ts';
import { RoomMixer, type RoomMixerOptions, type RoomMixerStats } from './mix.ts';

/**
 * MixRoomAudio: the audio of a `mix` or `hybrid` media room between werift and RoomMixer, without
 * werift. The room hands it every inbound audio payload (`onAudioRtp`) and, in hybrid rooms, the
 * speakers it currently forwards as slots (`setForwarded`); a MixClock ticks the mixer every 20 ms and
 * `onPacket` receives one packet per listener to send on that listener's mix track.
 *
 * - `mix`: every voice goes into the mix; each active speaker hears everyone but themselves (N−1).
 * - `hybrid`: the forwarded top K are left out of every mix (listeners hear them through their
 *   slots), so no voice is heard twice; the mix carries everyone else.
 * - G.711 peers (RFC 3551 §4.5.14): a `pcmu`/`pcma` participant's voice is upsampled into the 48 kHz
 *   bus, and it hears the mix as 8 kHz G.711 (160 bytes per 20 ms, timestamp +160, static PT 0/8).
 *   Opus listeners get RFC 7587 packets (48 kHz clock, +960 per 20 ms).
 *
 * Sequence numbers and timestamps are per listener and continuous (RoomMixer); payload views are
 * valid only during the `onPacket` call (werift serialises them into the SRTP packet synchronously).
 *
 * In a media room it is the mixer tap (audio-tap.ts): `onAudio` per packet, `rank` per ranking
 * change (hybrid: the top K eligible speakers are forwarded, so left out of the mix). The room's
 * own mix is an output anyone may subscribe to (`subscribeRoomMix`; the recorder does).
 */

/** The room modes that mix (RoomMode is defined once, in src/protocol/messages.ts). */
export type MixRoomMode = Exclude<MediaRoomMode, 'sfu'>;
/** What a participant's peer negotiated for audio. */
export type MixPeerCodec = MixInputCodec;

/** Receives the room's own mix, one 20 ms Opus packet per tick (RFC 7587 timestamps). `payload` is valid only during the call. */
export type RoomMixSink = (payload: Uint8Array, timestamp: number) => void;

/** Called once per listener per tick. `payload` is valid only during the call. */
export type MixPacketSink = (
  listenerId: string,
  payload: Uint8Array,
  sequenceNumber: number,
  timestamp: number,
  payloadType: number,
) => void;

export interface MixRoomAudioOptions {
  mode: MixRoomMode;
  /** Receives the mixed packets (the room sends them on the listener's mix track). */
  onPacket: MixPacketSink;
  /** Codec factory (default `createMixCodecs()`: Opus over wasm/opus.wasm, table G.711). */
  codecs?: MixCodecs;
  /** RoomMixer tuning: jitter buffer, limiter, voice threshold, hangover (defaults in RoomMixer). */
  mixer?: Omit<RoomMixerOptions, 'codecs'>;
  /** MixClock tuning (defaults: 20 ms period, 10 ms late tolerance, 5 catch-up ticks). */
  clock?: MixClockOptions;
  /** Opus profile every Opus listener starts with (default `normal`, src/codec/profiles.ts). */
  opusProfile?: OpusProfileName;
  /** Dynamic payload type used for Opus when the participant's own is not given (default 111). */
  opusPayloadType?: number;
  /** Hybrid rooms: K, how many of the top eligible speakers `rank` takes as forwarded (default 3). */
  forwardSlots?: number;
  /**
   * Asked once per tick for each Opus listener: does it get the DRED variant of its mix now (its
   * DredPolicy says so and it can decode DRED; docs/audio.md "DRED")? Unset: nobody does.
   */
  dredFor?: (listenerId: string) => boolean;
}

export interface MixParticipantOptions {
  /** What the peer negotiated (sends and receives). */
  codec: MixPeerCodec;
  /** Their voice goes into the mix. */
  publish: boolean;
  /** They receive a mix. */
  subscribe: boolean;
  /** The payload type their peer negotiated for `codec` (default: 0/8 for G.711, `opusPayloadType` for Opus). */
  payloadType?: number;
}

export interface MixRoomAudioStats {
  mode: MixRoomMode;
  participants: number;
  forwarded: number;
  packetsIn: number;
  packetsOut: number;
  bytesOut: number;
  mixer: RoomMixerStats;
  clock: MixClockStats;
}

interface MixMember {
  codec: MixPeerCodec;
  publish: boolean;
  subscribe: boolean;
  payloadType: number;
  format: MixOutputFormat;
}

export class MixRoomAudio implements AudioTap {
  readonly mode: MixRoomMode;
  readonly #forwardSlots: number;
  readonly #roomMixSinks: RoomMixSink[] = [];
  readonly #rankForwarded: string[] = [];
  readonly #onPacket: MixPacketSink;
  readonly #mixer: RoomMixer;
  readonly #clock: MixClock;
  readonly #members = new Map<string, MixMember>();
  readonly #forwarded = new Set<string>();
  readonly #opusProfile: OpusProfileName;
  readonly #opusPayloadType: number;
  readonly #dredFor: ((listenerId: string) => boolean) | null;
  #packetsIn = 0;
  #packetsOut = 0;
  #bytesOut = 0;
  #closed = false;

  constructor(options: MixRoomAudioOptions) {
    this.mode = options.mode;
    this.#onPacket = options.onPacket;
    this.#opusProfile = options.opusProfile ?? 'normal';
    this.#opusPayloadType = options.opusPayloadType ?? 111;
    this.#forwardSlots = options.forwardSlots ?? 3;
    this.#dredFor = options.dredFor ?? null;
    this.#mixer = new RoomMixer({ ...options.mixer, codecs: options.codecs ?? createMixCodecs() });
    this.#clock = new MixClock(() => this.tick(), { ...options.clock, onSkip: (ticks) => this.#mixer.skip(ticks) });
  }

  /** Adds a participant; adding an id again replaces its settings (e.g. the answer negotiated G.711). */
  addParticipant(id: string, options: MixParticipantOptions): void {
    this.#live();
    const existing = this.#members.get(id);
    // An Opus listener keeps a profile it was stepped to; G.711 has only one format.
    const format: MixOutputFormat =
      options.codec !== 'opus' ? options.codec : existing?.codec === 'opus' ? existing.format : this.#opusProfile;
    const member: MixMember = {
      codec: options.codec,
      publish: options.publish,
      subscribe: options.subscribe,
      payloadType: options.payloadType ?? (options.codec === 'opus' ? this.#opusPayloadType : G711_PAYLOAD_TYPE[options.codec]),
      format,
    };
    if (
      existing !== undefined &&
      existing.codec === member.codec &&
      existing.publish === member.publish &&
      existing.subscribe === member.subscribe
    ) {
      existing.payloadType = member.payloadType;
      return;
    }
    // A participant who neither sends nor receives mixed audio costs the mixer nothing.
    if (existing !== undefined) this.#mixer.removeInput(id);
    this.#members.set(id, member);
    if (member.publish || member.subscribe) {
      this.#mixer.addInput(id, { codec: member.codec, format: member.format, receive: member.subscribe });
    }
  }

  removeParticipant(id: string): void {
    if (!this.#members.delete(id)) return;
    this.#forwarded.delete(id);
    if (!this.#closed) this.#mixer.removeInput(id);
  }

  hasParticipant(id: string): boolean {
    return this.#members.has(id);
  }

  /** Switches an Opus listener's profile (e.g. a weak link steps down to `low`). G.711 listeners keep G.711. */
  setOpusProfile(id: string, profile: OpusProfileName): void {
    const m = this.#members.get(id);
    if (m === undefined) throw new VoxError('MEDIA_UNKNOWN_PARTICIPANT', `${id} is not mixed`);
    if (m.codec !== 'opus' || m.format === profile) return;
    m.format = profile;
    if (m.publish || m.subscribe) this.#mixer.setFormat(id, profile);
  }

  /**
   * One inbound RTP audio payload of participant `id` (per packet; allocates nothing). `audioLevel`
   * is the RFC 6464 level (0–127 −dBov, −1 when absent): silent packets are not decoded.
   * Packets of unknown or non-publishing participants are ignored.
   */
  onAudioRtp(id: string, payload: Uint8Array, sequenceNumber: number, timestamp: number, audioLevel: number, arrivalMs: number): void {
    if (this.#closed) return;
    const m = this.#members.get(id);
    if (m === undefined || !m.publish) return;
    this.#packetsIn++;
    this.#mixer.push(id, payload, sequenceNumber, timestamp, arrivalMs, audioLevel);
  }

  /** The mixer tap's per-packet call (audio-tap.ts). */
  onAudio(from: string, a: Readonly<InboundAudio>): void {
    this.onAudioRtp(from, a.payload, a.sequenceNumber, a.timestamp, a.level, a.now);
  }

  /** The room's ranking changed: in hybrid rooms the top K eligible speakers are the slots' (docs/audio.md, hybrid). */
  rank(ranking: readonly string[], eligible: (participantId: string) => boolean): void {
    if (this.mode !== 'hybrid') return;
    const forwarded = this.#rankForwarded;
    forwarded.length = 0;
    for (let i = 0; i < ranking.length && forwarded.length < this.#forwardSlots; i++) {
      if (eligible(ranking[i]!)) forwarded.push(ranking[i]!);
    }
    this.setForwarded(forwarded);
  }

  /**
   * Subscribes to the room's own mix (everyone in the mix, as a non-publishing listener hears it:
   * the shared encode). Returns the unsubscribe. The mixer encodes it only while someone listens.
   */
  subscribeRoomMix(sink: RoomMixSink): () => void {
    this.#live();
    this.#roomMixSinks.push(sink);
    this.#mixer.openRoomOutput();
    return () => {
      const i = this.#roomMixSinks.indexOf(sink);
      if (i < 0) return;
      this.#roomMixSinks.splice(i, 1);
      if (this.#roomMixSinks.length === 0 && !this.#closed) this.#mixer.closeRoomOutput();
    };
  }

  /**
   * Hybrid rooms: the speakers the slot router forwards right now (top K). They are kept out of
   * every mix from the next tick on. Ignored in `mix` rooms.
   */
  setForwarded(ids: Iterable<string>): void {
    if (this.mode !== 'hybrid') return;
    this.#forwarded.clear();
    for (const id of ids) this.#forwarded.add(id);
  }

  /** Ids forwarded as slots (hybrid), so excluded from the mix. */
  get forwarded(): ReadonlySet<string> {
    return this.#forwarded;
  }

  start(): void {
    this.#live();
    this.#clock.start();
  }

  stop(): void {
    this.#clock.stop();
  }

  get running(): boolean {
    return this.#clock.running;
  }

  /** Mixes one 20 ms frame and hands every listener its packet. The clock calls this; so can a test driving simulated time. */
  tick(): void {
    if (this.#closed) return;
    if (this.#dredFor !== null) this.#members.forEach(this.#applyDred);
    const packets = this.#mixer.tick(this.mode === 'hybrid' ? this.#forwarded : undefined);
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i]!;
      const m = this.#members.get(p.listenerId);
      if (m === undefined) continue;
      this.#packetsOut++;
      this.#bytesOut += p.payload.length;
      try {
        this.#onPacket(p.listenerId, p.payload, p.sequenceNumber, p.timestamp, m.payloadType);
      } catch {
        // One listener's broken transport must not starve the others of this tick.
      }
    }
    const room = this.#mixer.roomPacket;
    if (room === null) return;
    const sinks = this.#roomMixSinks;
    for (let i = 0; i < sinks.length; i++) {
      try {
        sinks[i]!(room.payload, room.timestamp);
      } catch {
        // A failing subscriber (a recorder's disk) must not stop the mix.
      }
    }
  }

  /** Per tick and Opus listener (Map#forEach: no entry arrays): the DRED variant or the plain mix. */
  readonly #applyDred = (m: MixMember, id: string): void => {
    if (!m.subscribe || m.codec !== 'opus' || this.#dredFor === null) return;
    let on = false;
    try {
      on = this.#dredFor(id);
    } catch {
      // A listener whose state cannot be read gets the plain mix.
    }
    this.#mixer.setDred(id, on);
  };

  /** Ids mixed in the last tick (active speakers not forwarded as slots). */
  activeSpeakers(): string[] {
    return this.#mixer.activeSpeakers();
  }

  toJSON(): MixRoomAudioStats {
    return {
      mode: this.mode,
      participants: this.#members.size,
      forwarded: this.#forwarded.size,
      packetsIn: this.#packetsIn,
      packetsOut: this.#packetsOut,
      bytesOut: this.#bytesOut,
      mixer: this.#mixer.toJSON(),
      clock: this.#clock.toJSON(),
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#clock.stop();
    this.#closed = true;
    this.#members.clear();
    this.#forwarded.clear();
    this.#roomMixSinks.length = 0;
    this.#mixer.close();
  }

  #live(): void {
    if (this.#closed) throw new VoxError('CLOSED', 'MixRoomAudio is closed');
  }
}
