import { z } from 'zod';
import { ProtocolErrorCodes } from './error-codes.ts';

/**
 * VoxLink signalling protocol v1: every message is one MessagePack map (one binary WebSocket frame)
 * with an `op` string. Client requests may carry `ref` (a client-chosen request id) which the server
 * echoes in the reply or `error`. Server messages carry `seq` (per-session, 1, 2, 3, …) when they are
 * sequenced — i.e. buffered and replayed on `resume`; session-control messages (`ready`, `resumed`,
 * `invalid_session`, `heartbeat_ack`) and the ephemeral `speaking` level events carry no `seq`.
 * docs/protocol.md is the prose version of this file.
 */
export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = 'voxlink.v1';

// ---------------------------------------------------------------------------------------------
// Shared field schemas

/** Room ids: 1–128 chars of letters, digits and `._-:@/~`. */
export const roomIdSchema = z.string().regex(/^[A-Za-z0-9._\-:@/~]{1,128}$/, 'invalid room id');
export const participantIdSchema = z.string().min(1).max(64);
const refSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const seqSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** A message schema whose `op` literal is its key in an op map. */
type OpSchemas<M> = { [K in keyof M & string]: z.ZodObject<{ op: z.ZodLiteral<K> } & z.ZodRawShape> };

/**
 * The discriminated union of an op → schema map. The map is the one list of a direction's ops (the
 * decoder looks schemas up in it); the union and the message types derive from it, so an op is
 * added in one place, and the `OpSchemas` constraint fails the build if a key and its literal differ.
 */
function unionOf<M extends OpSchemas<M>>(map: M) {
  return z.discriminatedUnion('op', Object.values(map) as [M[keyof M], ...M[keyof M][]]);
}

/**
 * `p2p`: the two participants' browsers connect directly, the server only relays their SDP and
 * candidates (`peer`); `auto`: peer to peer while two publish and nothing needs the server's media
 * (recording), the server's SFU otherwise (docs/media.md "Room modes").
 */
export const roomModes = ['sfu', 'mix', 'hybrid', 'p2p', 'auto'] as const;
export const roomModeSchema = z.enum(roomModes);
export type RoomMode = z.infer<typeof roomModeSchema>;

export const grantNames = ['join', 'publish', 'subscribe', 'record', 'admin'] as const;
export const grantSchema = z.enum(grantNames);
export type Grant = z.infer<typeof grantSchema>;

export const participantSchema = z.object({
  participantId: participantIdSchema,
  /** The token's `sub`. */
  userId: z.string(),
  name: z.string(),
  muted: z.boolean(),
  speaking: z.boolean(),
  /** Grants that matter to other participants (publish: may speak; admin: may mute others). */
  grants: z.array(grantSchema),
  /** Milliseconds since the Unix epoch. */
  joinedAt: z.number(),
  /**
   * connected, or reconnecting: their signalling connection dropped and the server holds their
   * place for the resume grace period (docs/protocol.md "Presence"). Absent from older servers: connected.
   */
  state: z.enum(['connected', 'reconnecting']).optional(),
});
export type ParticipantInfo = z.infer<typeof participantSchema>;
export type ParticipantState = NonNullable<ParticipantInfo['state']>;

export const iceServerSchema = z.object({
  urls: z.array(z.string()),
  username: z.string().optional(),
  credential: z.string().optional(),
});
export type IceServer = z.infer<typeof iceServerSchema>;

/** RTCIceCandidateInit (W3C webrtc-pc §4.8.1); `null` candidate = end of candidates. */
export const iceCandidateSchema = z.object({
  candidate: z.string().max(2048),
  sdpMid: z.string().max(64).nullable().optional(),
  sdpMLineIndex: z.number().int().min(0).max(1024).nullable().optional(),
  usernameFragment: z.string().max(256).nullable().optional(),
});
export type IceCandidate = z.infer<typeof iceCandidateSchema>;

export const mediaKinds = ['offer', 'answer', 'candidate', 'ice_restart', 'subscribe_video', 'unsubscribe_video'] as const;
export const mediaKindSchema = z.enum(mediaKinds);
export type MediaKind = z.infer<typeof mediaKindSchema>;

