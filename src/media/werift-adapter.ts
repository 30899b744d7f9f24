import type { RemoteInfo, Socket } from 'node:dgram';
import { RTCRtpSender, RtcpPacketConverter, RtpHeader, RtpPacket, type RTCPeerConnection, type RTCRtpReceiver, type RTCRtpTransceiver, type RtcpPacket } from 'werift';
import { VoxError } from '../errors.ts';
import type { SharedPortPeer, SharedUdpPort } from './shared-port.ts';
import { directSenderFor, type DirectUdpSender } from './udp-direct.ts';
import { SrtpContext, SrtpError, SrtpProfile, adaptivePrimitives, type SrtpMasterKeys } from './srtp/index.ts';

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

let redSendGuarded = false;

/**
 * werift 0.24's RTCRtpSender (checked 0.24.4, lib/webrtc/src/media/rtpSender.js `prepareSend`)
 * RED-encodes every packet `sendRtp()` sends as soon as `red` is anywhere in the negotiated codecs,
 * but labels it with the first codec's payload type: a werift publisher that negotiated
 * [opus, red] sent RED payloads as PT 111, which no receiver can decode. RED is only meant when it
 * is the send codec (first). Process-wide (a prototype method) and idempotent; client and server
 * peer configs install it.
 */
export function installRedSendGuard(): void {
  if (redSendGuarded) return;
  redSendGuarded = true;
  const proto = RTCRtpSender.prototype as unknown as {
    prepareSend(this: { codec?: { name: string }; redRedundantPayloadType?: number }, params: unknown): void;
  };
  const prepareSend = proto.prepareSend;
  proto.prepareSend = function (params) {
    prepareSend.call(this, params);
    if (this.codec?.name.toLowerCase() !== 'red') this.redRedundantPayloadType = undefined;
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

/** The transport werift runs DTLS for `ice` on (one per ICE transport; bundled peers have one). */
function dtlsOf(pc: RTCPeerConnection, ice: RTCPeerConnection['iceTransports'][number]): RTCPeerConnection['dtlsTransports'][number] | undefined {
  return pc.dtlsTransports.find((d) => d.iceTransport === ice);
}

/**
 * Two guards on what reaches werift 0.24's DTLS (checked 0.24.4, lib/dtls/src/record and
 * lib/webrtc/src/transport/dtls.js), installed by wrapping each ICE transport's
 * `connection.onData.execute` (werift's rx.mini Event; the DTLS transport subscribes to it). Call
 * once per peer, before ICE starts.
 *
 * - Garbage: werift's DTLS takes anyone's datagrams: a record of unknown content type (first byte
 *   24..63) is handled as an alert, an alert is closed on without authentication, and either
 *   closes the session. One forged 13..15-byte datagram silenced a participant
 *   (test/media/garbage-udp.test.ts). Those datagrams are dropped before werift sees them.
 * - A ClientHello before the DTLS server exists: werift creates its DTLS server only in
 *   `RTCDtlsTransport.start()` (after ICE connects on this side and the answer is applied), and
 *   the server's transport subscribes to the ICE data then: a flight that arrives earlier is lost.
 *   On a starved host the client's first ClientHello often does; the client retransmits after
 *   0.5 s, 1.5 s, …, and duplicated flights sometimes failed the handshake (a fresh peer, seconds
 *   lost). The newest DTLS datagram that arrives while the transport is `new` is kept (one, so a
 *   retransmitted flight replaces the first instead of doubling it) and handed to the DTLS server
 *   right after `start()` creates it (test/media/early-dtls.test.ts).
 */
export function installForgedDtlsFilter(pc: RTCPeerConnection): void {
  for (const ice of pc.iceTransports) {
    const onData = ice.connection.onData as unknown as { execute: (data: Buffer) => void };
    const deliver = onData.execute;
    let early: Buffer | null = null;
    let waiting = false;
    // werift keeps one DTLS transport per ICE transport for the peer's life (restarts included):
    // found once, not per datagram.
    let dtls: ReturnType<typeof dtlsOf>;
    const replay = (state: string): void => {
      if (state === 'new') return;
      const record = early;
      early = null;
      // `start()` sets 'connecting' just before it constructs the DTLS server, synchronously:
      // on the next turn the server exists and listens.
      if (record !== null && state === 'connecting') setImmediate(() => deliver(record));
    };
    onData.execute = (data: Buffer) => {
      dtls ??= dtlsOf(pc, ice);
      if (isForgedDtls(data, dtls?.state === 'connected')) return;
      if (dtls !== undefined && dtls.state === 'new' && (data[0] ?? 0) >= 20 && (data[0] ?? 0) < 64) {
        // The datagram may be a view of a receive buffer that is reused: keep a copy (rare path).
        early = Buffer.from(data);
        if (!waiting) {
          waiting = true;
          dtls.onStateChange.once(replay);
        }
        return;
      }
      deliver(data);
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
  #direct: DirectUdpSender | null = null;
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
      this.#direct = this.#socket === undefined ? null : directSenderFor(this.#socket, this.#address);
    }
    const socket = this.#socket;
    if (socket !== undefined && this.#transport!.closed !== true) {
      const direct = this.#direct;
      if (direct !== null) {
        // Copied out and sent (or queued) before this returns: the caller's buffer is free again.
        if (direct.send(buf, n, this.#port, this.#address)) {
          pair.packetsSent++;
          pair.bytesSent += n;
        }
        return FastSend.SENT;
      }
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
// Inbound: the fast receive path (VoxLink's SRTP on the peer's datagrams, werift's routing after)
// ---------------------------------------------------------------------------------------------

/** Inbound SRTP/SRTCP the fast receive path refused, by reason (metric `voxlink_srtp_rejected_total{reason}`). */
export interface SrtpRejects {
  /** The tag did not verify: a forged or corrupted packet (or a key we do not share). */
  forged: number;
  /** Already received, or older than the 128-packet replay window (RFC 3711 §3.3.2). */
  replay: number;
  /** Too short, not RTP/RTCP version 2, a header running past the tag, or unparseable once authentic. */
  malformed: number;
}

export function emptySrtpRejects(): SrtpRejects {
  return { forged: 0, replay: 0, malformed: 0 };
}

/** Adds `from` into `into` (the room sums its peers' and its departed peers' counts). */
export function addSrtpRejects(into: SrtpRejects, from: Readonly<SrtpRejects>): void {
  into.forged += from.forged;
  into.replay += from.replay;
  into.malformed += from.malformed;
}

/** werift 0.24's rx.mini Event (lib/common/src/event.js, checked 0.24.4): `execute` is a plain writable field. */
interface ExecutableEvent<A extends unknown[]> {
  execute: (...args: A) => void;
}
/** The receive-side fields of werift 0.24's RTCDtlsTransport (lib/webrtc/src/transport/dtls.js, checked 0.24.4). */
interface DtlsReceiveInternals {
  readonly state: string;
  readonly srtp?: { readonly config?: { readonly keys: SrtpMasterKeys; readonly profile: number } };
  readonly iceTransport: object;
  readonly onRtp: ExecutableEvent<[RtpPacket]>;
  readonly onRtcp: ExecutableEvent<[RtcpPacket]>;
  bytesReceived: number;
  packetsReceived: number;
}

/** RFC 7983 §7: first byte 128..191 is RTP or RTCP; RFC 5761 §4: a second byte 192..223 (PT 64..95 with the marker) is RTCP. werift tests 192..208. */
function isRtcpDatagram(data: Buffer): boolean {
  const b1 = data[1] ?? 0;
  return b1 >= 192 && b1 <= 223;
}

/**
 * The fast receive path of one server peer: once werift's DTLS-SRTP handshake has produced keys
 * (`RTCDtlsTransport.srtp.config.keys`, the RFC 5764 split werift did; its remote key and salt
 * are the peer's sending keys), every inbound SRTP/SRTCP datagram is unprotected in place, in
 * the datagram Node's dgram handed us, by VoxLink's SrtpContext (docs/srtp.md: length and header
 * bounds, replay window, tag in constant time, only then decryption) instead of werift's
 * `SrtpSession.decrypt` (a new decipher, HMAC and several buffers per packet). The plain packet
 * then goes where werift's own receive handler would have sent it: `RtpPacket.deSerialize` and
 * `RTCDtlsTransport.onRtp` (werift's RtpRouter: receivers, NACK generator, receive statistics
 * for RRs, the tracks the room listens to) and `RtcpPacketConverter.deSerialize` + `onRtcp`
 * (sender reports, NACK, PLI, FIR, RR). Those two parses are werift's per-packet objects that
 * remain: its routing needs them.
 *
 * A refused packet is counted by reason and dropped: it never reaches werift's parsers, a
 * track, the mixer or the recorder. Once our context exists nothing inbound is handed to
 * werift's SRTP any more (its replay state would be stale). A GCM session (the peer offered
 * nothing else) stays on werift's receive path.
 *
 * How (checked against werift 0.24.4): wraps the ICE Connection's `onData.execute` (the rx.mini
 * Event werift's DTLS transport and its SRTP handler subscribe to; lib/ice/src/ice.js emits every
 * non-STUN datagram of the nominated pair there) and takes the RFC 7983 media range (first byte
 * 128..191) before werift's subscribers see it; DTLS and everything else go on as before. The
 * transport's received counters getStats() reads are kept.
 */
export class FastRtpReceiver {
  /** RTP and RTCP packets this path unprotected and handed on. */
  packets = 0;
  readonly rejected: SrtpRejects = emptySrtpRejects();

  /** Takes over inbound SRTP on every transport of `pc`. Call once per peer, before ICE starts (after installForgedDtlsFilter). */
  constructor(pc: RTCPeerConnection) {
    for (const ice of pc.iceTransports) {
      const dtls = pc.dtlsTransports.find((d) => d.iceTransport === ice) as unknown as DtlsReceiveInternals | undefined;
      if (dtls === undefined) continue;
      const keys: InboundKeys = { session: null, inbound: null };
      const onData = ice.connection.onData as unknown as ExecutableEvent<[Buffer]>;
      const deliver = onData.execute;
      onData.execute = (data: Buffer) => {
        const b0 = data[0] ?? 0;
        if (b0 < 128 || b0 > 191 || !this.#receive(dtls, keys, data)) deliver(data);
      };
    }
  }

  /** False: not ours (no keys yet, or a GCM session): werift's handler takes the datagram. */
  #receive(dtls: DtlsReceiveInternals, keys: InboundKeys, data: Buffer): boolean {
    const inbound = inboundContext(dtls, keys);
    if (inbound === null) return false;
    dtls.bytesReceived += data.length;
    dtls.packetsReceived++;
    if (isRtcpDatagram(data)) {
      const n = inbound.unprotectRtcp(data, data.length);
      if (n < 0) return this.#reject(n);
      let packets: RtcpPacket[];
      try {
        packets = RtcpPacketConverter.deSerialize(data.subarray(0, n));
      } catch {
        return this.#reject(SrtpError.BAD_HEADER);
      }
      this.packets++;
      for (const packet of packets) {
        try {
          dtls.onRtcp.execute(packet);
        } catch {
          // a listener's bug must not stop the other packets (werift logs and goes on the same way)
        }
      }
      return true;
    }
    const n = inbound.unprotectRtp(data, data.length);
    if (n < 0) return this.#reject(n);
    let rtp: RtpPacket;
    try {
      rtp = RtpPacket.deSerialize(data.subarray(0, n));
    } catch {
      return this.#reject(SrtpError.BAD_HEADER);
    }
    this.packets++;
    try {
      dtls.onRtp.execute(rtp);
    } catch {
      // as above
    }
    return true;
  }

  #reject(code: number): true {
    if (code === SrtpError.BAD_TAG) this.rejected.forged++;
    else if (code === SrtpError.REPLAY) this.rejected.replay++;
    else this.rejected.malformed++;
    return true;
  }
}

/** One DTLS transport's inbound context, rebuilt when werift replaces its SRTP session (a new handshake). */
interface InboundKeys {
  session: object | null;
  inbound: SrtpContext | null;
}

/** Our inbound context for werift's current SRTP session, or null while there is none we can do. */
function inboundContext(dtls: DtlsReceiveInternals, keys: InboundKeys): SrtpContext | null {
  const session = dtls.srtp;
  if (session === undefined) return null;
  if (session !== keys.session) {
    keys.session = session;
    const config = session.config;
    const profile = config?.profile;
    keys.inbound =
      config !== undefined && (profile === SrtpProfile.AES128_CM_HMAC_SHA1_80 || profile === SrtpProfile.AES128_CM_HMAC_SHA1_32)
        ? // inbound carries the peer's video too: Node's AES for large payloads (docs/srtp.md "Primitives")
          new SrtpContext({ profile, masterKey: config.keys.remoteMasterKey, masterSalt: config.keys.remoteMasterSalt, primitives: adaptivePrimitives() })
        : null;
  }
  return keys.inbound;
}

// ---------------------------------------------------------------------------------------------
// Transport: one UDP port per worker (shared-port.ts demultiplexes, werift's ICE sees its own "socket")
// ---------------------------------------------------------------------------------------------

/** werift 0.24's StunProtocol (lib/ice/src/stun/protocol.js, checked 0.24.4): the host candidate's UDP side of ICE. */
interface StunProtocolInternals {
  readonly type?: string;
  transport?: unknown;
  connectionMade: (...args: unknown[]) => Promise<void>;
  datagramReceived(data: Buffer, addr: readonly [string, number]): void;
}
/** werift 0.24's ICE Connection (lib/ice/src/ice.js, checked 0.24.4): `localUsername` is set in its constructor, `ensureProtocol` subscribes to a new protocol's events. */
interface IceGatheringInternals {
  readonly localUsername: string;
  ensureProtocol(protocol: object): void;
}

/**
 * Stands in for werift 0.24's UdpTransport (lib/common/src/transport.js, checked 0.24.4) on a
 * SharedUdpPort: what StunProtocol, ICE and the fast send path read of it (`type`, `socketType`,
 * `socket`, `closed`, `address`, `send`, `close`). Datagrams the port routes here go to the
 * StunProtocol's `datagramReceived`, as werift's own socket listener would; what werift sends
 * teaches the port that the destination's replies are this peer's.
 */
class SharedPortTransport implements SharedPortPeer {
  readonly type = 'udp';
  readonly socketType = 'udp4';
  closed = false;
  rinfo: RemoteInfo | undefined;
  readonly ufrag: string;
  readonly #port: SharedUdpPort;
  readonly #protocol: StunProtocolInternals;
  /** Reused for media datagrams only: werift's StunProtocol reads `addr` for STUN, never for RTP/RTCP. */
  readonly #mediaAddr: [string, number] = ['', 0];

  constructor(port: SharedUdpPort, ufrag: string, protocol: StunProtocolInternals) {
    this.#port = port;
    this.ufrag = ufrag;
    this.#protocol = protocol;
    port.add(this);
  }

  get socket(): Socket {
    return this.#port.socket;
  }

  get address(): { address: string; port: number; family: string } {
    return this.#port.socket.address();
  }

  get host(): string {
    return this.address.address;
  }

  get port(): number {
    return this.#port.port;
  }

  deliver(data: Buffer, rinfo: RemoteInfo): void {
    this.rinfo = rinfo;
    const b0 = data[0] ?? 0;
    let addr: [string, number];
    if (b0 >= 128 && b0 < 192) {
      addr = this.#mediaAddr;
      addr[0] = rinfo.address;
      addr[1] = rinfo.port;
    } else {
      addr = [rinfo.address, rinfo.port];
    }
    try {
      this.#protocol.datagramReceived(data, addr);
    } catch {
      // werift catches its own parse errors; anything else must not reach the shared socket's other peers
    }
  }

  send = async (data: Buffer, addr?: readonly [string, number]): Promise<void> => {
    if (this.closed) return;
    const to = addr ?? (this.rinfo === undefined ? undefined : ([this.rinfo.address, this.rinfo.port] as const));
    if (to === undefined) return;
    this.#port.learn(this, to[0], to[1]);
    await new Promise<void>((resolve, reject) => this.#port.socket.send(data, to[1], to[0], (error) => (error ? reject(error) : resolve())));
  };

  close = async (): Promise<void> => {
    if (this.closed) return;
    this.closed = true;
    this.#port.remove(this);
  };
}

/**
 * Puts every ICE host candidate of `pc` on the worker's shared UDP port instead of a socket of its
 * own. werift 0.24 has no transport factory option: its ICE Connection creates a StunProtocol per
 * host address and calls `ensureProtocol(protocol)` (subscribing to its events) right before
 * `protocol.connectionMade(...)`, which binds a UdpTransport (lib/ice/src/ice.js
 * `getCandidatePromises`, checked 0.24.4). This wraps `ensureProtocol` on this peer's connection
 * only, and for a StunProtocol (`type === 'stun'`) replaces that instance's `connectionMade` with
 * one that attaches a SharedPortTransport. TURN (`type === 'turn'`) and TCP protocols keep their
 * own sockets. Call once per peer, before ICE gathering starts.
 */
export function useSharedUdpPort(pc: RTCPeerConnection, port: SharedUdpPort): void {
  for (const ice of pc.iceTransports) {
    const connection = ice.connection as unknown as IceGatheringInternals;
    const ensureProtocol = connection.ensureProtocol.bind(connection);
    connection.ensureProtocol = (protocol: object) => {
      const stun = protocol as StunProtocolInternals;
      if (stun.type === 'stun' && typeof stun.datagramReceived === 'function') {
        stun.connectionMade = async () => {
          stun.transport = new SharedPortTransport(port, connection.localUsername, stun);
        };
      }
      ensureProtocol(protocol);
    };
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
