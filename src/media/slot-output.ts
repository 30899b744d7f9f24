import { RtpHeader, type RTCRtpTransceiver } from 'werift';
import { DirectRtpSender, FastRtpSender, FastSend } from './werift-adapter.ts';
import { SlotStream, type SlotHeader } from './slot-stream.ts';
import type { SlotBinding } from './slot-router.ts';
import type { G711Law } from '../codec/g711.ts';
import { AUDIO_LEVEL_URI } from './rtp.ts';
import { OutputResilience, type DownlinkResilience } from './red-output.ts';
import { copyPrefix } from './bytes.ts';

/** Refresh the SR's NTP/RTP pair every this many packets (~0.3 s of 20 ms audio), not per packet. */
const SR_REFRESH_PACKETS = 16;

/**
 * Fast path send buffers of one output. Node's dgram sends on the next tick (after its address
 * lookup), later still when the socket's buffer is full, so a buffer stays busy from its send until
 * Node's send callback (one bound callback per buffer, made once). Four cover steady 20 ms audio; a
 * burst (the mix clock catching up) grows the ring up to RING_MAX, past that werift's path takes
 * the packet. One Ethernet MTU each; larger packets take werift's path too.
 */
const RING_START = 4;
const RING_MAX = 32;
const FAST_BUFFER_BYTES = 1500;
class SendRing {
  readonly buffers: Buffer[] = [];
  readonly busy: boolean[] = [];
  readonly release: (() => void)[] = [];
  #at = 0;

  constructor() {
    for (let i = 0; i < RING_START; i++) this.#grow();
  }

  /** A free buffer's index (the ring grows up to RING_MAX), or −1. */
  acquire(): number {
    const n = this.buffers.length;
    for (let i = 0; i < n; i++) {
      const k = (this.#at + i) % n;
      if (!this.busy[k]) {
        this.#at = (k + 1) % n;
        return k;
      }
    }
    return n < RING_MAX ? this.#grow() : -1;
  }

  #grow(): number {
    const k = this.buffers.length;
    this.buffers.push(Buffer.allocUnsafe(FAST_BUFFER_BYTES));
    this.busy.push(false);
    this.release.push(() => {
      this.busy[k] = false;
    });
    return k;
  }
}
/** RFC 8285 one-byte header extensions: ids 1..14, 1..16 bytes each. */
const ONE_BYTE_PROFILE = 0xbede;

/** One audio slot of one subscriber: its SlotStream and the werift sender it leaves on. */
export class SlotOutput implements SlotBinding {
  readonly subscriberId: string;
  readonly slot: number;
  readonly stream: SlotStream;
  readonly transceiver: RTCRtpTransceiver;
  readonly #sender: DirectRtpSender;
  /** VoxLink's SRTP straight onto the socket (config `media.fastSrtp`), or null for werift's path. */
  readonly #fast: FastRtpSender | null;
  #ring: SendRing | null = null;
  /** The mid bytes (RFC 8843) and ids as written by the fast path; `#fastHeader` false when they do not fit one-byte extensions. */
  #midBytes: Buffer | null = null;
  #midId = 0;
  #levelId = 0;
  #fastHeader = true;
  readonly #header = new RtpHeader();
  readonly #level = Buffer.alloc(1);
  #midExt: { id: number; payload: Buffer } | null = null;
  #levelExt: { id: number; payload: Buffer } | null = null;
  #configured = false;
  /** RED and NACK toward this subscriber (docs/audio.md "Resilience"), or null when the room has none. */
  readonly resilience: OutputResilience | null;
  /**
   * What this subscriber's peer negotiated for this track: null for Opus, else the G.711 law. A
   * G.711 subscriber's slots carry forwarded voices transcoded (SlotForwarder), on an 8 kHz clock.
   */
  law: G711Law | null = null;
  packets = 0;
  bytes = 0;

