import { RTCPeerConnection, RTCRtpCodecParameters, type RTCRtpTransceiver } from 'werift';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import type { MixPeerCodec } from './mix-room.ts';
import { mediaPeerConfig, opusCodec, redCodec, type MediaPeerOptions } from './peer-config.ts';
import { downlinkResilience, type DownlinkResilience } from './red-output.ts';
import type { PortAllocator } from './port-allocator.ts';
import { acquireSharedUdpPort, type SharedUdpPort } from './shared-port.ts';
import { SlotOutput } from './slot-output.ts';
import { FastRtpReceiver, installForgedDtlsFilter, preferFastSrtpProfile, useSharedUdpPort } from './werift-adapter.ts';

const log = logger('media-peer');

/**
 * One participant's server-side werift peer and its audio m-lines, in the order the server offers
 * them (docs/media.md): m-line 0 receives the participant's mic, then the K slots, then the mix
 * track; video m-lines follow on demand (video.ts).
 */
export interface Peer {
  readonly pc: RTCPeerConnection;
  readonly mic: RTCRtpTransceiver;
  readonly outputs: SlotOutput[];
  /** The mix track (after the K slots), or null. */
  readonly mix: SlotOutput | null;
  readonly port: number;
  /** VoxLink's SRTP on the peer's inbound media (docs/media.md "Fast path"), or null when `fastSrtp` is off. */
  readonly receiver: FastRtpReceiver | null;
  /** The worker's shared UDP port the peer is on (`udpPort` option), or null: `port` is its own from the allocator. */
  readonly shared: SharedUdpPort | null;
  /** The subscriber's downlink RED policy and NACK settings, shared by its outputs (docs/audio.md "Resilience"). */
  readonly resilience: DownlinkResilience;
}

export interface PeerLayout {
  publish: boolean;
  subscribe: boolean;
  /** Slot m-lines (0 for a mix-only subscriber). */
  slots: number;
  /** A mix track after the slots. */
  mixTrack: boolean;
  /** Offer PCMU/PCMA after Opus. */
  g711: boolean;
}

/**
 * G.711 for telephony peers (RFC 3551 §4.5.14, static payload types 0 and 8, 8 kHz mono), offered
 * after Opus: a peer that answers with only PCMU/PCMA gets the mix as G.711.
 */
const G711_CODECS = [
  new RTCRtpCodecParameters({ mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: 0 }),
  new RTCRtpCodecParameters({ mimeType: 'audio/PCMA', clockRate: 8000, channels: 1, payloadType: 8 }),
];

/** Creates a peer on a port of `ports`, with the m-lines of `layout`. MEDIA_NEGOTIATION_FAILED when no port is free. */
export async function openPeer(options: MediaPeerOptions, ports: PortAllocator, participantId: string, layout: PeerLayout): Promise<Peer> {
  let port: number;
  let shared: SharedUdpPort | null = null;
  try {
    if (options.udpPort !== undefined) {
      shared = await acquireSharedUdpPort({ ...options.udpPort, ...(options.bindIp === undefined ? {} : { bindIp: options.bindIp }) });
      port = shared.port;
    } else {
      port = await ports.acquire(options.bindIp);
    }
  } catch (error) {
    throw new VoxError('MEDIA_NEGOTIATION_FAILED', `no UDP port for ${participantId}`, { cause: error });
  }
  // With a shared port werift never binds: the range only has to pass werift's own check (min < max).
  const config = mediaPeerConfig(options, port);
  if (layout.g711) config.codecs = { ...config.codecs, audio: [...(config.codecs?.audio ?? []), ...G711_CODECS] };
  const pc = new RTCPeerConnection(config);
  const mic = pc.addTransceiver('audio', { direction: layout.publish ? 'recvonly' : 'inactive' });
  // RED first on the microphone m-line asks the publisher to send RED (Chrome, werift); the server's
  // werift receiver splits it, so a lost uplink packet is repaired before the taps see it.
  // Without it the mic offers no RED at all: a werift 0.24 publisher RED-encodes whenever `red` is
  // negotiated anywhere in the list (installRedSendGuard fixes ours, not every client's).
  const micRed = layout.publish && options.resilience?.red?.publisher === true;
  mic.codecs = [...(micRed ? [redCodec()] : []), opusCodec(options.opusDtx ?? false), ...(layout.g711 ? G711_CODECS : [])];
  const fast = options.fastSrtp ?? true;
  const resilience = downlinkResilience(options.resilience);
  const outputs: SlotOutput[] = [];
  let mix: SlotOutput | null = null;
  if (layout.subscribe) {
    for (let k = 0; k < layout.slots; k++) {
      outputs.push(new SlotOutput(participantId, k, pc.addTransceiver('audio', { direction: 'sendonly' }), fast, resilience));
    }
    // The mix track is the last audio m-line: slot K in `hybrid`, slot 0 for mix-only subscribers (offer option `mixSlot`).
    if (layout.mixTrack) mix = new SlotOutput(participantId, layout.slots, pc.addTransceiver('audio', { direction: 'sendonly' }), fast, resilience);
  }
  if (shared !== null) useSharedUdpPort(pc, shared);
  installForgedDtlsFilter(pc);
  if (fast) preferFastSrtpProfile(pc);
  const receiver = fast ? new FastRtpReceiver(pc) : null;
  return { pc, mic, outputs, mix, port, receiver, shared, resilience };
}

/** Every audio output of a peer: the slots, then the mix track. */
export function peerOutputs(peer: Peer): readonly SlotOutput[] {
  return peer.mix === null ? peer.outputs : [...peer.outputs, peer.mix];
}

export async function closePeer(peer: Peer, ports: PortAllocator): Promise<void> {
  for (const o of peerOutputs(peer)) o.resilience?.close();
  await peer.pc.close().catch((error: unknown) => log.warn({ err: error }, 'peer close failed'));
  if (peer.shared !== null) peer.shared.release();
  else ports.release(peer.port);
}

/** The audio codec a transceiver negotiated (its first codec after the answer). */
export function negotiatedCodec(t: RTCRtpTransceiver): { codec: MixPeerCodec; payloadType: number } | null {
  // RED (RFC 2198) wraps Opus: the codec underneath is what decoders and the mix track use.
  const c = t.codecs.find((codec) => codec.mimeType.toLowerCase() !== 'audio/red');
  if (c === undefined) return null;
  const mime = c.mimeType.toLowerCase();
  const codec: MixPeerCodec = mime === 'audio/pcmu' ? 'pcmu' : mime === 'audio/pcma' ? 'pcma' : 'opus';
  return { codec, payloadType: c.payloadType };
}
