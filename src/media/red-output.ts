import { RtcpRrPacket, RtcpSrPacket, type RTCRtpTransceiver, type RtcpPacket } from 'werift';
import { RetransmitHistory, type NackOptions } from './nack.ts';
import { RedPacketizer } from './red.ts';
import { RedPolicy, type RedPolicyOptions } from './red-policy.ts';
import { DRED_FMTP_PARAMETER, DredPolicy, type DredPolicyOptions } from './dred-policy.ts';

/** The room's RED and audio NACK settings (config `media.resilience`, docs/audio.md "Resilience"). */
export interface ResilienceOptions {
  red?: RedPolicyOptions & {
    /** Ask publishers for RED (`red/48000/2` first on their microphone m-line): repairs uplink loss at the server. Default false. */
    publisher?: boolean;
  };
  nack?: NackOptions & {
    /** Answer audio NACKs (Opus negotiated with `nack`). Default true. */
    enabled?: boolean;
  };
  /** DRED in the mix toward listeners that can decode it, by their downlink loss (dred-policy.ts). */
  dred?: DredPolicyOptions;
}

/** What one subscriber's audio outputs share: the downlink's RED policy and the NACK settings. */
export interface DownlinkResilience {
  readonly red: RedPolicy;
  /** Whether this subscriber's mix carries DRED now (its loss; the mixer asks only if it decodes DRED). */
  readonly dred: DredPolicy;
  /** Audio NACK answered from a per-output history; false: NACKs for audio are ignored. */
  readonly nack: boolean;
  readonly nackOptions: NackOptions;
}

/** One subscriber's (server peer's) shared resilience state. */
export function downlinkResilience(options: ResilienceOptions = {}): DownlinkResilience {
  const { publisher: _publisher, ...red } = options.red ?? {};
  const { enabled: nack = true, ...nackOptions } = options.nack ?? {};
  return { red: new RedPolicy(red), dred: new DredPolicy(options.dred), nack, nackOptions };
}

/**
 * RED and NACK for one audio output (a slot or the mix track) of one subscriber. Once the answer is
 * in, `configure()` reads what the subscriber negotiated on the transceiver: `red/48000/2` (its
 * payload type) and `nack` on Opus. Per packet `wrap()` returns the payload to send — the Opus
 * packet as is, or RED with the policy's distance — and sets `payloadType`. NACKed packets are
 * handed to `resend` (the output's fast path). Feeds the subscriber's RedPolicy from the RRs about
 * this output's SSRC.
 */
export class OutputResilience {
  readonly #link: DownlinkResilience;
  readonly #ssrc: number;
  #redPt = -1;
  #opusPt = -1;
  #dredCapable = false;
  #red: RedPacketizer | null = null;
  #history: RetransmitHistory | null = null;
  #lastHighest = -1;
  readonly #subscriptions: { unSubscribe(): void }[] = [];
  /** The payload type of the packet `wrap()` returned last. */
  payloadType = 111;
  /** Packets sent as RED, and the bytes redundancy added (block headers included). */
  redPackets = 0;

  constructor(link: DownlinkResilience, transceiver: RTCRtpTransceiver, ssrc: number, resend: (packet: Buffer, length: number) => boolean) {
    this.#link = link;
    this.#ssrc = ssrc;
    // werift's public sender events (RTCRtpSender.onRtcp, onGenericNack): RRs/SRs and RFC 4585 Generic NACKs about this SSRC.
    const sender = transceiver.sender;
    this.#subscriptions.push(sender.onRtcp.subscribe((packet) => this.#onRtcp(packet)));
    this.#subscriptions.push(
      sender.onGenericNack.subscribe((feedback) => {
        const history = this.#history;
        if (history === null || feedback.mediaSourceSsrc !== this.#ssrc) return;
        const now = performance.now();
        for (const seq of feedback.lost) {
          const i = history.lookup(seq, now, this.rttMs?.());
          if (i >= 0 && resend(history.packet(i), history.packetLength(i))) history.stats.resent++;
        }
      }),
    );
  }

  /** The output's RTT source (its werift sender's RR-derived RTT), set by the output. */
  rttMs: (() => number | undefined) | null = null;

