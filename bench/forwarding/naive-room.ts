import { RTCPeerConnection, type RTCRtpTransceiver } from 'werift';
import { keepHostCandidates, mediaPeerConfig } from '../../src/media/peer-config.ts';
import { portAllocator } from '../../src/media/port-allocator.ts';
import { VoxError } from '../../src/errors.ts';
import type { MediaParticipant, MediaRoom, MediaRoomEvent, MediaRoomOptions, MediaRoomStats } from '../../src/media/room.ts';
import type { ClientMediaMessage } from '../../src/protocol/index.ts';

/**
 * The baseline: werift fan-out as the examples write it. Every peer gets one sendonly audio
 * track per publisher (here a fixed number of publisher m-lines, so the bench needs no
 * renegotiation), and every packet goes to every other peer through `sender.sendRtp()` on a
 * clone. No speaker detection, no rewriting beyond what werift's sender does.
 */
export function createNaiveRoom(
  options: MediaRoomOptions & { publishers: number },
  onEvent: (e: MediaRoomEvent) => void,
): MediaRoom {
  interface Peer {
    id: string;
    index: number;
    pc: RTCPeerConnection;
    outs: RTCRtpTransceiver[];
  }
  const peers = new Map<string, Peer>();
  const publisherIndex = new Map<string, number>();
  let packetsIn = 0;
  let packetsOut = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let offers = 0;

  return {
    async join(p: MediaParticipant): Promise<void> {
      const port = await portAllocator(options.rtcMinPort, options.rtcMaxPort).acquire();
      const pc = new RTCPeerConnection(mediaPeerConfig(options, port));
      const mic = pc.addTransceiver('audio', { direction: 'recvonly' });
      const outs: RTCRtpTransceiver[] = [];
      for (let i = 0; i < options.publishers; i++) outs.push(pc.addTransceiver('audio', { direction: 'sendonly' }));
      const peer: Peer = { id: p.participantId, index: -1, pc, outs };
      peers.set(p.participantId, peer);
      mic.onTrack.subscribe((track) => {
        track.onReceiveRtp.subscribe((rtp) => {
          packetsIn++;
          bytesIn += rtp.payload.length + 12;
          let index = publisherIndex.get(peer.id);
          if (index === undefined) {
            index = publisherIndex.size;
            publisherIndex.set(peer.id, index);
          }
          if (index >= options.publishers) return;
          for (const other of peers.values()) {
            if (other === peer) continue;
            const copy = rtp.clone();
            packetsOut++;
            bytesOut += copy.payload.length + 12;
            other.outs[index].sender.sendRtp(copy).catch(() => undefined);
          }
        });
      });
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.iceGatheringStateChange.subscribe((s) => s === 'complete' && resolve());
      });
      offers++;
      onEvent({
        to: 'participant',
        participantId: p.participantId,
        message: {
          op: 'media',
          room: options.roomId,
          kind: 'offer',
          sdp: keepHostCandidates(pc.localDescription!.sdp, options.announcedIp),
        },
      });
    },
    async leave(participantId: string): Promise<void> {
      const p = peers.get(participantId);
      peers.delete(participantId);
      await p?.pc.close();
    },
    async signal(participantId: string, message: ClientMediaMessage): Promise<void> {
      const p = peers.get(participantId);
      if (p !== undefined && message.kind === 'answer' && message.sdp) {
        await p.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
      }
    },
    async setMuted(): Promise<void> {},
    async record(): Promise<null> {
      throw new VoxError('RECORDING_UNAVAILABLE', 'the naive baseline room records nothing');
    },
    stats(): MediaRoomStats {
      return {
        participants: peers.size,
        packetsIn,
        packetsOut,
        bytesIn,
        bytesOut,
        lossPct: 0,
        jitterMs: 0,
        rttMs: 0,
        slotSwitches: 0,
        offers,
        reconnects: 0,
        packetsDropped: 0,
      };
    },
    async close(): Promise<void> {
      await Promise.allSettled([...peers.values()].map((p) => p.pc.close()));
      peers.clear();
    },
  };
}
