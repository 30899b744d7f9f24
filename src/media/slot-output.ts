import { RtpHeader, type RTCRtpTransceiver } from 'werift';
import { SlotStream, type SlotHeader } from './slot-stream.ts';
import type { SlotBinding } from './slot-router.ts';
import { AUDIO_LEVEL_URI } from './rtp.ts';

/**
 * The parts of werift's RTCRtpSender the forwarding path touches. They are private in its typings;
 * werift 0.24 keeps them as plain fields (see lib/webrtc/src/media/rtpSender.js). Going around
 * `sender.sendRtp()` skips its per-packet re-parse, extension rebuild and NACK cache (audio slots
 * negotiate no NACK); the sender still produces RTCP SR from the counters we keep here.
 */
interface SenderInternals {
  readonly ssrc: number;
  codec?: { payloadType: number };
  dtlsTransport: { state: string; sendRtp(payload: Buffer, header: RtpHeader): Promise<number> };
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  octetCount: number;
  packetCount: number;
  rtt?: number;
  runRtcp(): Promise<void>;
}

/** RFC 3550 §6.4.1: the SR pairs an NTP time with the RTP timestamp of the same instant. */
const NTP_EPOCH_OFFSET_MS = Date.UTC(1900, 0, 1);
function ntpNow(): bigint {
  const ms = performance.timeOrigin + performance.now() - NTP_EPOCH_OFFSET_MS;
  const seconds = Math.floor(ms / 1000);
  const fraction = Math.floor(((ms % 1000) / 1000) * 0x1_0000_0000);
  return (BigInt(seconds) << 32n) | BigInt(fraction);
}
/** Refresh the SR's NTP/RTP pair every this many packets (~0.3 s of 20 ms audio), not per packet. */
const SR_REFRESH_PACKETS = 16;

/** One audio slot of one subscriber: its SlotStream and the werift sender it leaves on. */
export class SlotOutput implements SlotBinding {
  readonly subscriberId: string;
  readonly slot: number;
  readonly stream: SlotStream;
  readonly transceiver: RTCRtpTransceiver;
  readonly #sender: SenderInternals;
  readonly #header = new RtpHeader();
  readonly #level = Buffer.alloc(1);
  #midExt: { id: number; payload: Buffer } | null = null;
  #levelExt: { id: number; payload: Buffer } | null = null;
  #configured = false;
  packets = 0;
  bytes = 0;

  constructor(subscriberId: string, slot: number, transceiver: RTCRtpTransceiver) {
    this.subscriberId = subscriberId;
    this.slot = slot;
    this.transceiver = transceiver;
    this.#sender = transceiver.sender as unknown as SenderInternals;
    this.stream = new SlotStream({
      ssrc: this.#sender.ssrc,
      initialSequence: (Math.random() * 0x10000) | 0,
      initialTimestamp: (Math.random() * 0x1_0000_0000) >>> 0,
    });
  }

  get ready(): boolean {
    return this.#sender.dtlsTransport?.state === 'connected' && this.#sender.codec !== undefined;
  }

  get rttMs(): number | undefined {
    const rtt = this.#sender.rtt;
    return rtt === undefined ? undefined : rtt * 1000;
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
    const sender = this.#sender;
    void sender.dtlsTransport.sendRtp(payload, header);
    const size = header.serializeSize + payload.length;
    sender.octetCount += payload.length;
    sender.packetCount = (sender.packetCount + 1) >>> 0;
    if (this.packets % SR_REFRESH_PACKETS === 0) {
      sender.ntpTimestamp = ntpNow();
      sender.rtpTimestamp = h.timestamp;
      void sender.runRtcp();
    }
    this.packets++;
    this.bytes += size;
    return size;
  }

  #configure(): void {
    this.#configured = true;
    this.#header.payloadType = this.#sender.codec?.payloadType ?? 111;
    for (const ext of this.transceiver.headerExtensions) {
      if (ext.uri === 'urn:ietf:params:rtp-hdrext:sdes:mid' && this.transceiver.mid !== null) {
        this.#midExt = { id: ext.id, payload: Buffer.from(this.transceiver.mid) };
      } else if (ext.uri === AUDIO_LEVEL_URI) {
        this.#levelExt = { id: ext.id, payload: this.#level };
      }
    }
  }
}
