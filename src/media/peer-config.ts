import {
  RTCRtpCodecParameters,
  useAbsSendTime,
  useAudioLevelIndication,
  useFIR,
  useH264,
  useNACK,
  usePLI,
  useSdesMid,
  useVP8,
  type PeerConfig,
  type RTCPeerConnection,
} from 'werift';
import type { ResilienceOptions } from './red-output.ts';
import { installRedSendGuard } from './werift-adapter.ts';

export interface MediaPeerOptions {
  /** The IP put in host candidates (the address clients reach; a public IP behind 1:1 NAT). */
  announcedIp: string;
  /** UDP port range for ICE host candidates, inclusive (werift `icePortRange`). */
  rtcMinPort: number;
  rtcMaxPort: number;
  /** Advertise Opus DTX (RFC 7587 §6.1 `usedtx=1`): senders may go quiet during silence. Default false. */
  opusDtx?: boolean;
  /**
   * Local address the ICE sockets bind to. Default: all interfaces (0.0.0.0). Set it when the
   * announced IP is one of this host's addresses and no other interface should be used.
   */
  bindIp?: string;
  iceServers?: { urls: string; username?: string; credential?: string }[];
  /**
   * Forwarded audio leaves through VoxLink's own SRTP straight onto the ICE socket (docs/media.md
   * "Fast path"); false keeps werift's `sendRtp` path (for comparison). Default true.
   */
  fastSrtp?: boolean;
  /**
   * One UDP port per worker thread (config `media.udpPort`, docs/media.md "Transport"): every peer
   * of the thread shares the lowest free port of base … base + count − 1 (count = worker threads),
   * demultiplexed by ICE ufrag and source address. Unset: one port per peer from rtcMinPort…rtcMaxPort.
   */
  udpPort?: { base: number; count: number };
  /** RED toward lossy subscribers, RED from publishers, audio NACK (docs/audio.md "Resilience"). Defaults: all on. */
  resilience?: ResilienceOptions;
}

/**
 * Opus as WebRTC uses it: 48 kHz stereo-capable (RFC 7587 §7), in-band FEC on, and Generic NACK
 * (RFC 4585 §4.2 `a=rtcp-fb:111 nack`): the server answers audio NACKs from a short history when
 * the round trip allows (src/media/nack.ts, docs/audio.md "Resilience").
 */
export function opusCodec(dtx = false): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({
    mimeType: 'audio/opus',
    clockRate: 48_000,
    channels: 2,
    payloadType: 111,
    parameters: `minptime=10;useinbandfec=1${dtx ? ';usedtx=1' : ''}`,
    rtcpFeedback: [useNACK()],
  });
}

/** Payload type of RED (Chrome's dynamic choice is 63 too). */
export const RED_PAYLOAD_TYPE = 63;

/**
 * RFC 2198 redundancy over Opus as WebRTC negotiates it: `red/48000/2` with `a=fmtp:63 111/111`
 * (draft-ietf-avtcore-rtp-payload-red-for-opus §3). Listed after Opus it only says "I can receive
 * RED"; listed first on a receiving m-line it asks the sender to send RED (Chrome and werift do).
 */
export function redCodec(): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({
    mimeType: 'audio/red',
    clockRate: 48_000,
    channels: 2,
    payloadType: RED_PAYLOAD_TYPE,
    parameters: '111/111',
    rtcpFeedback: [],
  });
}

/**
 * The configuration of a server peer using UDP `port` (from the room's PortAllocator).
 * Header extensions: mid (bundle demux, RFC 8843 §15), the RFC 6464 audio level the speaker
 * detector reads, and abs-send-time for the receivers' bandwidth estimation.
 *
 * ICE: werift gathers one host candidate per interface address plus the "additional" ones, one
 * socket each. With IPv4/IPv6 interface discovery off, the only address is `announcedIp`: one
 * socket per peer, bound to `bindIp` (default all interfaces) on `port` (or `port + 1` if another
 * process took it meanwhile), announced as `announcedIp`.
 */
