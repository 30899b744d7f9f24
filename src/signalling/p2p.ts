import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { counter, gauge, histogram } from '../metrics/registry.ts';
import type { ProtocolErrorCode } from '../protocol/error-codes.ts';
import type { ClientPeerMessage, RoomMode } from '../protocol/messages.ts';
import type { Participant } from '../rooms/registry.ts';
import type { ConnState, SignallingContext } from './context.ts';
import type { MediaGrants } from './media-plane.ts';
import { invalidPeerPayload } from './p2p-payload.ts';
import { DirectSpeaking } from './p2p-speaking.ts';
import type { Session } from './session.ts';

const log = logger('signalling');

/** The room modes this module runs: the server's media only when needed (`auto`) or never (`p2p`). */
export type PeerRoomMode = Extract<RoomMode, 'p2p' | 'auto'>;
export type Transport = 'direct' | 'server';

export function isPeerRoomMode(mode: RoomMode): mode is PeerRoomMode {
  return mode === 'p2p' || mode === 'auto';
}

/** A `p2p` room is one direct link: two participants (docs/media.md "Peer to peer"). */
export const P2P_MAX_PARTICIPANTS = 2;

interface Switch {
  to: Transport;
  /**
   * The first direct link of an `auto` pair, not a switch: it is watched the same way (both report
   * `switched` direct once they hear each other) so that a pair without a direct route (no TURN,
   * blocked UDP) moves to the server after p2p.switchTimeoutMs instead of staying silent. Only its
   * timeout is counted in the switch metrics.
   */
  initial: boolean;
  startedAt: number;
  /** Participants that have not reported `switched` to `to` yet. */
  waiting: Set<string>;
  timer: ReturnType<typeof setTimeout>;
}

interface PeerRoom {
  readonly id: string;
  readonly mode: PeerRoomMode;
  transport: Transport;
  /** Numbers direct links; a `peer` message of another link is stale and dropped. */
  link: number;
  /** Grants per participant, to join them to the media plane when the room moves to the server. */
  readonly grants: Map<string, MediaGrants>;
  /** Participants whose client can connect directly (`join.options.direct`); anyone else keeps the room on the server. */
  readonly direct: Set<string>;
  /** Participants with a server peer (in the media plane), and their join in flight. */
  readonly onServer: Map<string, Promise<void>>;
  switching: Switch | null;
}

const p2pMetrics = {
  switches: counter('voxlink_p2p_switches_total', 'Switches of auto rooms between direct and the server, by direction and outcome', ['to', 'outcome']),
  switchSeconds: histogram(
    'voxlink_p2p_switch_duration_seconds',
    'From the start of a switch until every client played the new path (make-before-break)',
    [0.25, 0.5, 1, 2, 3, 5, 8, 13, 20],
    ['to'],
  ),
  relayed: counter('voxlink_p2p_relayed_total', 'Peer offers, answers and candidates relayed between participants', ['kind']),
  rejected: counter('voxlink_p2p_rejected_total', 'Peer messages refused (malformed, oversized, wrong room or link)', ['reason']),
};

/** Every live instance, so one gauge collects over all servers of the process (tests run several). */
const instances = new Set<PeerToPeer>();
gauge('voxlink_p2p_rooms', 'p2p and auto rooms whose participants are connected directly', [], function () {
  let n = 0;
  for (const p of instances) n += p.directRooms().rooms;
  this.set(n);
});
gauge('voxlink_p2p_participants', 'Participants of rooms connected directly (no server media)', [], function () {
  let n = 0;
  for (const p of instances) n += p.directRooms().participants;
  this.set(n);
});

/**
 * Peer-to-peer rooms (`p2p`, `auto`; docs/media.md "Peer to peer"). The main thread decides per
 * room whether its audio goes directly between the two browsers or through the media plane, and
 * tells each client with `transport`. Directly: the server relays `peer` offers, answers and
 * candidates between the two and starts no media peers. An `auto` room moves to the server when a
 * third joins or a recording starts, and back when two remain (p2p.returnToDirect), always
 * make-before-break: the new path is set up while the old one plays, each client switches once
 * the new path carries audio and reports `switched`, and only then is the old path torn down.
 */
