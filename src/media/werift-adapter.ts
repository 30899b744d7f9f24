import type { Socket } from 'node:dgram';
import { RtpHeader, type RTCPeerConnection, type RTCRtpReceiver, type RTCRtpSender, type RTCRtpTransceiver, type RtcpPacket } from 'werift';
import { VoxError } from '../errors.ts';
import { SrtpContext, SrtpProfile, type SrtpMasterKeys } from './srtp/index.ts';

/**
 * Every place VoxLink reaches past werift's public API, in one file (docs/architecture.md, "Threads
 * and what each owns"). Each entry says why it is needed and what it relies on. All of them were
 * checked against werift 0.24.4 (node_modules/werift/package.json; the project pins `~0.24.4`):
 * a werift upgrade re-reads this file and nothing else. Nothing outside this module touches
 * werift's private fields or replaces its methods.
 */
export const WERIFT_CHECKED_VERSION = '0.24.4';

// ---------------------------------------------------------------------------------------------
// Inbound: guards against hostile datagrams
// ---------------------------------------------------------------------------------------------

let rtpHeaderGuarded = false;

/**
 * Garbage guard for werift 0.24 (checked 0.24.4, lib/rtp/src/rtp/rtp.js): `RtpHeader.deSerialize`
 * walks a header extension's declared length past the end of the packet, copying its extension
 * array each step (quadratic). SRTP parses the header before authenticating, so one
 * unauthenticated 60-byte datagram from anyone (X=1, profile 0xBEDE, length 0xFFFF) froze the
 * process for ~30 minutes (test/media/garbage-udp.test.ts). Refuse headers whose CSRCs or extension
 * overrun the packet; werift turns the throw into an SRTP authentication failure and drops the
 * datagram. Process-wide (a static of werift's class) and idempotent; media rooms install it.
 */
export function installRtpHeaderGuard(): void {
  if (rtpHeaderGuarded) return;
  rtpHeaderGuarded = true;
  const deSerialize = RtpHeader.deSerialize.bind(RtpHeader);
  RtpHeader.deSerialize = (raw: Buffer): RtpHeader => {
    const b0 = raw[0] ?? 0;
    if ((b0 & 0x10) !== 0) {
      const ext = 12 + 4 * (b0 & 0x0f);
      if (raw.length < ext + 4 || ext + 4 + 4 * raw.readUInt16BE(ext + 2) > raw.length) {
        throw new VoxError('PROTOCOL_ERROR', 'RTP header extension overruns the packet');
      }
    }
    return deSerialize(raw);
  };
}

/**
 * True for a DTLS-range datagram werift would wrongly treat as a close: a record of unknown content
 * type, or once connected any alert. werift closes on an alert whose first two bytes look like a
 * plaintext warning without authenticating it; dropping genuine (encrypted) alerts too only leaves a
 * peer's close_notify to signalling `leave` and ICE failure.
 */
export function isForgedDtls(data: Buffer, connected: boolean): boolean {
  const b0 = data[0] ?? 0;
  if (b0 < 20 || b0 >= 64) return false;
  for (let at = 0; at + 13 <= data.length; ) {
    const type = data[at]!;
    const length = data.readUInt16BE(at + 11);
    if (type < 20 || type > 23) return true;
    if (type === 21 && connected) return true;
    at += 13 + length;
  }
  return false;
}

/**
 * Garbage guard for werift 0.24's DTLS (checked 0.24.4, lib/dtls/src/record), which takes anyone's
 * datagrams: a record of unknown content type (first byte 24..63) is handled as an alert, an alert
 * is closed on without authentication, and either closes the session. One forged 13..15-byte
 * datagram silenced a participant (test/media/garbage-udp.test.ts). Wraps each ICE transport's
 * `connection.onData.execute` (werift's rx.mini Event; the DTLS transport subscribes to it) so
 * those datagrams are dropped before werift sees them. Call once per peer, before ICE starts.
 */