/** Fields shared by client→server and server→client `media` messages. */
const mediaFields = {
  room: roomIdSchema,
  kind: mediaKindSchema,
  sdp: z.string().max(256 * 1024).optional(),
  candidate: iceCandidateSchema.nullable().optional(),
  /** subscribe_video/unsubscribe_video: whose video; server→client: who the media concerns. */
  participantId: participantIdSchema.optional(),
  /** Negotiation id chosen by the media plane so answers match offers across ICE restarts. */
  negotiationId: z.number().int().min(0).optional(),
  /** Free-form, media-plane-specific extras (plain MessagePack data only). */
  options: z.record(z.string(), z.unknown()).optional(),
};

// ---------------------------------------------------------------------------------------------
// Client → server

export const helloSchema = z.object({
  op: z.literal('hello'),
  ref: refSchema.optional(),
  /** A VoxLink JWT (see docs/protocol.md#tokens). */
  token: z.string().min(1).max(8192),
  client: z
    .object({
      name: z.string().max(64).optional(),
      version: z.string().max(64).optional(),
      platform: z.string().max(64).optional(),
    })
    .optional(),
  /** Protocol version the client speaks; only 1 exists. */
  protocol: z.literal(1).optional(),
});

export const joinSchema = z.object({
  op: z.literal('join'),
  ref: refSchema.optional(),
  room: roomIdSchema,
  options: z
    .object({
      /** Join muted (default false). */
      muted: z.boolean().optional(),
      /** Requested room mode; only honoured when the join creates the room. */
      mode: roomModeSchema.optional(),
      /**
       * The ticket of a `redirect` (cluster): lets the room's owner node admit the join without
       * asking Redis. Opaque to clients; docs/cluster.md.
       */
      ticket: z.string().max(512).optional(),
      /**
       * This client can connect directly to another participant (`transport` direct, `peer`
       * relay; docs/media.md "Peer to peer"). Absent or false: it only speaks to the server, so
       * an `auto` room stays on the server while it is in, and a `p2p` room refuses it.
       */
      direct: z.boolean().optional(),
    })
    .optional(),
});

export const leaveSchema = z.object({
  op: z.literal('leave'),
  ref: refSchema.optional(),
  room: roomIdSchema,
});

export const muteSchema = z.object({
  op: z.literal('mute'),
  ref: refSchema.optional(),
  room: roomIdSchema,
  /** Someone else's participant id: needs the `admin` grant for the room. Default: yourself. */
  participantId: participantIdSchema.optional(),
});

export const unmuteSchema = z.object({
  op: z.literal('unmute'),
  ref: refSchema.optional(),
  room: roomIdSchema,
  /** Only yourself: nobody can unmute someone else's microphone. */
  participantId: participantIdSchema.optional(),
});