export class PeerToPeer {
  readonly #ctx: SignallingContext;
  readonly #rooms = new Map<string, PeerRoom>();
  readonly #speaking: DirectSpeaking;

  constructor(ctx: SignallingContext) {
    this.#ctx = ctx;
    this.#speaking = new DirectSpeaking(ctx);
    instances.add(this);
  }

  /** Rooms currently direct and their participants (the `voxlink_p2p_*` gauges). */
  directRooms(): { rooms: number; participants: number } {
    let rooms = 0;
    let participants = 0;
    for (const room of this.#rooms.values()) {
      if (room.transport !== 'direct' || (room.switching !== null && !room.switching.initial)) continue;
      rooms++;
      participants += this.#ctx.presence.size(room.id);
    }
    return { rooms, participants };
  }

  /** Why the room (or `mode`, for a new room) cannot take this joiner now, or null. `direct`: the joiner can connect directly. */
  joinRefusal(roomId: string, mode: RoomMode, direct: boolean): { code: ProtocolErrorCode; message: string } | null {
    const existing = this.#ctx.presence.get(roomId);
    const roomMode = existing?.mode ?? mode;
    if (roomMode !== 'p2p') return null;
    if ((existing?.participants.size ?? 0) >= P2P_MAX_PARTICIPANTS) {
      return { code: 'ROOM_FULL', message: `room "${roomId}" is peer to peer and holds ${P2P_MAX_PARTICIPANTS} participants; use mode auto to grow past two` };
    }
    if (!direct) {
      return {
        code: 'DIRECT_REQUIRED',
        message: `room "${roomId}" is peer to peer and this client cannot connect directly (join.options.direct); the server has no media for it: use mode auto`,
      };
    }
    return null;
  }

  /** False for a participant of a peer room without a server peer: the media plane does not know them. */
  hasServerMedia(roomId: string, participantId: string): boolean {
    const room = this.#rooms.get(roomId);
    return room === undefined || room.onServer.has(participantId);
  }

  /** After `joined` and `participant_joined`: the joiner's path (and maybe the room's switch to the server). */
  join(roomId: string, mode: PeerRoomMode, participant: Participant, grants: MediaGrants, direct: boolean): void {
    let room = this.#rooms.get(roomId);
    if (!room) {
      room = { id: roomId, mode, transport: 'direct', link: 0, grants: new Map(), direct: new Set(), onServer: new Map(), switching: null };
      this.#rooms.set(roomId, room);
    }
    room.grants.set(participant.participantId, grants);
    if (direct) room.direct.add(participant.participantId);
    else room.direct.delete(participant.participantId);
    if (room.transport === 'server' || this.#needsServer(room)) {
      this.#toServer(room);
      return;
    }
    this.#linkPair(room);
    const members = this.#ctx.presence.get(roomId);
    if (room.mode === 'auto' && this.#ctx.mediaPlane && members?.participants.size === P2P_MAX_PARTICIPANTS) {
      this.#endSwitch(room, 'undone');
      this.#startSwitch(room, 'direct', members.participants.keys(), true);
    }
  }

  /** The participant left the room (presence already updated): its server peer goes, the room may return to direct. */
  leave(roomId: string, participantId: string): void {
    const room = this.#rooms.get(roomId);
    if (!room) return;
    room.grants.delete(participantId);
    room.direct.delete(participantId);
    this.#speaking.forget(roomId, participantId);
    void this.#mediaLeave(room, participantId);
    if (room.switching?.initial) this.#endSwitch(room, 'undone');
    if (room.switching?.waiting.delete(participantId)) this.#checkSwitch(room);
    if (!this.#ctx.presence.get(roomId)) {
      if (room.switching) clearTimeout(room.switching.timer);
      this.#speaking.reset(roomId);
      this.#rooms.delete(roomId);
      return;
    }
    if (room.transport === 'direct') this.#linkPair(room);
    else this.#maybeReturn(room);
  }

  /**
   * Before a recording starts: a `p2p` room refuses (it has no server media), an `auto` room moves
   * to the server and resolves once every participant has a server peer.
   */
  async beforeRecord(roomId: string): Promise<void> {
    const room = this.#rooms.get(roomId);
    if (!room) return;
    if (room.mode === 'p2p') throw new VoxError('MEDIA_UNSUPPORTED', `room "${roomId}" is peer to peer: nothing goes through the server to record (use mode auto)`);
    if (room.transport === 'direct') this.#toServer(room);
    await Promise.all(room.onServer.values());
  }