  /**
   * Reads the negotiated codecs (call after the answer; again after a renegotiation). An output
   * without Opus (G.711) is left alone: `wrap()` hands its packets back with `fallbackPt`.
   */
  configure(transceiver: RTCRtpTransceiver, fallbackPt: number): void {
    this.#redPt = -1;
    this.#opusPt = -1;
    this.#dredCapable = false;
    let nack = false;
    for (const c of transceiver.codecs) {
      const mime = c.mimeType.toLowerCase();
      if (mime === 'audio/opus') {
        this.#opusPt = c.payloadType;
        this.#dredCapable = fmtpHas(c.parameters, DRED_FMTP_PARAMETER);
        nack = c.rtcpFeedback?.some((f) => f.type === 'nack' && (f.parameter === undefined || f.parameter === '')) ?? false;
      } else if (mime === 'audio/red') {
        this.#redPt = c.payloadType;
      }
    }
    if (this.#opusPt < 0) {
      this.#opusPt = fallbackPt;
      this.#redPt = -1;
      this.#dredCapable = false;
      nack = false;
    }
    this.payloadType = this.#opusPt;
    if (this.#redPt >= 0 && this.#link.red.enabled) this.#red ??= new RedPacketizer();
    if (nack && this.#link.nack) this.#history ??= new RetransmitHistory(this.#link.nackOptions);
  }

  /** The subscriber negotiated RED on this output. */
  get redCapable(): boolean {
    return this.#redPt >= 0;
  }

  /** The subscriber said (Opus fmtp `x-voxlink-dred=1`) that it decodes DRED. */
  get dredCapable(): boolean {
    return this.#dredCapable;
  }

  get nackEnabled(): boolean {
    return this.#history !== null;
  }

  get nackStats(): RetransmitHistory['stats'] | null {
    return this.#history?.stats ?? null;
  }

  get redundantBytes(): number {
    return this.#red?.redundantBytes ?? 0;
  }

  /**
   * The payload to send for the Opus packet `payload` leaving as (seq, ts) on this output, and
   * `payloadType` for it. Allocation-free (RedPacketizer reuses its buffers).
   */
  wrap(payload: Buffer, seq: number, ts: number): Buffer {
    const red = this.#red;
    if (red === null || this.#redPt < 0) {
      this.payloadType = this.#opusPt;
      return payload;
    }
    const distance = this.#link.red.distance;
    if (distance === 0) {
      red.remember(payload, seq, ts);
      this.payloadType = this.#opusPt;
      return payload;
    }
    const built = red.build(payload, seq, ts, this.#opusPt, distance);
    if (built === null) {
      this.payloadType = this.#opusPt;
      return payload;
    }
    this.redPackets++;
    this.payloadType = this.#redPt;
    return built;
  }

  /** The plain RTP packet just serialised for sending (before SRTP), for NACK. */
  sent(buf: Buffer, length: number, seq: number): void {
    this.#history?.store(buf, length, seq, performance.now());
  }

  close(): void {
    for (const s of this.#subscriptions) s.unSubscribe();
    this.#subscriptions.length = 0;
  }

  #onRtcp(packet: RtcpPacket): void {
    if (!(packet instanceof RtcpRrPacket) && !(packet instanceof RtcpSrPacket)) return;
    for (const r of packet.reports) {
      if (r.ssrc !== this.#ssrc) continue;
      const highest = r.highestSequence & 0xffff;
      const expected = this.#lastHighest < 0 ? 0 : (highest - this.#lastHighest) & 0xffff;
      this.#lastHighest = highest;
      // The first report has no interval of ours to weigh; a jump of half the sequence space is a restart.
      if (expected > 0 && expected < 0x8000) {
        const now = performance.now();
        this.#link.red.report(r.fractionLost, expected, now);
        this.#link.dred.report(r.fractionLost, expected, now);
      }
    }
  }
}

/** `name=1` among an fmtp line's `;`-separated parameters (RFC 4566 §6 format parameters). */
function fmtpHas(parameters: string | undefined, name: string): boolean {
  if (parameters === undefined) return false;
  for (const part of parameters.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim().toLowerCase() === name && part.slice(eq + 1).trim() === '1') return true;
  }
  return false;
}