export const heartbeatSchema = z.object({
  op: z.literal('heartbeat'),
  ref: refSchema.optional(),
  /** Highest `seq` the client has received (0 if none). The server frees replay buffer up to it. */
  ack: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

export const resumeSchema = z.object({
  op: z.literal('resume'),
  ref: refSchema.optional(),
  sessionId: z.string().min(1).max(64),
  resumeToken: z.string().min(1).max(128),
  /** Highest `seq` received before the drop; the server replays everything after it. */
  lastSeq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** Start or stop recording the room (needs the `record` grant for it; docs/recording.md). */
export const recordSchema = z.object({
  op: z.literal('record'),
  ref: refSchema.optional(),
  room: roomIdSchema,
  action: z.enum(['start', 'stop']),
});

/**
 * Present a new token before the current one expires (docs/protocol.md "Token expiry"): same
 * `sub`, verified like hello's; the session continues under the new token's expiry and grants.
 */
export const refreshSchema = z.object({
  op: z.literal('refresh'),
  ref: refSchema.optional(),
  token: z.string().min(1).max(8192),
});

export const clientMediaSchema = z.object({
  op: z.literal('media'),
  ref: refSchema.optional(),
  ...mediaFields,
});

/**
 * Peer-to-peer (`p2p` and `auto` rooms, docs/media.md "Peer to peer"): the server relays a
 * participant's offer, answer and ICE candidates to the one other participant of its direct link
 * (`to`), schema-checked, size-limited (p2p.maxSdpBytes) and only within the room. `switched`
 * reports that this client now plays `transport` (make-before-break done on its side). `level`
 * reports the client's own microphone level while its audio goes directly (the server sees no
 * RTP then), so the room still gets `speaking` events.
 */
export const peerKinds = ['offer', 'answer', 'candidate', 'switched', 'level'] as const;
/** A client on a direct link sends `peer` `level` this often while it is not silent (one more when it falls silent). */
export const PEER_LEVEL_INTERVAL_MS = 200;
export const peerTransports = ['direct', 'server'] as const;
export const clientPeerSchema = z.object({
  op: z.literal('peer'),
  ref: refSchema.optional(),
  room: roomIdSchema,
  kind: z.enum(peerKinds),
  /** offer/answer/candidate: the participant at the other end of the direct link. */
  to: participantIdSchema.optional(),
  /** The link the message belongs to (`transport.link`); messages of an older link are dropped. */
  link: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  sdp: z.string().max(64 * 1024).optional(),
  candidate: iceCandidateSchema.nullable().optional(),
  /** switched: what the client plays now. */
  transport: z.enum(peerTransports).optional(),
  /** level: the microphone's mean level over the last report interval, RFC 6464 −dBov (0 loudest … 127 silence). */
  level: z.number().int().min(0).max(127).optional(),
});

export const clientSchemas = {
  hello: helloSchema,
  join: joinSchema,
  leave: leaveSchema,
  mute: muteSchema,
  unmute: unmuteSchema,
  heartbeat: heartbeatSchema,
  resume: resumeSchema,
  media: clientMediaSchema,
  record: recordSchema,
  refresh: refreshSchema,
  peer: clientPeerSchema,
} as const;

export type ClientOp = keyof typeof clientSchemas;
export const clientOps = Object.keys(clientSchemas) as ClientOp[];
export const clientMessageSchema = unionOf(clientSchemas);

export type HelloMessage = z.infer<typeof helloSchema>;
export type JoinMessage = z.infer<typeof joinSchema>;
export type LeaveMessage = z.infer<typeof leaveSchema>;
export type MuteMessage = z.infer<typeof muteSchema>;
export type UnmuteMessage = z.infer<typeof unmuteSchema>;
export type HeartbeatMessage = z.infer<typeof heartbeatSchema>;
export type ResumeMessage = z.infer<typeof resumeSchema>;
export type ClientMediaMessage = z.infer<typeof clientMediaSchema>;
export type RecordMessage = z.infer<typeof recordSchema>;
export type RefreshMessage = z.infer<typeof refreshSchema>;
export type ClientPeerMessage = z.infer<typeof clientPeerSchema>;
export type ClientMessage = z.infer<typeof clientMessageSchema>;

// ---------------------------------------------------------------------------------------------
// Server → client

/**
 * Room metadata limit in UTF-8 bytes (the admin API refuses more). A string within it has at most
 * as many UTF-16 units, so the message schemas bound the length by the same number.
 */
export const ROOM_METADATA_MAX_BYTES = 4096;

const sequenced = {
  seq: seqSchema,
  ref: refSchema.optional(),
};
const unsequenced = {
  seq: seqSchema.optional(),
  ref: refSchema.optional(),
};

export const serverInfoSchema = z.object({
  version: z.string(),
  protocol: z.literal(1),
  /** false when uWebSockets.js runs its JS fallback (slower). */
  native: z.boolean(),
});

export const readySchema = z.object({
  op: z.literal('ready'),
  ...unsequenced,
  sessionId: z.string(),
  resumeToken: z.string(),
  /** The client sends `heartbeat` this often. */
  heartbeatIntervalMs: z.number().int().positive(),
  /** A session without connection is kept this long; `resume` within it. */
  resumeGraceMs: z.number().int().nonnegative(),
  userId: z.string(),
  name: z.string(),
  server: serverInfoSchema,
  /** STUN/TURN servers for RTCPeerConnection, TURN credentials included (TURN REST API). */
  iceServers: z.array(iceServerSchema),
  /**
   * When the token expires (ms since the epoch): the server ends the session then (close 1008
   * "token expired") unless a `refresh` brings a newer token first. Absent from older servers.
   */
  tokenExpiresAt: z.number().optional(),
});

/** Reply to `refresh`: the session now runs on the new token. */
export const refreshedSchema = z.object({
  op: z.literal('refreshed'),
  ...unsequenced,
  /** The new token's expiry (ms since the epoch). */
  tokenExpiresAt: z.number(),
});

/** A room's recording as participants see it: everyone in a recorded room is told, joiners included. */
export const recordingInfoSchema = z.object({
  /** Recording id: the folder under GET /recordings. */
  id: z.string(),
  /** Participant id of who started it. */
  startedBy: z.string(),
  /** Milliseconds since the Unix epoch. */
  startedAt: z.number(),
});
export type RecordingInfo = z.infer<typeof recordingInfoSchema>;

export const joinedSchema = z.object({
  op: z.literal('joined'),
  ...sequenced,
  room: roomIdSchema,
  mode: roomModeSchema,
  /** Your participant id in this room. */
  participantId: participantIdSchema,
  /** Everyone in the room, yourself included. */
  participants: z.array(participantSchema),
  /** Set while the room is being recorded. */
  recording: recordingInfoSchema.optional(),
  /** The room's metadata string, set by an admin (UpdateRoomMetadata, docs/api.md); absent when none. */
  metadata: z.string().max(ROOM_METADATA_MAX_BYTES).optional(),
});

export const leftSchema = z.object({
  op: z.literal('left'),
  ...sequenced,
  room: roomIdSchema,
});

export const participantLeftReasons = ['left', 'disconnected', 'replaced', 'kicked', 'removed', 'room_ended'] as const;

export const participantJoinedSchema = z.object({
  op: z.literal('participant_joined'),
  ...sequenced,
  room: roomIdSchema,
  participant: participantSchema,
});

export const participantLeftSchema = z.object({
  op: z.literal('participant_left'),
  ...sequenced,
  room: roomIdSchema,
  participantId: participantIdSchema,
  /**
   * left: sent `leave`; disconnected: resume grace expired; replaced: the same user joined the room again (signalling.replaceIdentity); kicked;
   * removed: an admin removed it (RemoveParticipant); room_ended: an admin ended the room (EndRoom).
   * The participant itself gets this message too when removed or the room ended (then it is out).
   */
  reason: z.enum(participantLeftReasons),
});

export const participantUpdatedSchema = z.object({
  op: z.literal('participant_updated'),
  ...sequenced,
  room: roomIdSchema,
  participant: participantSchema,
});

/** Reply to mute/unmute (the room also gets `participant_updated`). */
export const muteAckSchema = z.object({
  op: z.literal('mute_ack'),
  ...sequenced,
  room: roomIdSchema,
  participantId: participantIdSchema,
  muted: z.boolean(),
});

export const heartbeatAckSchema = z.object({
  op: z.literal('heartbeat_ack'),
  ...unsequenced,
  /** Highest `seq` the server has sent on this session so far. */
  lastSeq: z.number().int().min(0),
});

export const resumedSchema = z.object({
  op: z.literal('resumed'),
  ...unsequenced,
  sessionId: z.string(),
  /** How many messages were replayed before this one. */
  replayed: z.number().int().min(0),
  /** Rooms the session is still in. */
  rooms: z.array(roomIdSchema),
  /**
   * STUN/TURN servers with TURN credentials minted at resume time (they replace `ready`'s, which
   * may have expired by now). Absent from servers that predate it: keep using `ready`'s.
   */
  iceServers: z.array(iceServerSchema).optional(),
});

export const invalidSessionReasons = ['unknown_session', 'expired', 'bad_token', 'replay_gap', 'replaced', 'token_expired'] as const;

export const invalidSessionSchema = z.object({
  op: z.literal('invalid_session'),
  ...unsequenced,
  /**
   * expired: grace period over; replaced: the same identity joined elsewhere; unknown_session: never
   * seen or forgotten; bad_token: wrong resume token; replay_gap: the buffer no longer holds lastSeq+1;
   * token_expired: the session's token expired meanwhile (hello with a fresh token).
   */
  reason: z.enum(invalidSessionReasons),
});

export const errorSchema = z.object({
  op: z.literal('error'),
  /** Present (and replayable) once a session exists; errors before `ready` carry no seq. */
  ...unsequenced,
  code: z.enum(ProtocolErrorCodes),
  message: z.string(),
  room: roomIdSchema.optional(),
  /** The offending op when known. */
  about: z.string().optional(),
  /** JOIN_RATE_LIMITED: milliseconds until the same request will be accepted. */
  retryAfterMs: z.number().int().min(0).optional(),
});

export const serverMediaSchema = z.object({
  op: z.literal('media'),
  ...sequenced,
  ...mediaFields,
});

export const slotsSchema = z.object({
  op: z.literal('slots'),
  ...sequenced,
  room: roomIdSchema,
  /** Slot k = the k-th outgoing audio track of your subscriber PeerConnection. */
  slots: z.array(z.object({ slot: z.number().int().min(0), participantId: participantIdSchema.nullable() })),
});

export const speakingSchema = z.object({
  op: z.literal('speaking'),
  ...unsequenced,
  room: roomIdSchema,
  participantId: participantIdSchema,
  speaking: z.boolean(),
  /** Audio level 0 (silence) … 1 (full scale), from RFC 6464 dBov: 10^(-dBov/20). */
  level: z.number().min(0).max(1),
});

/**
 * The room's recording started or stopped (to everyone in the room; the one who asked gets it with
 * their `ref`). `recording` false + no `id`: a `stop` when nothing was recording.
 */
export const recordingSchema = z.object({
  op: z.literal('recording'),
  ...sequenced,
  room: roomIdSchema,
  recording: z.boolean(),
  id: z.string().optional(),
  /** Participant id of who started (recording true) or stopped (false) it; absent when the room ended it. */
  by: z.string().optional(),
  startedAt: z.number().optional(),
  /** When stopped: the files written (one per participant heard). */
  files: z.number().int().min(0).optional(),
});

/**
 * A stopped recording of the room has its transcript (docs/recording.md "Transcription"): told to
 * everyone still in the room. Small on purpose: the files are beside the recording's tracks.
 */
export const transcriptSchema = z.object({
  op: z.literal('transcript'),
  ...sequenced,
  room: roomIdSchema,
  recordingId: z.string(),
  /** Tracks transcribed and the words found in all of them; tracks that failed. */
  tracks: z.number().int().min(0),
  words: z.number().int().min(0),
  failed: z.number().int().min(0),
});

/** The room's metadata changed (an admin's UpdateRoomMetadata); `joined.metadata` carries it for joiners. */
export const roomMetadataSchema = z.object({
  op: z.literal('room_metadata'),
  ...sequenced,
  room: roomIdSchema,
  metadata: z.string().max(ROOM_METADATA_MAX_BYTES),
});

export const mediaReconnectSchema = z.object({
  op: z.literal('media_reconnect'),
  ...sequenced,
  room: roomIdSchema,
  reason: z.string(),
});

/**
 * Cluster (docs/cluster.md): the room lives on another node. As the reply to `join` (with its
 * `ref`): connect to `url`, say `hello` and send the same `join` with `options.ticket`. Without a
 * `ref` (reason `moving`): this node is shutting down and the room moved to `url`; the SDK does
 * the same for every room the session is in.
 */
export const redirectSchema = z.object({
  op: z.literal('redirect'),
  ...sequenced,
  room: roomIdSchema,
  /** The owner node's signalling URL (ws:// or wss:// … /ws). */
  url: z.string().max(2048),
  /** Short-lived signed ticket naming the room and the owner node. */
  ticket: z.string().max(512),
  reason: z.enum(['placed', 'moving']),
});

/**
 * A peer's offer, answer or candidate, relayed by the server from `from` (p2p and auto rooms).
 * `muted`: the server's mute state of `from` while the room is direct, sent to both ends of the
 * link (at each new link and at each change): `from` itself stops sending on the direct link, the
 * other end stops playing it (the server has no RTP to drop then).
 */
export const serverPeerSchema = z.object({
  op: z.literal('peer'),
  ...sequenced,
  room: roomIdSchema,
  kind: z.enum(['offer', 'answer', 'candidate', 'muted']),
  from: participantIdSchema,
  link: z.number().int().min(0),
  sdp: z.string().max(64 * 1024).optional(),
  candidate: iceCandidateSchema.nullable().optional(),
  muted: z.boolean().optional(),
});

/**
 * Which way this participant's audio should go (p2p and auto rooms; never sent in other modes).
 * `direct`: connect to `peer` (absent: nobody to connect to yet), the `offerer` end creates the
 * offer; `server`: answer the server's offer as in an sfu room. Either way the client keeps playing
 * what it has until the new path carries audio, then reports `peer` `switched` (make-before-break).
 */
export const transportSchema = z.object({
  op: z.literal('transport'),
  ...sequenced,
  room: roomIdSchema,
  transport: z.enum(peerTransports),
  /** Numbers the direct links of the room: peer messages carry it so a late one of an old link is dropped. */
  link: z.number().int().min(0),
  peer: participantIdSchema.optional(),
  offerer: z.boolean().optional(),
  /** The recipient's own participant id, so a `peer` `muted` about itself is recognised. */
  self: participantIdSchema.optional(),
});

export const serverSchemas = {
  ready: readySchema,
  joined: joinedSchema,
  left: leftSchema,
  participant_joined: participantJoinedSchema,
  participant_left: participantLeftSchema,
  participant_updated: participantUpdatedSchema,
  mute_ack: muteAckSchema,
  heartbeat_ack: heartbeatAckSchema,
  resumed: resumedSchema,
  invalid_session: invalidSessionSchema,
  error: errorSchema,
  media: serverMediaSchema,
  slots: slotsSchema,
  speaking: speakingSchema,
  media_reconnect: mediaReconnectSchema,
  recording: recordingSchema,
  room_metadata: roomMetadataSchema,
  redirect: redirectSchema,
  refreshed: refreshedSchema,
  transcript: transcriptSchema,
  peer: serverPeerSchema,
  transport: transportSchema,
} as const;

export type ServerOp = keyof typeof serverSchemas;
export const serverOps = Object.keys(serverSchemas) as ServerOp[];
export const serverMessageSchema = unionOf(serverSchemas);

/** Ops that are stamped with a per-session `seq`, kept in the replay buffer and replayed on resume. */
export const sequencedServerOps: ReadonlySet<ServerOp> = new Set<ServerOp>([
  'joined',
  'left',
  'participant_joined',
  'participant_left',
  'participant_updated',
  'mute_ack',
  'error',
  'media',
  'slots',
  'media_reconnect',
  'recording',
  'room_metadata',
  'redirect',
  'transcript',
  'peer',
  'transport',
]);

export type ReadyMessage = z.infer<typeof readySchema>;
export type JoinedMessage = z.infer<typeof joinedSchema>;
export type LeftMessage = z.infer<typeof leftSchema>;
export type ParticipantJoinedMessage = z.infer<typeof participantJoinedSchema>;
export type ParticipantLeftMessage = z.infer<typeof participantLeftSchema>;
export type ParticipantUpdatedMessage = z.infer<typeof participantUpdatedSchema>;
export type MuteAckMessage = z.infer<typeof muteAckSchema>;
export type HeartbeatAckMessage = z.infer<typeof heartbeatAckSchema>;
export type ResumedMessage = z.infer<typeof resumedSchema>;
export type InvalidSessionMessage = z.infer<typeof invalidSessionSchema>;
export type ErrorMessage = z.infer<typeof errorSchema>;
export type ServerMediaNegotiation = z.infer<typeof serverMediaSchema>;
export type SlotsMessage = z.infer<typeof slotsSchema>;
export type SpeakingMessage = z.infer<typeof speakingSchema>;
export type MediaReconnectMessage = z.infer<typeof mediaReconnectSchema>;
export type RecordingMessage = z.infer<typeof recordingSchema>;
export type RoomMetadataMessage = z.infer<typeof roomMetadataSchema>;
export type RedirectMessage = z.infer<typeof redirectSchema>;
export type RefreshedMessage = z.infer<typeof refreshedSchema>;
export type TranscriptMessage = z.infer<typeof transcriptSchema>;
export type ServerPeerMessage = z.infer<typeof serverPeerSchema>;
export type TransportMessage = z.infer<typeof transportSchema>;
export type ServerMessage = z.infer<typeof serverMessageSchema>;

/** A server message before the signalling layer stamps `seq` (and `ref`) on it. */
export type Unstamped<M> = M extends unknown ? Omit<M, 'seq'> : never;
export type UnstampedServerMessage = Unstamped<ServerMessage>;

/** What the media plane sends to clients (signalling stamps `seq`, delivers or buffers for resume). */
export type ServerMediaMessage = Unstamped<ServerMediaNegotiation | SlotsMessage | SpeakingMessage | MediaReconnectMessage | RecordingMessage>;