  /**
   * A participant of a peer room was muted or unmuted (by themself, a moderator or the admin API;
   * presence already updated). On the server path the media plane drops a muted participant's
   * RTP; a direct link has no server in between, so every member is told (`peer` kind `muted`):
   * the muted client stops sending on its direct link and the other end stops playing it
   * (docs/media.md "Peer to peer").
   */
  muteChanged(roomId: string, participantId: string, muted: boolean): void {
    const room = this.#rooms.get(roomId);
    if (!room) return;
    if (muted) this.#speaking.forget(roomId, participantId);
    this.#ctx.out.broadcast(roomId, { op: 'peer', room: roomId, kind: 'muted', from: participantId, link: room.link, muted });
  }

  /** The room's recording stopped: an `auto` room of two may return to direct. */
  recordingStopped(roomId: string): void {
    const room = this.#rooms.get(roomId);
    if (room) this.#maybeReturn(room);
  }

  /** The `peer` op: relay (offer/answer/candidate) or a client's `switched`. Bad input gets a clear error, nothing else. */
  relay(state: ConnState, session: Session, msg: ClientPeerMessage): void {
    const { out } = this.#ctx;
    const refuse = (code: 'NOT_IN_ROOM' | 'FORBIDDEN' | 'INVALID_MESSAGE' | 'PARTICIPANT_NOT_FOUND', reason: string, text: string): void => {
      p2pMetrics.rejected.inc({ reason });
      out.sendError(state, code, text, msg.ref, { room: msg.room, about: 'peer' });
    };
    const self = session.rooms.get(msg.room);
    if (self === undefined) return refuse('NOT_IN_ROOM', 'not_in_room', `not in room "${msg.room}"`);
    const room = this.#rooms.get(msg.room);
    if (!room) return refuse('FORBIDDEN', 'not_peer_room', `room "${msg.room}" is not a p2p or auto room`);
    if (msg.kind === 'switched') {
      if (msg.transport === undefined) return refuse('INVALID_MESSAGE', 'malformed', 'peer switched: transport is required');
      this.#switched(room, self, msg.transport);
      return;
    }
    if (msg.kind === 'level') {
      if (msg.level === undefined) return refuse('INVALID_MESSAGE', 'malformed', 'peer level: level is required (RFC 6464 −dBov, 0–127)');
      // On the server path the media room reads levels from RTP; a report of an old link is late.
      if (room.transport === 'direct' && msg.link === room.link) this.#speaking.report(room.id, self, msg.level);
      return;
    }
    if (msg.to === undefined || msg.to === self) return refuse('INVALID_MESSAGE', 'malformed', `peer ${msg.kind}: "to" must name the other participant`);
    const target = this.#ctx.presence.participant(msg.room, msg.to);
    if (!target) return refuse('PARTICIPANT_NOT_FOUND', 'no_target', `no participant "${msg.to}" in room "${msg.room}"`);
    const invalid = invalidPeerPayload(msg, this.#ctx.config.p2p.maxSdpBytes);
    if (invalid !== null) return refuse('INVALID_MESSAGE', invalid.reason, `peer ${msg.kind}: ${invalid.text}`);
    if (room.transport !== 'direct' || msg.link !== room.link) {
      // A late message of a link the room has moved on from: nothing to answer, the client has moved on too.
      p2pMetrics.rejected.inc({ reason: 'stale_link' });
      return;
    }
    const to = this.#ctx.sessions.get(target.sessionId);
    if (!to) return;
    p2pMetrics.relayed.inc({ kind: msg.kind });
    out.sendTo(to, {
      op: 'peer',
      room: msg.room,
      kind: msg.kind,
      from: self,
      link: msg.link,
      ...(msg.sdp === undefined ? {} : { sdp: msg.sdp }),
      ...(msg.candidate === undefined ? {} : { candidate: msg.candidate }),
    });
  }

  close(): void {
    for (const room of this.#rooms.values()) if (room.switching) clearTimeout(room.switching.timer);
    this.#rooms.clear();
    this.#speaking.close();
    instances.delete(this);
  }

  /** An `auto` room needs the server from three participants, while recording, and while anyone cannot connect directly. */
  #needsServer(room: PeerRoom): boolean {
    if (room.mode !== 'auto' || !this.#ctx.mediaPlane) return false;
    const presence = this.#ctx.presence.get(room.id);
    if (!presence) return false;
    if (presence.participants.size > P2P_MAX_PARTICIPANTS || presence.recording !== null) return true;
    for (const participantId of presence.participants.keys()) if (!room.direct.has(participantId)) return true;
    return false;
  }

  /** Direct: each of the (at most two) participants gets `transport direct` naming the other; the earlier joiner offers. */
  #linkPair(room: PeerRoom): void {
    const presence = this.#ctx.presence.get(room.id);
    if (!presence) return;
    room.link++;
    const [a, b] = [...presence.participants.keys()];
    if (a !== undefined) this.#tell(room, a, b, false);
    if (b !== undefined) this.#tell(room, b, a, true);
  }

  #tell(room: PeerRoom, participantId: string, peer: string | undefined, offerer: boolean): void {
    const session = this.#session(room.id, participantId);
    if (!session) return;
    const { out } = this.#ctx;
    out.sendTo(session, {
      op: 'transport',
      room: room.id,
      transport: 'direct',
      link: room.link,
      self: participantId,
      ...(peer === undefined ? {} : { peer, offerer }),
    });
    // The slot the app plays is the direct link: the peer is in "slot 0", as in a two-person sfu room.
    if (room.onServer.size === 0) out.sendTo(session, { op: 'slots', room: room.id, slots: [{ slot: 0, participantId: peer ?? null }] });
    // Who of the two is muted: a new link (or a client that re-joined) starts from the server's state.
    for (const id of [participantId, peer]) {
      if (id !== undefined && this.#ctx.presence.participant(room.id, id)?.muted === true) {
        out.sendTo(session, { op: 'peer', room: room.id, kind: 'muted', from: id, link: room.link, muted: true });
      }
    }
  }