export function installForgedDtlsFilter(pc: RTCPeerConnection): void {
  for (const ice of pc.iceTransports) {
    const onData = ice.connection.onData as unknown as { execute: (data: Buffer) => void };
    const deliver = onData.execute;
    onData.execute = (data: Buffer) => {
      if (!isForgedDtls(data, pc.dtlsTransports[0]?.state === 'connected')) deliver(data);
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Outbound: the forwarding path's direct send
// ---------------------------------------------------------------------------------------------

/**
 * The parts of werift's RTCRtpSender the forwarding path touches. They are private in its typings;
 * werift 0.24 (checked 0.24.4, lib/webrtc/src/media/rtpSender.js) keeps them as plain fields. Going
 * around `sender.sendRtp()` skips its per-packet re-parse, extension rebuild and NACK cache (audio
 * slots negotiate no NACK); the sender still produces RTCP SR from the counters kept here.
 */
interface SenderInternals {
  readonly ssrc: number;
  codec?: { payloadType: number };
  dtlsTransport: { state: string; sendRtp(payload: Buffer, header: RtpHeader): Promise<number> };
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  octetCount: number;
  packetCount: number;
  /** Round-trip time from the last RTCP RR (LSR/DLSR), seconds; werift sets it in handleRtcpPacket. */
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

/**
 * A werift sender driven directly: SRTP-protect and send one packet on the sender's DTLS transport,
 * and keep the counters its RTCP sender reports read. Allocates nothing per packet except werift's
 * own SRTP work.
 */
export class DirectRtpSender {
  readonly #sender: SenderInternals;

  constructor(sender: RTCRtpSender) {
    this.#sender = sender as unknown as SenderInternals;
  }

  /** The SSRC werift generated for this sender (what the SDP announces). */
  get ssrc(): number {
    return this.#sender.ssrc;
  }

  /** Negotiated and connected: packets sent now reach the peer. */
  get ready(): boolean {
    return this.#sender.dtlsTransport?.state === 'connected' && this.#sender.codec !== undefined;
  }

  /** The negotiated payload type, once the answer is applied. */
  get payloadType(): number | undefined {
    return this.#sender.codec?.payloadType;
  }

  /** Round-trip time from the peer's last RTCP RR, ms (undefined before one). */
  get rttMs(): number | undefined {
    const rtt = this.#sender.rtt;
    return rtt === undefined ? undefined : rtt * 1000;
  }

  /** SRTP-protects and sends; `payloadBytes` feeds the SR's octet count (RFC 3550 §6.4.1). */
  send(payload: Buffer, header: RtpHeader): void {
    const sender = this.#sender;
    void sender.dtlsTransport.sendRtp(payload, header);
    sender.octetCount += payload.length;
    sender.packetCount = (sender.packetCount + 1) >>> 0;
  }

  /** Refreshes the SR's NTP/RTP timestamp pair (call every few packets, not per packet) and lets werift send RTCP. */
  refreshSenderReport(rtpTimestamp: number): void {
    const sender = this.#sender;
    sender.ntpTimestamp = ntpNow();
    sender.rtpTimestamp = rtpTimestamp;
    void sender.runRtcp();
  }
}

// ---------------------------------------------------------------------------------------------
// Outbound: the fast path (VoxLink's SRTP, one datagram straight onto the ICE socket)
// ---------------------------------------------------------------------------------------------

/**
 * The DTLS-SRTP profile order the server offers (and, as DTLS server, picks by) when the fast path
 * is on: AES_CM_128_HMAC_SHA1_80 first (our SrtpContext; mandatory to implement for WebRTC, RFC
 * 8827 §6.5), AEAD_AES_128_GCM after it for a peer that offers nothing else (that peer stays on
 * werift's SRTP). werift 0.24 prefers GCM (module constant in lib/webrtc/src/secureTransportManager.js,
 * checked 0.24.4) and has no option for it; `RTCDtlsTransport.srtpProfiles` is a plain writable
 * field read when the handshake starts (lib/webrtc/src/transport/dtls.js `start()`).
 */
const FAST_SRTP_PROFILES = [SrtpProfile.AES128_CM_HMAC_SHA1_80, 0x0007];

/** Makes the peer's DTLS transports negotiate the profile the fast path handles. Call once per peer, before ICE starts. */
export function preferFastSrtpProfile(pc: RTCPeerConnection): void {
  for (const dtls of pc.dtlsTransports) (dtls as unknown as { srtpProfiles: number[] }).srtpProfiles = [...FAST_SRTP_PROFILES];
}

/** werift 0.24's UdpTransport (lib/common/src/transport.js, checked 0.24.4): a dgram socket. */
interface UdpTransportInternals {
  readonly socket?: Socket;
  readonly closed?: boolean;
}
/** werift 0.24's nominated CandidatePair (lib/ice/src/candidatePair.js) and its protocol (StunProtocol `type` "stun", TURN "turn", TCP others). */
interface CandidatePairInternals {
  readonly protocol: { readonly type?: string; readonly transport?: UdpTransportInternals };
  readonly remoteAddr: readonly [string, number];
  packetsSent: number;
  bytesSent: number;
}
/** werift 0.24's ICE Connection (lib/ice/src/ice.js). */
interface IceConnectionInternals {
  readonly nominated?: CandidatePairInternals;
  canSendApplicationData(): boolean;
  send(data: Buffer): Promise<void>;
}
/** werift 0.24's RTCDtlsTransport (lib/webrtc/src/transport/dtls.js): the SRTP session `updateSrtpSession()` builds once the handshake is done. */
interface DtlsTransportInternals {
  readonly state: string;
  readonly srtp?: { readonly config?: { readonly keys: SrtpMasterKeys; readonly profile: number } };
  readonly iceTransport: { readonly connection: IceConnectionInternals };
  bytesSent: number;
  packetsSent: number;
}

/**
 * Our outbound SRTP context for one DTLS transport (all senders of a bundled peer share it, as
 * they share werift's), rebuilt when werift replaces its SRTP session (a new handshake). `null`
 * context: the negotiated profile is not one we do (GCM); the senders stay on werift's path.
 */
interface FastTransport {
  session: object | null;
  outbound: SrtpContext | null;
}
const fastTransports = new WeakMap<object, FastTransport>();

function fastTransportOf(dtls: DtlsTransportInternals): FastTransport | null {
  let t = fastTransports.get(dtls);
  if (t === undefined) fastTransports.set(dtls, (t = { session: null, outbound: null }));
  const session = dtls.srtp;
  if (session === undefined) return null;
  if (t.session !== session) {
    t.session = session;
    const config = session.config;
    const profile = config?.profile;
    t.outbound =
      config !== undefined && (profile === SrtpProfile.AES128_CM_HMAC_SHA1_80 || profile === SrtpProfile.AES128_CM_HMAC_SHA1_32)
        ? new SrtpContext({ profile, masterKey: config.keys.localMasterKey, masterSalt: config.keys.localMasterSalt })
        : null;
  }
  return t;
}

/** What `FastRtpSender.send` did with a packet. */
export const FastSend = {
  /** Sent (a copy through werift's ICE for a relayed pair), or dropped as werift would (no consent): the buffer is free again. */
  SENT: 0,
  /** Handed to the socket: the buffer is busy until `onSent` runs. */
  PENDING: 1,
  /** Not ours to send (not connected, GCM negotiated, SRTP error): use werift's path; the buffer is untouched. */
  FALLBACK: 2,
} as const;
export type FastSend = (typeof FastSend)[keyof typeof FastSend];

/**
 * The fast send path of one werift sender: protects an RTP packet the caller serialised into its
 * own buffer in place with VoxLink's SrtpContext (docs/srtp.md; keys from werift's
 * `RTCDtlsTransport.srtp.config.keys`, the RFC 5764 split werift did) and sends it with one
 * `dgram.Socket#send` on the nominated pair's UDP socket, skipping werift's three promises per
 * packet (`Connection.send` → `StunProtocol.sendData` → `UdpTransport.send`). A relayed (TURN) or
 * TCP pair goes through werift's `Connection.send` with a copy. Keeps werift's counters the RTCP SR
 * and getStats read (sender packet/octet counts, transport and candidate-pair totals).
 *
 * Checked against werift 0.24.4. Node's `dgram` still allocates a little per call (its buffer
 * list, DNS-lookup closure and send request), and sends on the next tick: the caller must not
 * rewrite the buffer before `onSent` (SlotOutput keeps a small ring of buffers).
 */
export class FastRtpSender {
  readonly #sender: SenderInternals;
  /** Packets this sender protected and sent itself. */
  packets = 0;
  // Per-packet lookups cached, each checked by one identity compare: the DTLS transport's SRTP
  // session (a new handshake replaces it) and the nominated pair (ICE may nominate another).
  #session: object | undefined = undefined;
  #outbound: SrtpContext | null = null;
  #pair: CandidatePairInternals | undefined = undefined;
  #socket: Socket | undefined = undefined;
  #transport: UdpTransportInternals | undefined = undefined;
  #port = 0;
  #address = '';

  constructor(sender: RTCRtpSender) {
    this.#sender = sender as unknown as SenderInternals;
  }

  /** SRTP tag bytes our context appends (the room of spare space `buf` needs past the packet). */
  static readonly MAX_OVERHEAD = 10;

  /**
   * `buf[0, rtpLength)` is a complete RTP packet; `payloadBytes` its payload length (the SR octet
   * count, RFC 3550 §6.4.1). `buf` needs MAX_OVERHEAD spare bytes after it. `onSent` (made once
   * per buffer, not per packet) runs when a PENDING send is done with `buf`.
   */
  send(buf: Buffer, rtpLength: number, payloadBytes: number, onSent: () => void): FastSend {
    const sender = this.#sender;
    const dtls = sender.dtlsTransport as unknown as DtlsTransportInternals;
    if (dtls.state !== 'connected') return FastSend.FALLBACK;
    if (dtls.srtp !== this.#session) {
      const t = fastTransportOf(dtls);
      this.#session = dtls.srtp;
      this.#outbound = t === null ? null : t.outbound;
    }
    const outbound = this.#outbound;
    if (outbound === null) return FastSend.FALLBACK;
    const n = outbound.protectRtp(buf, rtpLength);
    if (n < 0) return FastSend.FALLBACK;
    sender.octetCount += payloadBytes;
    sender.packetCount = (sender.packetCount + 1) >>> 0;
    this.packets++;
    dtls.bytesSent += n;
    dtls.packetsSent++;
    const ice = dtls.iceTransport.connection;
    // RFC 7675: no application data without consent (werift's Connection.send drops it the same way).
    if (!ice.canSendApplicationData()) return FastSend.SENT;
    const pair = ice.nominated!;
    if (pair !== this.#pair) {
      this.#pair = pair;
      const transport = pair.protocol.type === 'stun' ? pair.protocol.transport : undefined;
      this.#transport = transport;
      this.#socket = transport?.socket;
      this.#port = pair.remoteAddr[1];
      this.#address = pair.remoteAddr[0];
    }
    const socket = this.#socket;
    if (socket !== undefined && this.#transport!.closed !== true) {
      try {
        socket.send(buf, 0, n, this.#port, this.#address, onSent);
      } catch {
        return FastSend.SENT; // the socket closed under us (peer closing): dropped, as werift's send would
      }
      pair.packetsSent++;
      pair.bytesSent += n;
      return FastSend.PENDING;
    }
    void ice.send(Buffer.from(buf.subarray(0, n))).catch(() => {});
    return FastSend.SENT;
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/** werift's per-SSRC receive statistics (lib/webrtc/src/media/receiver/statistics.js, checked 0.24.4). */
interface ReceiveStatistics {
  packets_lost: number;
  packets_expected: number;
  jitter: number;
  clockRate: number;
}

export interface ReceiveStats {
  lost: number;
  expected: number;
  /** Sum of the interarrival jitter of every stream, ms, and how many streams it sums. */
  jitterMsSum: number;
  streams: number;
}

/**
 * Adds up the RFC 3550 §6.4.1 receive statistics werift keeps per remote SSRC in the private
 * `RTCRtpReceiver.remoteStreams` (checked 0.24.4). The public `getStats()` builds the same numbers
 * as a promise of report objects; the room's stats poll wants them synchronously and cheaply.
 */
export function addReceiveStats(receiver: RTCRtpReceiver, into: ReceiveStats): void {
  const streams = (receiver as unknown as { remoteStreams?: Record<string, ReceiveStatistics> }).remoteStreams;
  for (const s of Object.values(streams ?? {})) {
    into.lost += Math.max(0, s.packets_lost);
    into.expected += s.packets_expected;
    into.jitterMsSum += (s.jitter / s.clockRate) * 1000;
    into.streams++;
  }
}

// ---------------------------------------------------------------------------------------------
// Negotiation quirks
// ---------------------------------------------------------------------------------------------

/**
 * werift 0.24's addTransceiver() silently takes over any m-line negotiated `inactive`, whatever its
 * kind (lib/webrtc/src/transceiverManager.js, "reuse inactive"; checked 0.24.4) — it would turn a
 * listener's inactive mic m-line 0 into video and shift the slot layout. Marking the others as used
 * for sending (the public `usedForSender` flag that check reads) makes it append.
 */
export function addFreshTransceiver(pc: RTCPeerConnection, kind: 'audio' | 'video', direction: 'sendonly' | 'recvonly' | 'inactive'): RTCRtpTransceiver {
  const guarded = pc.getTransceivers().filter((t) => !t.usedForSender);
  for (const t of guarded) t.usedForSender = true;
  try {
    return pc.addTransceiver(kind, { direction });
  } finally {
    for (const t of guarded) t.usedForSender = false;
  }
}

/**
 * The same quirk on the answering side: before applying a remote offer, mark every existing
 * transceiver used for sending so a new remote m-line never takes over one negotiated `inactive`
 * (which would scramble the m-line → slot mapping). Checked 0.24.4.
 */
export function preventInactiveReuse(pc: RTCPeerConnection): void {
  for (const t of pc.getTransceivers()) t.usedForSender = true;
}

/** RFC 4585 §6.1: payload-specific feedback; RFC 5104 §4.3.1: FIR is FMT 4 (PLI is FMT 1). */
const RTCP_PSFB = 206;
const FMT_PLI = 1;
const FMT_FIR = 4;

/**
 * A PLI or FIR (a key-frame request) in raw RTCP. werift 0.24 (RtpRouter.routeRtcp, checked 0.24.4)
 * routes PSFB by *sender* SSRC first, so feedback from a peer that announced an SSRC on an m-line
 * lands on that m-line's receiver rather than the sender's `onPictureLossIndication`, and FIR
 * only ever arrives raw: listeners check `onRtcp` of both with this. Its feedback types are a
 * union werift does not export, hence the structural read.
 */
export function isKeyFrameRequest(packet: RtcpPacket): boolean {
  const fb = packet as unknown as { type: number; feedback?: { count?: number } };
  return fb.type === RTCP_PSFB && (fb.feedback?.count === FMT_PLI || fb.feedback?.count === FMT_FIR);
}