  constructor(subscriberId: string, slot: number, transceiver: RTCRtpTransceiver, fastSrtp = false, link: DownlinkResilience | null = null) {
    this.subscriberId = subscriberId;
    this.slot = slot;
    this.transceiver = transceiver;
    this.#sender = new DirectRtpSender(transceiver.sender);
    this.#fast = fastSrtp ? new FastRtpSender(transceiver.sender) : null;
    this.stream = new SlotStream({
      ssrc: this.#sender.ssrc,
      initialSequence: (Math.random() * 0x10000) | 0,
      initialTimestamp: (Math.random() * 0x1_0000_0000) >>> 0,
    });
    this.resilience = link === null ? null : new OutputResilience(link, transceiver, this.#sender.ssrc, (packet, length) => this.#resend(packet, length));
    if (this.resilience !== null) this.resilience.rttMs = () => this.#sender.rttMs;
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

  /** Packets dropped because the fast path could not take them after it had started (ring full, oversize, transport down). */
  droppedFast = 0;

  /** Packets this output sent on the fast path (VoxLink's SRTP); the rest went through werift's. */
  get fastPackets(): number {
    return this.#fast?.packets ?? 0;
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
    let pt = this.#header.payloadType;
    const res = this.resilience;
    if (res !== null) {
      payload = res.wrap(payload, h.sequenceNumber, h.timestamp);
      pt = res.payloadType;
    }
    if (this.#fast !== null && this.#fastHeader) {
      const size = this.#sendFast(this.#fast, payload, h, level, pt);
      if (size > 0) {
        if (this.packets % SR_REFRESH_PACKETS === 0) this.#sender.refreshSenderReport(h.timestamp);
        this.packets++;
        this.bytes += size;
        return size;
      }
      if (this.#fast.packets > 0) {
        // Our SRTP context already protected this stream: werift's own context keeps a separate
        // rollover counter, so after a sequence wrap its packet would reuse a keystream ours used
        // (RFC 3711 §9.1 forbids it) and fail at the receiver. Drop it instead, like a lost packet.
        this.droppedFast++;
        return 0;
      }
    }
    const header = this.#header;
    const configuredPt = header.payloadType;
    header.payloadType = pt;
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
    header.payloadType = configuredPt;
    const size = header.serializeSize + payload.length;
    if (this.packets % SR_REFRESH_PACKETS === 0) this.#sender.refreshSenderReport(h.timestamp);
    this.packets++;
    this.bytes += size;
    return size;
  }

  /**
   * Serialises the packet (RFC 3550 §5.1 header, RFC 8285 one-byte extensions: mid, then the RFC
   * 6464 level) into a free ring buffer and sends it on the fast path. Returns the RTP size, or 0
   * when werift's path must take it.
   */
  #sendFast(fast: FastRtpSender, payload: Buffer, h: SlotHeader, level: number, pt: number): number {
    const ring = (this.#ring ??= new SendRing());
    const slot = ring.acquire();
    if (slot < 0) return 0;
    const buf = ring.buffers[slot]!;
    const mid = this.#midBytes;
    const withLevel = this.#levelId !== 0 && level >= 0;
    const hasExt = mid !== null || withLevel;
    buf[0] = hasExt ? 0x90 : 0x80;
    buf[1] = (h.marker ? 0x80 : 0) | (pt & 0x7f);
    buf.writeUInt16BE(h.sequenceNumber & 0xffff, 2);
    buf.writeUInt32BE(h.timestamp >>> 0, 4);
    buf.writeUInt32BE(h.ssrc >>> 0, 8);
    let at = 12;
    if (hasExt) {
      buf.writeUInt16BE(ONE_BYTE_PROFILE, 12);
      at = 16;
      if (mid !== null) {
        buf[at++] = (this.#midId << 4) | (mid.length - 1);
        at += mid.copy(buf, at);
      }
      if (withLevel) {
        buf[at++] = this.#levelId << 4; // length 1
        buf[at++] = level & 0x7f; // V bit 0: level only (RFC 6464 §3)
      }
      while ((at & 3) !== 0) buf[at++] = 0;
      buf.writeUInt16BE((at - 16) >>> 2, 14);
    }
    const size = at + payload.length;
    if (size + FastRtpSender.MAX_OVERHEAD > FAST_BUFFER_BYTES) return 0;
    payload.copy(buf, at);
    this.resilience?.sent(buf, size, h.sequenceNumber);
    const sent = fast.send(buf, size, payload.length, ring.release[slot]!);
    if (sent === FastSend.FALLBACK) return 0;
    if (sent === FastSend.PENDING) ring.busy[slot] = true;
    return size;
  }

  /** A NACKed packet again, exactly as first sent (fast path only; see nack.ts). True when it went out. */
  #resend(packet: Buffer, length: number): boolean {
    const fast = this.#fast;
    if (fast === null || fast.packets === 0) return false;
    const ring = (this.#ring ??= new SendRing());
    const slot = ring.acquire();
    if (slot < 0 || length + FastRtpSender.MAX_OVERHEAD > FAST_BUFFER_BYTES) return false;
    const buf = ring.buffers[slot]!;
    // The whole history entry (256 bytes, or grown to at most FAST_BUFFER_BYTES): a whole-buffer
    // copy allocates nothing, where Buffer#copy of its first `length` bytes would make a view.
    if (packet.length <= buf.length) buf.set(packet);
    else copyPrefix(packet, length, buf, 0);
    const payloadBytes = length - 12;
    const sent = fast.send(buf, length, payloadBytes, ring.release[slot]!);
    if (sent === FastSend.FALLBACK) return false;
    if (sent === FastSend.PENDING) ring.busy[slot] = true;
    return true;
  }

  #configure(): void {
    this.#configured = true;
    this.#header.payloadType = this.#sender.payloadType ?? 111;
    this.resilience?.configure(this.transceiver, this.#header.payloadType);
    for (const ext of this.transceiver.headerExtensions) {
      if (ext.uri === 'urn:ietf:params:rtp-hdrext:sdes:mid' && this.transceiver.mid !== null) {
        this.#midExt = { id: ext.id, payload: Buffer.from(this.transceiver.mid) };
        this.#midBytes = this.#midExt.payload;
        this.#midId = ext.id;
      } else if (ext.uri === AUDIO_LEVEL_URI) {
        this.#levelExt = { id: ext.id, payload: this.#level };
        this.#levelId = ext.id;
      }
    }
    const mid = this.#midBytes;
    this.#fastHeader =
      this.#midId <= 14 && this.#levelId <= 14 && (mid === null || (mid.length >= 1 && mid.length <= 16 && this.#midId >= 1));
  }
}

/** Buffer views on codec output (wasm memory views), cached by view: the encoders reuse one view per length. */
const payloadBuffers = new WeakMap<Uint8Array, Buffer>();
export function asBuffer(payload: Uint8Array): Buffer {
  let b = payloadBuffers.get(payload);
  if (b === undefined) payloadBuffers.set(payload, (b = Buffer.from(payload.buffer, payload.byteOffset, payload.length)));
  return b;
}
