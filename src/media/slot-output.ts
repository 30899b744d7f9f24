import { RtpHeader, type RTCRtpTransceiver } from 'werift';
import { DirectRtpSender } from './werift-adapter.ts';
import { SlotStream, type SlotHeader } from './slot-stream.ts';
import type { SlotBinding } from './slot-router.ts';
import type { G711Law } from '../codec/g711.ts';
import { AUDIO_LEVEL_URI } from './rtp.ts';

/** Refresh the SR's NTP/RTP pair every this many packets (~0.3 s of 20 ms audio), not per packet. */
const SR_REFRESH_PACKETS = 16;

/** One audio slot of one subscriber: its SlotStream and the werift sender it leaves on. */
export class SlotOutput implements SlotBinding {
  readonly subscriberId: string;
  readonly slot: number;
  readonly stream: SlotStream;
  readonly transceiver: RTCRtpTransceiver;
  readonly #sender: DirectRtpSender;
  readonly #header = new RtpHeader();
  readonly #level = Buffer.alloc(1);
  #midExt: { id: number; payload: Buffer } | null = null;
  #levelExt: { id: number; payload: Buffer } | null = null;
  #configured = false;
  /**
   * What this subscriber's peer negotiated for this track: null for Opus, else the G.711 law. A
   * G.711 subscriber's slots carry forwarded voices transcoded (SlotForwarder), on an 8 kHz clock.
   */
  law: G711Law | null = null;
  packets = 0;
  bytes = 0;

  constructor(subscriberId: string, slot: number, transceiver: RTCRtpTransceiver) {
    this.subscriberId = subscriberId;
    this.slot = slot;
    this.transceiver = transceiver;
    this.#sender = new DirectRtpSender(transceiver.sender);
    this.stream = new SlotStream({
      ssrc: this.#sender.ssrc,
      initialSequence: (Math.random() * 0x10000) | 0,
      initialTimestamp: (Math.random() * 0x1_0000_0000) >>> 0,
    });
  }

  /** The codec the answer negotiated: transcoded slot packets run on G.711's 8 kHz clock, so must the slot's switch arithmetic. */
  setCodec(codec: 'opus' | G711Law): void {
    this.law = codec === 'opus' ? null : codec;
    if (codec === 'opus') this.stream.setClock(48_000, 960);
    else this.stream.setClock(8_000, 160);
  }

  get ready(): boolean {
    return this.#sender.ready;
  }

  get rttMs(): number | undefined {
    return this.#sender.rttMs;
  }

  /**
   * Sends one rewritten packet. `level` is the source's RFC 6464 level (or -1), passed on so
   * receivers (and their own speaker UIs) see it. Returns the bytes sent (RTP, before SRTP).
   */
  send(payload: Buffer, h: SlotHeader, level: number): number {
    if (!this.#configured) this.#configure();
    const header = this.#header;
    header.ssrc = h.ssrc;
    header.sequenceNumber = h.sequenceNumber;
    header.timestamp = h.timestamp;
    header.marker = h.marker;
    const exts = header.extensions;
    exts.length = 0;
    if (this.#midExt !== null) exts.push(this.#midExt);
    if (this.#levelExt !== null && level >= 0) {
      this.#level[0] = level & 0x7f; // V bit 0: level only, voice activity unknown (RFC 6464 §3)
      exts.push(this.#levelExt);
    }
    header.extension = exts.length > 0;
    this.#sender.send(payload, header);
    const size = header.serializeSize + payload.length;
    if (this.packets % SR_REFRESH_PACKETS === 0) this.#sender.refreshSenderReport(h.timestamp);
    this.packets++;
    this.bytes += size;
    return size;
  }

  #configure(): void {
    this.#configured = true;
    this.#header.payloadType = this.#sender.payloadType ?? 111;
    for (const ext of this.transceiver.headerExtensions) {
      if (ext.uri === 'urn:ietf:params:rtp-hdrext:sdes:mid' && this.transceiver.mid !== null) {
        this.#midExt = { id: ext.id, payload: Buffer.from(this.transceiver.mid) };
      } else if (ext.uri === AUDIO_LEVEL_URI) {
        this.#levelExt = { id: ext.id, payload: this.#level };
      }
    }
  }
}

/** Buffer views on codec output (wasm memory views), cached by view: the encoders reuse one view per length. */
const payloadBuffers = new WeakMap<Uint8Array, Buffer>();
export function asBuffer(payload: Uint8Array): Buffer {
  let b = payloadBuffers.get(payload);
  if (b === undefined) payloadBuffers.set(payload, (b = Buffer.from(payload.buffer, payload.byteOffset, payload.length)));
  return b;
}