  /** Make: every participant gets a server peer and `transport server`; each reports `switched` once the server's audio plays. */
  #toServer(room: PeerRoom): void {
    const { presence, out } = this.#ctx;
    const members = presence.get(room.id);
    if (!members) return;
    const wasDirect = room.transport === 'direct';
    if (room.switching && room.switching.to !== 'server') this.#endSwitch(room, 'undone');
    room.transport = 'server';
    this.#speaking.reset(room.id);
    room.link++;
    for (const participant of members.participants.values()) {
      if (!room.onServer.has(participant.participantId)) this.#mediaJoin(room, participant);
    }
    for (const participantId of members.participants.keys()) {
      const session = this.#session(room.id, participantId);
      if (session) out.sendTo(session, { op: 'transport', room: room.id, transport: 'server', link: room.link, self: participantId });
    }
    if (wasDirect && members.participants.size > 1) this.#startSwitch(room, 'server', members.participants.keys());
  }

  /** Back to direct once two remain and nothing needs the server (make-before-break: server peers stay until both switched). */
  #maybeReturn(room: PeerRoom): void {
    if (room.mode !== 'auto' || room.transport !== 'server' || !this.#ctx.config.p2p.returnToDirect) return;
    if (this.#needsServer(room)) return;
    const members = this.#ctx.presence.get(room.id);
    if (!members) return;
    // A move to the server still under way is overtaken: the server peers it set up serve the way back.
    this.#endSwitch(room, 'undone');
    room.transport = 'direct';
    if (members.participants.size < P2P_MAX_PARTICIPANTS) {
      // Alone: nothing to hear either way, so no make-before-break; the server peer goes now.
      for (const participantId of [...room.onServer.keys()]) void this.#mediaLeave(room, participantId);
      this.#linkPair(room);
      return;
    }
    this.#linkPair(room);
    this.#startSwitch(room, 'direct', members.participants.keys());
  }

  #startSwitch(room: PeerRoom, to: Transport, participants: Iterable<string>, initial = false): void {
    const timer = setTimeout(() => this.#switchTimedOut(room), this.#ctx.config.p2p.switchTimeoutMs);
    timer.unref?.();
    room.switching = { to, initial, startedAt: performance.now(), waiting: new Set(participants), timer };
    log.info({ roomId: room.id, to }, 'p2p: switching');
  }

  #switched(room: PeerRoom, participantId: string, transport: Transport): void {
    const switching = room.switching;
    if (!switching || switching.to !== transport) return;
    switching.waiting.delete(participantId);
    this.#checkSwitch(room);
  }

  #checkSwitch(room: PeerRoom): void {
    const switching = room.switching;
    if (!switching || switching.waiting.size > 0) return;
    if (!switching.initial) p2pMetrics.switchSeconds.observe({ to: switching.to }, (performance.now() - switching.startedAt) / 1000);
    this.#endSwitch(room, 'done');
    if (switching.to === 'direct') {
      // Break: both play the direct link now, so their server peers go; then the slot view is the link's again.
      const link = room.link;
      void Promise.all([...room.onServer.keys()].map((participantId) => this.#mediaLeave(room, participantId))).then(() => {
        if (this.#rooms.get(room.id) === room && room.link === link && room.transport === 'direct') this.#linkSlots(room);
      });
    }
    log.info({ roomId: room.id, to: switching.to, ms: Math.round(performance.now() - switching.startedAt) }, 'p2p: switched');
  }

  #switchTimedOut(room: PeerRoom): void {
    const switching = room.switching;
    if (!switching || this.#rooms.get(room.id) !== room) return;
    log.warn({ roomId: room.id, to: switching.to, waiting: [...switching.waiting] }, 'p2p: switch timed out');
    this.#endSwitch(room, 'timeout');
    // Clients that could not connect directly (no route, no TURN) keep the server peers they still have.
    if (switching.to === 'direct') this.#toServer(room);
  }

  #endSwitch(room: PeerRoom, outcome: 'done' | 'timeout' | 'undone'): void {
    if (!room.switching) return;
    clearTimeout(room.switching.timer);
    if (!room.switching.initial || outcome === 'timeout') p2pMetrics.switches.inc({ to: room.switching.to, outcome });
    room.switching = null;
  }

  #mediaJoin(room: PeerRoom, participant: Participant): void {
    const { mediaPlane } = this.#ctx;
    const grants = room.grants.get(participant.participantId);
    if (!mediaPlane || !grants) return;
    const roomId = room.id;
    const { participantId } = participant;
    const joined = mediaPlane
      .join({ roomId, participantId, userId: participant.userId, name: participant.name, grants, roomMode: 'sfu' })
      .then(() => (participant.muted ? mediaPlane.setMuted(roomId, participantId, true) : undefined))
      .catch((err: unknown) => {
        log.error({ err, roomId }, 'p2p: media plane join failed');
        const session = this.#session(roomId, participantId);
        if (session) this.#ctx.out.sendTo(session, { op: 'error', code: 'MEDIA_FAILED', message: 'media join failed', room: roomId, about: 'join' });
      });
    room.onServer.set(participantId, joined);
  }

  /** Takes the participant's server peer away (after its join, if that is still in flight). */
  async #mediaLeave(room: PeerRoom, participantId: string): Promise<void> {
    const joined = room.onServer.get(participantId);
    const { mediaPlane } = this.#ctx;
    if (joined === undefined || !mediaPlane) return;
    room.onServer.delete(participantId);
    await joined;
    await mediaPlane.leave(room.id, participantId).catch((err: unknown) => log.error({ err, roomId: room.id }, 'p2p: media plane leave failed'));
  }

  /** `slots` for a direct room: each participant's slot 0 is the other. */
  #linkSlots(room: PeerRoom): void {
    const members = this.#ctx.presence.get(room.id);
    if (!members) return;
    const [a, b] = [...members.participants.keys()];
    for (const [self, peer] of [
      [a, b],
      [b, a],
    ]) {
      const session = self === undefined ? undefined : this.#session(room.id, self);
      if (session) this.#ctx.out.sendTo(session, { op: 'slots', room: room.id, slots: [{ slot: 0, participantId: peer ?? null }] });
    }
  }

  #session(roomId: string, participantId: string): Session | undefined {
    const participant = this.#ctx.presence.participant(roomId, participantId);
    return participant ? this.#ctx.sessions.get(participant.sessionId) : undefined;
  }
}
