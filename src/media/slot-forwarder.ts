import type { G711Law } from '../codec/g711.ts';
import type { AudioTap, InboundAudio } from './audio-tap.ts';
import { asBuffer, type SlotOutput } from './slot-output.ts';
import { SlotRouter, type SlotAssignment } from './slot-router.ts';
import { Transcoder, type TranscodedPacket } from './transcode.ts';

export interface SlotForwarderOptions {
  /** K: audio slots per subscriber. */
  slots: number;
  /** A speaker's own slot carries speaker K+1 (room-modes.ts `slotFillIn`). */
  fillIn: boolean;
  /** A subscriber's slot map changed: the room tells them (`slots` message). */
  onSlotsChanged: (subscriberId: string) => void;
}

/**
 * The slot forwarder tap: the loudest K publishers go out on each subscriber's K slot outputs
 * (SlotRouter picks who, each output's SlotStream rewrites SSRC/sequence/timestamp so the slot is
 * one continuous stream). No decoding, except for G.711 subscribers (hybrid rooms): their outputs
 * say so (`SlotOutput.law`), and the voice they carry is transcoded Opus → G.711 once per
 * (publisher, law) per packet, shared by every G.711 subscriber of that law.
 */
export class SlotForwarder implements AudioTap {
  readonly #router: SlotRouter<SlotOutput>;
  readonly #onSlotsChanged: (subscriberId: string) => void;
  /** One Opus → G.711 Transcoder per (forwarded publisher, law), created on first use. */
  readonly #transcoders = new Map<string, { pcmu?: Transcoder; pcma?: Transcoder }>();
  #closed = false;

  constructor(options: SlotForwarderOptions) {
    this.#router = new SlotRouter<SlotOutput>(options.slots, { fillIn: options.fillIn });
    this.#onSlotsChanged = options.onSlotsChanged;
  }

  addSubscriber(subscriberId: string, outputs: SlotOutput[]): void {
    this.#router.addSubscriber(subscriberId, outputs);
  }

  removeSubscriber(subscriberId: string): void {
    this.#router.removeSubscriber(subscriberId);
  }

  hasSubscriber(subscriberId: string): boolean {
    return this.#router.hasSubscriber(subscriberId);
  }

  /** A participant left: the transcoders of their voice go with them. */
  removePublisher(publisherId: string): void {
    const pair = this.#transcoders.get(publisherId);
    if (pair === undefined) return;
    this.#transcoders.delete(publisherId);
    pair.pcmu?.close();
    pair.pcma?.close();
  }

  assignments(subscriberId: string): SlotAssignment[] {
    return this.#router.assignments(subscriberId);
  }

  /** Times a slot got a new occupant. */
  get switches(): number {
    return this.#router.switches;
  }

  rank(ranking: readonly string[], eligible: (participantId: string) => boolean): void {
    for (const subscriberId of this.#router.update(ranking, eligible)) this.#onSlotsChanged(subscriberId);
  }

  /** Per packet: to every ready slot carrying this publisher, rewritten (and transcoded for G.711 subscribers). */
  onAudio(from: string, a: Readonly<InboundAudio>): void {
    const routes = this.#router.routes(from);
    const n = routes.length;
    if (n === 0) return;
    const { payload, ssrc, sequenceNumber, timestamp, marker, level, now } = a;
    let pcmu: readonly TranscodedPacket[] | null = null;
    let pcma: readonly TranscodedPacket[] | null = null;
    for (let i = 0; i < n; i++) {
      const out = routes[i]!;
      if (!out.ready) continue;
      const law = out.law;
      if (law === null) {
        const h = out.stream.rewriteFields(ssrc, sequenceNumber, timestamp, marker, now);
        if (h !== null) out.send(payload, h, level);
        continue;
      }
      const packets =
        law === 'pcmu'
          ? (pcmu ??= this.#transcoder(from, law).process(payload, sequenceNumber, timestamp))
          : (pcma ??= this.#transcoder(from, law).process(payload, sequenceNumber, timestamp));
      for (let j = 0; j < packets.length; j++) {
        const t = packets[j]!;
        const h = out.stream.rewriteFields(ssrc, t.sequenceNumber, t.timestamp, marker, now);
        if (h !== null) out.send(asBuffer(t.payload), h, level);
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#transcoders.keys()]) this.removePublisher(id);
  }

  #transcoder(publisherId: string, law: G711Law): Transcoder {
    let pair = this.#transcoders.get(publisherId);
    if (pair === undefined) this.#transcoders.set(publisherId, (pair = {}));
    return (pair[law] ??= new Transcoder({ from: 'opus', to: law }));
  }
}