export function mediaPeerConfig(options: MediaPeerOptions, port?: number): Partial<PeerConfig> {
  if (!(options.rtcMinPort > 0 && options.rtcMaxPort >= options.rtcMinPort && options.rtcMaxPort <= 65535)) {
    throw new RangeError(`bad RTC port range ${options.rtcMinPort}-${options.rtcMaxPort}`);
  }
  installRedSendGuard();
  return {
    codecs: codecs(options.opusDtx ?? false),
    headerExtensions: headerExtensions(),
    icePortRange: port === undefined ? [options.rtcMinPort, options.rtcMaxPort] : [port, port + 1],
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [options.announcedIp],
    iceInterfaceAddresses: options.bindIp === undefined ? undefined : { udp4: options.bindIp },
    iceServers: options.iceServers ?? [],
    bundlePolicy: 'max-bundle',
  };
}

/** Config for a client-side werift peer (tests, load generators): one socket on `bindIp`, any port. */
export function clientPeerConfig(bindIp = '127.0.0.1'): Partial<PeerConfig> {
  installRedSendGuard();
  return {
    codecs: codecs(false),
    headerExtensions: headerExtensions(),
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [bindIp],
    iceInterfaceAddresses: { udp4: bindIp },
    bundlePolicy: 'max-bundle',
  };
}

function codecs(dtx: boolean): NonNullable<PeerConfig['codecs']> {
  return {
    audio: [opusCodec(dtx), redCodec()],
    video: [
      useVP8({ payloadType: 96, rtcpFeedback: [useNACK(), usePLI(), useFIR()] }),
      useH264({ payloadType: 102, rtcpFeedback: [useNACK(), usePLI(), useFIR()] }),
    ],
  };
}

function headerExtensions(): NonNullable<PeerConfig['headerExtensions']> {
  return {
    audio: [useSdesMid(), useAudioLevelIndication(), useAbsSendTime()],
    video: [useSdesMid(), useAbsSendTime()],
  };
}

/**
 * Keeps only the host candidates on `ip` (plus every non-host candidate: srflx, relay) in an SDP:
 * a guard so that only the announced address is ever advertised (RFC 8839 §5.1 lets an agent
 * advertise any subset of its candidates).
 */
export function keepHostCandidates(sdp: string, ip: string): string {
  return sdp
    .split('\r\n')
    .filter((line) => {
      if (!line.startsWith('a=candidate:')) return true;
      const parts = line.split(' ');
      // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
      return parts[7] !== 'host' || parts[4] === ip;
    })
    .join('\r\n');
}

/**
 * werift 0.24 writes every `inactive` m-line of an offer with port 0, which JSEP reads as
 * *rejected* (sdpManager.addTransportDescription; checked against 0.24.4). For the first mid of the
 * BUNDLE group, the tag that carries the whole transport, Chromium then refuses the offer ("the m=
 * section with mid='1' should be rejected"): that is the microphone m-line of a participant without
 * the publish grant. Its port becomes the usual 9 (inactive, not rejected); other m-lines are left
 * alone.
 */
export function keepBundleTagOpen(sdp: string): string {
  const tag = /^a=group:BUNDLE (\S+)/m.exec(sdp)?.[1];
  if (tag === undefined) return sdp;
  const sections = sdp.split(/(?=^m=)/m);
  const i = sections.findIndex((section) => section.startsWith('m=') && section.split(/\r?\n/).includes(`a=mid:${tag}`));
  if (i > 0 && /^a=inactive\r?$/m.test(sections[i])) sections[i] = sections[i].replace(/^(m=\S+) 0 /, '$1 9 ');
  return sections.join('');
}

/** Resolves once the peer has gathered all its ICE candidates (the SDP then carries them; no trickle needed). */
export function waitGathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') {
        unSubscribe();
        resolve();
      }
    });
  });
}
