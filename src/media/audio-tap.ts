/**
 * What a media room does with the audio it receives, behind one small interface
 * (docs/architecture.md, "The way of one audio packet"). The room checks a packet (publish grant,
 * not muted, not empty), feeds the speaker detector, then hands it to each of its taps in turn:
 * the slot forwarder (slot-forwarder.ts), the mixer (mix-room.ts), the recorder (recording-tap.ts).
 * Which taps a room has is a row of the mode table (room-modes.ts).
 */

/**
 * One inbound RTP audio packet as the taps see it. The room reuses ONE object for every packet,
 * so a tap must not keep it (nor `payload`, a view into werift's receive buffer) past `onAudio`.
 */
export interface InboundAudio {
  payload: Buffer;
  ssrc: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payloadType: number;
  /** RFC 6464 audio level (0 loudest … 127 silence), or −1 when the packet has none. */
  level: number;
  /** Arrival time, `performance.now()` ms. */
  now: number;
}

export interface AudioTap {
  /** Per inbound audio packet the room accepted, from participant `from`. Allocates nothing. */
  onAudio(from: string, packet: Readonly<InboundAudio>): void;
  /**
   * The room's ranking tick, when the speaker ranking or the membership changed: `ranking` is the
   * speaker detector's order (loudest first) and `eligible(id)` says whether a publisher may be
   * forwarded as a slot (publish grant, not muted, an Opus publisher).
   */
  rank?(ranking: readonly string[], eligible: (participantId: string) => boolean): void;
  /** Idempotent; the room calls it when the tap goes away or the room closes. */
  close(): void;
}

/** A fresh InboundAudio for a room to reuse. */
export function inboundAudio(): InboundAudio {
  return { payload: Buffer.alloc(0), ssrc: 0, sequenceNumber: 0, timestamp: 0, marker: false, payloadType: 0, level: -1, now: 0 };
}
