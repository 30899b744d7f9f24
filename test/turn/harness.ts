import { NodeMediaClient, type NodeRtcConfiguration } from '../../src/client/media/node-media-client.ts';
import { createMediaRoom, type MediaRoom, type MediaRoomEvent } from '../../src/media/room.ts';

export { sleep, waitFor } from '../media/harness.ts';

const GRANTS = { publish: true, subscribe: true, record: false, admin: false };

/**
 * A media room in this process whose participants are the SDK's NodeMediaClient, optionally
 * forced through TURN: `rtc` is the client's `rtcConfiguration` option, which it applies to every
 * peer it creates (the first one and those of media reconnects).
 */
export class TurnRoom {
  readonly room: MediaRoom;
  readonly roomId: string;
  readonly clients = new Map<string, NodeMediaClient>();
  readonly errors: unknown[] = [];

  constructor(roomId: string, ports: { rtcMinPort: number; rtcMaxPort: number; udpPort?: { base: number; count: number } }) {
    this.roomId = roomId;
    this.room = createMediaRoom(
      { roomId, slots: 1, announcedIp: '127.0.0.1', bindIp: '127.0.0.1', mode: 'sfu', ...ports },
      (e) => this.#route(e),
    );
  }

  async join(participantId: string, rtc?: NodeRtcConfiguration): Promise<NodeMediaClient> {
    const client = new NodeMediaClient({
      room: this.roomId,
      signal: {
        send: (m) => {
          this.room.signal(participantId, m).catch((e: unknown) => this.errors.push(e));
        },
      },
      rtcConfiguration: rtc,
    });
    this.clients.set(participantId, client);
    await this.room.join({ roomId: this.roomId, participantId, name: participantId, grants: GRANTS });
    return client;
  }

  async close(): Promise<void> {
    await this.room.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  #route(e: MediaRoomEvent): void {
    const targets = e.to === 'room' ? [...this.clients.values()] : [this.clients.get(e.participantId)];
    for (const c of targets) c?.handle(e.message).catch((err: unknown) => this.errors.push(err));
  }
}

export interface CandidateInfo {
  type: string;
  address: string;
  port: number;
}

/** `a=candidate` grammar (RFC 8839 §5.1): foundation component transport priority address port typ type … */
export function parseCandidate(candidate: string): CandidateInfo {
  const parts = candidate.replace(/^(a=)?candidate:/, '').split(' ');
  return { address: parts[4], port: Number(parts[5]), type: parts[7] };
}

/** The nominated ICE pair of a client's current peer, or null before ICE completes. */
export function selectedPair(client: NodeMediaClient): { local: CandidateInfo; remote: CandidateInfo } | null {
  const pair = client.pc.iceTransports[0]?.getSelectedCandidatePair();
  if (!pair) return null;
  return { local: parseCandidate(pair.local.candidate), remote: parseCandidate(pair.remote.candidate) };
}

