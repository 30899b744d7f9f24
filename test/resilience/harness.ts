import { createMediaRoom, type MediaRoom, type MediaRoomEvent, type MediaRoomOptions } from '../../src/media/room.ts';
import { NodeMediaClient, type ReceivedPacket } from '../../src/client/media/node-media-client.ts';
import type { ClientMediaMessage, ServerMediaMessage } from '../../src/protocol/index.ts';
import { FULL_GRANTS } from '../media/harness.ts';
import { candidatePort, LossyRelay, rewriteCandidatePort } from './lossy-relay.ts';

export interface RelayedJoinOptions {
  /** Put a LossyRelay between this client and the server (its `loss` starts null: no loss). */
  relay?: boolean;
  /** Answer as a client without RED: `red/48000/2` is taken out of the server's offers. */
  withoutRed?: boolean;
  grants?: typeof FULL_GRANTS;
  /** Decode what the client receives (its jitter buffer playout, `playoutStats`). Default false. */
  decode?: boolean;
  /** The client's `dred` option (say it decodes DRED in its answer). Default: the client's own. */
  dred?: boolean;
}

/** Removes RED from an SDP (rtpmap, fmtp and the payload type in each audio m-line), as a client that does not know it would answer. */
export function stripRed(sdp: string): string {
  const pts = [...sdp.matchAll(/^a=rtpmap:(\d+) red\/48000\/2\r?$/gim)].map((m) => m[1]!);
  let out = sdp;
  for (const pt of new Set(pts)) {
    out = out
      .replace(new RegExp(`^a=(rtpmap|fmtp|rtcp-fb):${pt} .*\\r?\\n`, 'gm'), '')
      .replace(new RegExp(`^(m=audio \\d+ \\S+(?: \\d+)*?) ${pt}\\b`, 'gm'), '$1');
  }
  return out;
}

/**
 * A media room in this process with NodeMediaClients, each optionally behind its own LossyRelay:
 * the server's offers are rewritten so the client sends to the relay, the client's answers and
 * candidates so the server sends to the relay (test/media/harness.ts is the relay-less original).
 */
export class RelayedRoom {
  readonly room: MediaRoom;
  readonly roomId = 'resilience';
  readonly clients = new Map<string, NodeMediaClient>();
  readonly relays = new Map<string, LossyRelay>();
  readonly errors: unknown[] = [];
  readonly #options = new Map<string, RelayedJoinOptions>();
  readonly #queues = new Map<string, Promise<void>>();

  constructor(options: Partial<MediaRoomOptions> & { rtcMinPort: number; rtcMaxPort: number }) {
    this.room = createMediaRoom({ roomId: this.roomId, slots: 3, announcedIp: '127.0.0.1', mode: 'sfu', ...options }, (e) => this.#route(e));
  }

  async join(participantId: string, options: RelayedJoinOptions = {}): Promise<NodeMediaClient> {
    this.#options.set(participantId, options);
    const client = new NodeMediaClient({
      room: this.roomId,
      decode: options.decode ?? false,
      ...(options.dred === undefined ? {} : { dred: options.dred }),
      signal: { send: (m) => this.#fromClient(participantId, m) },
    });
    this.clients.set(participantId, client);
    await this.room.join({ roomId: this.roomId, participantId, name: participantId, grants: options.grants ?? FULL_GRANTS });
    return client;
  }

  relay(participantId: string): LossyRelay {
    const r = this.relays.get(participantId);
    if (r === undefined) throw new Error(`no relay for ${participantId} (yet)`);
    return r;
  }

  async close(): Promise<void> {
    await this.room.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    for (const r of this.relays.values()) r.close();
    this.clients.clear();
    this.relays.clear();
  }

  #fromClient(participantId: string, m: ClientMediaMessage): void {
    const relay = this.relays.get(participantId);
    let message = m;
    if (relay !== undefined) {
      if (m.kind === 'answer' && m.sdp !== undefined) message = { ...m, sdp: rewriteCandidatePort(m.sdp, relay.serverSidePort) };
      else if (m.kind === 'candidate' && m.candidate) {
        message = { ...m, candidate: { ...m.candidate, candidate: rewriteCandidatePort(m.candidate.candidate, relay.serverSidePort) } };
      }
    }
    this.room.signal(participantId, message).catch((e: unknown) => this.errors.push(e));
  }

  #route(e: MediaRoomEvent): void {
    const targets = e.to === 'room' ? [...this.clients.keys()] : [e.participantId];
    for (const id of targets) {
      const previous = this.#queues.get(id) ?? Promise.resolve();
      const next = previous.then(() => this.#deliver(id, e.message)).catch((err: unknown) => {
        this.errors.push(err);
      });
      this.#queues.set(id, next);
    }
  }

  async #deliver(participantId: string, m: ServerMediaMessage): Promise<void> {
    const client = this.clients.get(participantId);
    if (client === undefined) return;
    const options = this.#options.get(participantId) ?? {};
    let message = m;
    if (m.op === 'media' && m.kind === 'offer' && m.sdp !== undefined) {
      let sdp = m.sdp;
      if (options.withoutRed) sdp = stripRed(sdp);
      if (options.relay) {
        this.relays.get(participantId)?.close();
        const relay = await LossyRelay.open(candidatePort(sdp));
        this.relays.set(participantId, relay);
        sdp = rewriteCandidatePort(sdp, relay.clientSidePort);
      }
      message = { ...m, sdp };
    }
    await client.handle(message);
  }
}

/** One received packet, copied (the client's buffer is werift's). */
export interface CapturedPacket {
  ssrc: number;
  seq: number;
  ts: number;
  arrivalMs: number;
  payload: Uint8Array;
}

/** Collects what a client receives of `publisherId`'s voice, whichever slot carries it (werift has already split RED into its blocks). */
export function capture(client: NodeMediaClient, publisherId: string): { packets: CapturedPacket[]; stop(): void } {
  const packets: CapturedPacket[] = [];
  const on = (p: ReceivedPacket): void => {
    if (p.participantId !== publisherId) return;
    packets.push({ ssrc: p.ssrc, seq: p.sequenceNumber, ts: p.timestamp, arrivalMs: p.arrivalMs, payload: Uint8Array.from(p.payload) });
  };
  client.on('rtp', on);
  return { packets, stop: () => client.off('rtp', on) };
}
