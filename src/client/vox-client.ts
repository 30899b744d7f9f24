import {
  SUBPROTOCOL,
  PROTOCOL_VERSION,
  decodeServerMessage,
  encodeMessage,
  closeCodeInfo,
  isResumableClose,
  type ClientMessage,
  type IceServer,
  type JoinedMessage,
  type MediaReconnectMessage,
  type ParticipantInfo,
  type ParticipantLeftMessage,
  type ReadyMessage,
  type RecordingInfo,
  type RoomMode,
  type ServerMediaNegotiation,
  type ServerMessage,
  type ServerPeerMessage,
  type SlotsMessage,
  type TransportMessage,
  type SpeakingMessage,
} from '../protocol/index.ts';
import { TypedEmitter } from './emitter.ts';
import { SignallingError, describeClose } from './errors.ts';
import { ExponentialBackoffPolicy, type ReconnectPolicy } from './reconnect-policy.ts';
import { LocalRoom, participantChanged, type RoomState, type SlotAssignment } from './room.ts';
import { WS_OPEN, defaultWebSocket, toBytes, type WebSocketConstructor, type WebSocketLike } from './transport.ts';

/**
 * - `connecting`: first `connect()` in progress.
 * - `connected`: a session is up (after `connect()`, or after a re-join on a fresh session).
 * - `reconnecting`: the connection dropped; retrying per the ReconnectPolicy, rooms kept locally.
 * - `resumed`: reconnected onto the same session; missed events were replayed. Usable like `connected`.
 * - `disconnected`: `disconnect()` was called, the server closed normally, or the first connect failed.
 * - `failed`: a terminal close code, or the policy gave up. Not retried; see the `error` event.
 */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'resumed' | 'disconnected' | 'failed';

export interface JoinOptions {
  /** Join with the microphone muted (default false). */
  muted?: boolean;
  /** Room mode, honoured only when this join creates the room. */
  mode?: RoomMode;
  /**
   * Your media client connects directly in p2p/auto rooms (a `BrowserMediaClient` or
   * `NodeMediaClient` with `signal.sendPeer`; docs/sdk.md "Peer to peer"). Default false: an
   * `auto` room stays on the server while you are in it, a `p2p` room refuses you.
   */
  direct?: boolean;
}

export type TokenSource = string | (() => string | Promise<string>);

/** Structured logger slice (pino-compatible). The SDK never logs tokens. */
export interface ClientLogger {
  debug(object: object, message: string): void;
  warn(object: object, message: string): void;
}

export interface VoxClientOptions {
  /** WebSocket implementation; default `globalThis.WebSocket` (browsers). Node 20 passes `ws` (see node.ts). */
  WebSocket?: WebSocketConstructor;
  /** Default: exponential backoff with full jitter, 250 ms → 10 s, give up after 5 min. */
  reconnectPolicy?: ReconnectPolicy;
  /** A request without reply rejects with TIMEOUT after this long. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** Opening the socket plus hello/resume must finish within this. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Heartbeats in a row without any reply before the connection counts as dead. Default 2. */
  maxMissedHeartbeats?: number;
  /** Sent in `hello.client`. */
  clientInfo?: { name?: string; version?: string; platform?: string };
  logger?: ClientLogger;
}

export interface SessionInfo {
  sessionId: string;
  userId: string;
  name: string;
  heartbeatIntervalMs: number;
  resumeGraceMs: number;
  iceServers: IceServer[];
  server: ReadyMessage['server'];
  /**
   * When the session's token expires (ms since the epoch); the server ends the session then
   * (1008 "token expired") unless `refreshToken` brought a newer one. Undefined from older servers.
   */
  tokenExpiresAt?: number;
}

export type RoomEventReason = 'joined' | 'resumed' | 'rejoined' | 'left';

export interface VoxClientEvents extends Record<string, unknown[]> {
  state: [state: ConnectionState, previous: ConnectionState];
  /** Full state of one room: after join, after a resume, after the SDK re-joined on a fresh session, or when it is gone. */
  room: [event: { room: RoomState; reason: RoomEventReason; leftReason?: ParticipantLeftMessage['reason'] }];
  /** The room's metadata changed (an admin's UpdateRoomMetadata); `room.metadata` says the same. */
  room_metadata: [event: { room: string; metadata: string }];
  participant_joined: [event: { room: string; participant: ParticipantInfo }];
  participant_left: [event: { room: string; participantId: string; reason: ParticipantLeftMessage['reason'] }];
  participant_updated: [event: { room: string; participant: ParticipantInfo; previous: ParticipantInfo | undefined }];
  speaking: [event: { room: string; participantId: string; speaking: boolean; level: number }];
  slots: [event: { room: string; slots: readonly SlotAssignment[] }];
  /** The room's recording started (`recording` set) or stopped (null); `room.recording` says the same. */
  recording: [event: { room: string; recording: RecordingInfo | null; by: string | undefined }];
  /** A stopped recording of the room has its transcript (tracks and words counted; docs/recording.md "Transcription"). */
  transcript: [event: { room: string; recordingId: string; tracks: number; words: number; failed: number }];
  /**
   * Every message from the media plane, raw (`media` negotiation, `slots`, `speaking`,
   * `media_reconnect`, and in p2p/auto rooms `transport` and the other peer's `peer` messages), for
   * the media part of the SDK: `client.on('media', (m) => mediaClient.handle(m))`.
   */
  media: [message: ServerMediaNegotiation | SlotsMessage | SpeakingMessage | MediaReconnectMessage | ServerPeerMessage | TransportMessage];
  /**
   * The session's STUN/TURN servers changed: a resume brought freshly minted TURN credentials.
   * Hand them to the media client so its next peer (media reconnect) can still allocate:
   * `client.on('ice_servers', (s) => media.setIceServers(s))`.
   */
  ice_servers: [iceServers: IceServer[]];
  error: [error: SignallingError];
}

type WithoutRef<M> = M extends unknown ? Omit<M, 'ref'> : never;
type ClientRequest = WithoutRef<ClientMessage>;

interface PendingRequest {
  op: string;
  resolve: (message: ServerMessage) => void;
  reject: (error: SignallingError) => void;
  timer: ReturnType<typeof setTimeout>;
}

type HandshakeOutcome =
  | { kind: 'ready'; message: ReadyMessage }
  | { kind: 'resumed'; rooms: string[]; iceServers: IceServer[] | undefined }
  | { kind: 'invalid'; reason: string };

interface Handshake {
  resolve: (outcome: HandshakeOutcome) => void;
  reject: (error: SignallingError) => void;
}

const SDK_VERSION = '0.1.0';

/**
 * VoxLink signalling client for browsers and Node (LiveKit's SignalClient + Room, without the
 * media part). One instance = one signalling session, which may span many WebSocket connections:
 * drops are resumed (missed events replayed exactly once, in order, by `seq`), and when the
 * server no longer knows the session the SDK opens a fresh one and re-joins its rooms by itself.
 */
export class VoxClient extends TypedEmitter<VoxClientEvents> {
  readonly #WebSocket: WebSocketConstructor;
  readonly #policy: ReconnectPolicy;
  readonly #requestTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #maxMissed: number;
  readonly #clientInfo: { name?: string; version?: string; platform?: string };
  readonly #log: ClientLogger | undefined;

  #state: ConnectionState = 'disconnected';
  #url = '';
  /** Entry URLs given to connect(); reconnects that fail walk through them. */
  #entries: string[] = [];
  /** Redirect tickets per room, for the join on the node a room moved to. */
  readonly #tickets = new Map<string, string>();
  #moving = false;
  #token: TokenSource = '';
  #socket: WebSocketLike | null = null;
  #session: (SessionInfo & { resumeToken: string }) | null = null;
  /** Highest `seq` applied; anything at or below it is a duplicate from a replay. */
  #lastSeq = 0;
  #nextRef = 1;
  readonly #pending = new Map<number, PendingRequest>();
  #handshake: Handshake | null = null;
  readonly #rooms = new Map<string, LocalRoom>();
  /** Options of joins in flight, so a `joined` (possibly replayed) can build its room. */
  readonly #joinOptions = new Map<string, JoinOptions>();
  /** Rooms in the local model that the current session is not in (after invalid_session). */
  readonly #staleRooms = new Set<string>();
  #heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  /** Refreshes a function token before it expires (see #scheduleRefresh). */
  #refreshTimer: ReturnType<typeof setTimeout> | null = null;
  #missedHeartbeats = 0;
  #awaitingAck = false;
  /** Bumped by disconnect() so an in-flight reconnect loop stops at its next step. */
  #epoch = 0;
  #sleepTimer: ReturnType<typeof setTimeout> | null = null;
  /** Rejects the in-flight `#openSocket()` when its socket is dropped before it opened. */
  #abortOpen: ((error: SignallingError) => void) | null = null;
  #wakeSleeper: (() => void) | null = null;

  constructor(options: VoxClientOptions = {}) {
    super((error, event) => {
      // A throwing app listener must not break the SDK; report it and carry on.
      if (this.#log) this.#log.warn({ event: String(event), err: String(error) }, 'VoxClient listener threw');
      else console.error(`VoxClient: a '${String(event)}' listener threw`, error);
    });
    const WebSocketImpl = options.WebSocket ?? defaultWebSocket();
    if (!WebSocketImpl) {
      throw new SignallingError('INVALID_ARGUMENT', {
        detail: 'no WebSocket implementation: pass options.WebSocket (in Node 20 use createNodeClient from voxlink/client/node, which passes ws)',
      });
    }
    this.#WebSocket = WebSocketImpl;
    this.#policy = options.reconnectPolicy ?? new ExponentialBackoffPolicy();
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#maxMissed = options.maxMissedHeartbeats ?? 2;
    // The server rejects a hello whose client fields exceed 64 characters (docs/protocol.md):
    // clip here so a long user-agent string never costs the connection.
    const info = options.clientInfo ?? { name: 'voxlink-sdk', version: SDK_VERSION };
    this.#clientInfo = {
      ...(info.name !== undefined ? { name: info.name.slice(0, 64) } : {}),
      ...(info.version !== undefined ? { version: info.version.slice(0, 64) } : {}),
      ...(info.platform !== undefined ? { platform: info.platform.slice(0, 64) } : {}),
    };
    this.#log = options.logger;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Session details from `ready` (null before the first connect and after disconnect). */
  get session(): SessionInfo | null {
    if (!this.#session) return null;
    const { resumeToken: _hidden, ...info } = this.#session;
    return info;
  }

  /**
   * The session's current STUN/TURN servers (TURN credentials included): from `ready`, replaced by
   * the fresh ones a `resumed` carries. Empty before the first connect and after disconnect. Pass
   * them as the media client's `rtcConfiguration.iceServers`.
   */
  get iceServers(): IceServer[] {
    return this.#session?.iceServers ?? [];
  }

  /** Rooms this client is in, as the SDK currently knows them. */
  get rooms(): ReadonlyMap<string, RoomState> {
    return this.#rooms;
  }

  room(id: string): RoomState | undefined {
    return this.#rooms.get(id);
  }

  /** Highest server `seq` applied so far (what heartbeats acknowledge). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * Open the signalling connection and authenticate (`hello` → `ready`). The token may be a
   * function, called again whenever the SDK needs a fresh session, so short-lived tokens work.
   * Rejects with a SignallingError: CLIENT_TERMINAL_CLOSE (with `closeCode`, e.g. 1008 for a bad
   * token) or CLIENT_CONNECT_FAILED. The first connect is not retried.
   *
   * A cluster (docs/cluster.md) may be given as several entry URLs (or one behind DNS / a load
   * balancer): the first is used to connect; when reconnecting fails (the node died) the SDK tries
   * the others in turn. A join for a room on another node is followed there on its own.
   */
  async connect(url: string | readonly string[], token: TokenSource): Promise<SessionInfo> {
    if (this.#state !== 'disconnected' && this.#state !== 'failed') {
      throw new SignallingError('INVALID_ARGUMENT', { detail: `connect() while ${this.#state}` });
    }
    const entries = typeof url === 'string' ? [url] : [...url];
    if (entries.length === 0) throw new SignallingError('INVALID_ARGUMENT', { detail: 'connect() needs at least one URL' });
    this.#entries = entries;
    this.#url = entries[0];
    this.#token = token;
    const epoch = ++this.#epoch;
    this.#setState('connecting');
    try {
      await this.#openSocket();
      await this.#hello();
    } catch (error) {
      if (epoch === this.#epoch) {
        this.#dropSocket(1000, 'connect failed');
        this.#setState(isTerminal(error) ? 'failed' : 'disconnected');
      }
      throw error;
    }
    if (epoch !== this.#epoch) throw new SignallingError('CLIENT_CONNECTION_CLOSED', { sentence: 'client:disconnected', detail: 'disconnect() called during connect()' });
    this.#setState('connected');
    return this.session!;
  }

  /**
   * Join a room; resolves with the room's state once the server confirmed (`joined`). On a
   * cluster, a room that lives on another node is followed there (the server's `redirect`): the
   * client's session moves to that node, so all rooms of one VoxClient live on one node.
   */
  async join(room: string, options: JoinOptions = {}): Promise<RoomState> {
    this.#joinOptions.set(room, options);
    try {
      await this.#joinRouted(room, options, false);
    } catch (error) {
      // The move to the room's node failed half way (that node is unreachable): get a connection back.
      if (this.#state === 'connected' && this.#socket === null) void this.#reconnectLoop('room owner unreachable');
      throw error;
    } finally {
      this.#joinOptions.delete(room);
    }
    const state = this.#rooms.get(room);
    if (!state) throw new SignallingError('CLIENT_PROTOCOL_ERROR', { detail: `joined ${room} but the room is not in the model` });
    return state;
  }

  async leave(room: string): Promise<void> {
    await this.#request({ op: 'leave', room }, false);
  }

  /** Mute yourself, or (with the `admin` grant) someone else. */
  async mute(room: string, participantId?: string): Promise<void> {
    await this.#request({ op: 'mute', room, participantId }, false);
  }

  async unmute(room: string): Promise<void> {
    await this.#request({ op: 'unmute', room }, false);
  }

  /**
   * Start or stop recording the room (needs the `record` grant; docs/recording.md). Resolves with
   * the recording's id (start) or null (stop); rejects with serverCode FORBIDDEN or MEDIA_FAILED.
   */
  async record(room: string, action: 'start' | 'stop'): Promise<string | null> {
    const reply = await this.#request({ op: 'record', room, action }, false);
    return reply.op === 'recording' && reply.recording ? (reply.id ?? null) : null;
  }

  /**
   * Send a media-plane message (offer/answer/candidate…), or in p2p/auto rooms a `peer` message for
   * the other participant (the media client sends both). The media plane answers asynchronously
   * with `media` events (not a reply to this ref), so this does not wait; a failure comes back as an
   * `error` event (serverCode MEDIA_FAILED / MEDIA_UNAVAILABLE). Throws CLIENT_NOT_CONNECTED.
   */
  sendMedia(message: WithoutRef<Extract<ClientMessage, { op: 'media' | 'peer' }>>): void {
    if (this.#state !== 'connected' && this.#state !== 'resumed') {
      throw new SignallingError('CLIENT_NOT_CONNECTED', { detail: `cannot send media: client is ${this.#state}` });
    }
    this.#send({ ...message, ref: this.#nextRef++ });
  }

  /**
   * Present a newer token for the same user before the current one expires (`refresh`,
   * docs/protocol.md "Token expiry"). Without an argument the token function given to `connect`
   * is called. The session keeps its rooms and now ends at the new token's expiry; reconnects use
   * the new token too. Resolves with the new expiry (ms since the epoch); rejects with serverCode
   * TOKEN_REJECTED (bad or expired token, another user) — the current token then stays in force.
   * When `connect` was given a function, the SDK does this by itself shortly before expiry.
   */
  async refreshToken(token?: string): Promise<number> {
    const source = this.#token;
    const next = token ?? (typeof source === 'function' ? await source() : undefined);
    if (next === undefined) throw new SignallingError('INVALID_ARGUMENT', { detail: 'refreshToken() needs a token (connect() was given a fixed string)' });
    const reply = await this.#request({ op: 'refresh', token: next }, false);
    if (reply.op !== 'refreshed') throw new SignallingError('CLIENT_PROTOCOL_ERROR', { detail: `expected refreshed, got ${reply.op}` });
    if (typeof this.#token === 'string') this.#token = next;
    if (this.#session) this.#session.tokenExpiresAt = reply.tokenExpiresAt;
    this.#scheduleRefresh();
    return reply.tokenExpiresAt;
  }

  /** Close the session for good (close code 1000): the server removes us from our rooms. Idempotent. */
  async disconnect(): Promise<void> {
    this.#cancelRefresh();
    this.#epoch++;
    this.#cancelSleep();
    const closed = new SignallingError('CLIENT_CONNECTION_CLOSED', { sentence: 'client:disconnected', detail: 'disconnect() called' });
    this.#handshake?.reject(closed);
    this.#handshake = null;
    this.#dropSocket(1000, 'client disconnect', closed);
    this.#session = null;
    this.#rooms.clear();
    this.#staleRooms.clear();
    if (this.#state !== 'disconnected') this.#setState('disconnected');
  }

  // -----------------------------------------------------------------------------------------
  // Connection and session

  #setState(next: ConnectionState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.#log?.debug({ state: next, previous }, 'signalling state');
    this.emit('state', next, previous);
  }

  /** Opens a socket and resolves once it is open; its close (or `#dropSocket`) before that rejects. */
  #openSocket(): Promise<void> {
    return new Promise((resolve, reject) => {
      let ws: WebSocketLike;
      try {
        ws = new this.#WebSocket(this.#url, SUBPROTOCOL);
      } catch (error) {
        reject(new SignallingError('CLIENT_CONNECT_FAILED', { detail: `cannot open ${this.#url}`, cause: error }));
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.#socket = ws;
      const settle = (error: SignallingError | null) => {
        clearTimeout(timer);
        if (this.#abortOpen === abort) this.#abortOpen = null;
        if (error) reject(error);
        else resolve();
      };
      const abort = (error: SignallingError) => settle(error);
      this.#abortOpen = abort;
      const timer = setTimeout(() => {
        const error = new SignallingError('CLIENT_CONNECT_FAILED', { detail: `timed out opening ${this.#url}` });
        if (this.#socket === ws) this.#dropSocket(4000, 'open timeout', error);
        settle(error);
      }, this.#connectTimeoutMs);
      ws.onerror = () => {
        // The close event follows with the code; nothing to do here.
      };
      ws.onmessage = (event) => this.#onFrame(ws, event.data);
      ws.onclose = (event) => {
        if (this.#socket === ws) this.#socket = null;
        settle(closeError('CLIENT_CONNECT_FAILED', event.code, event.reason, `connecting to ${this.#url}`));
      };
      ws.onopen = () => {
        ws.onclose = (event) => this.#onSocketClosed(ws, event.code, event.reason);
        settle(null);
      };
    });
  }

  /** `hello` → `ready` on the open socket: a fresh session (seq restarts at 1). */
  async #hello(): Promise<void> {
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    this.#lastSeq = 0;
    const outcome = await this.#runHandshake({
      op: 'hello',
      token,
      client: this.#clientInfo,
      protocol: PROTOCOL_VERSION,
    });
    if (outcome.kind !== 'ready') throw new SignallingError('CLIENT_PROTOCOL_ERROR', { detail: `expected ready, got ${outcome.kind}` });
    const m = outcome.message;
    this.#session = {
      sessionId: m.sessionId,
      resumeToken: m.resumeToken,
      userId: m.userId,
      name: m.name,
      heartbeatIntervalMs: m.heartbeatIntervalMs,
      resumeGraceMs: m.resumeGraceMs,
      iceServers: m.iceServers,
      server: m.server,
      ...(m.tokenExpiresAt === undefined ? {} : { tokenExpiresAt: m.tokenExpiresAt }),
    };
    this.#startHeartbeat();
    this.#scheduleRefresh();
  }

  /**
   * With a token function, refresh when four fifths of the token's remaining life have passed (at
   * most a minute before expiry), so the server never ends the session for an expired token.
   */
  #scheduleRefresh(): void {
    this.#cancelRefresh();
    const expiresAt = this.#session?.tokenExpiresAt;
    if (typeof this.#token !== 'function' || expiresAt === undefined) return;
    const remaining = expiresAt - Date.now();
    const delay = Math.max(1000, Math.max(remaining * 0.8, remaining - 60_000));
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = null;
      if (this.#state !== 'connected' && this.#state !== 'resumed') return;
      this.refreshToken().catch((err: unknown) => {
        this.#log?.warn({ err: String(err) }, 'token refresh failed; the session ends when the current token expires');
        this.emit('error', err instanceof SignallingError ? err : new SignallingError('CLIENT_REQUEST_FAILED', { detail: `refresh: ${String(err)}`, cause: err }));
      });
    }, Math.min(delay, 2 ** 31 - 1));
    (this.#refreshTimer as { unref?: () => void }).unref?.();
  }

  #cancelRefresh(): void {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
  }

  #runHandshake(message: ClientRequest): Promise<HandshakeOutcome> {
    return new Promise<HandshakeOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#handshake = null;
        reject(new SignallingError('TIMEOUT', { detail: `no reply to ${message.op} within ${this.#connectTimeoutMs} ms` }));
        this.#dropSocket(4000, `${message.op} timeout`);
      }, this.#connectTimeoutMs);
      this.#handshake = {
        resolve: (outcome) => {
          clearTimeout(timer);
          this.#handshake = null;
          resolve(outcome);
        },
        reject: (error) => {
          clearTimeout(timer);
          this.#handshake = null;
          reject(error);
        },
      };
      try {
        this.#send({ ...message, ref: this.#nextRef++ } as ClientMessage);
      } catch (error) {
        this.#handshake.reject(error as SignallingError);
      }
    });
  }

  #onSocketClosed(ws: WebSocketLike, code: number, reason: string): void {
    if (this.#socket !== ws) return;
    this.#socket = null;
    this.#stopHeartbeat();
    const error = closeError('CLIENT_CONNECTION_CLOSED', code, reason, 'signalling');
    this.#rejectPending(error);
    this.#log?.debug({ code, reason }, 'signalling socket closed');
    if (this.#handshake) {
      // connect() or the reconnect loop is waiting and decides what happens next.
      this.#handshake.reject(error);
      return;
    }
    if (this.#state !== 'connected' && this.#state !== 'resumed') return;
    if (!isResumableClose(code)) {
      // 1000 from the server ends the session on purpose; other terminal codes are failures to report.
      if (code === 1000) this.#fail(null, 'disconnected');
      else this.#fail(error, 'failed');
      return;
    }
    void this.#reconnectLoop(describeClose(code, reason));
  }

  /** Ends the session locally: emits the error (if any), clears the model, sets the final state. */
  #fail(error: SignallingError | null, state: 'failed' | 'disconnected'): void {
    this.#cancelRefresh();
    this.#epoch++;
    this.#dropSocket(1000, 'giving up', error ?? undefined);
    this.#session = null;
    this.#rooms.clear();
    this.#staleRooms.clear();
    this.#setState(state);
    if (error) this.emit('error', error);
  }

  async #reconnectLoop(firstReason: string): Promise<void> {
    const epoch = ++this.#epoch;
    this.#setState('reconnecting');
    const since = Date.now();
    let reason = firstReason;
    for (let retryCount = 0; ; retryCount++) {
      const delay = this.#policy.nextRetryDelayMs({ retryCount, elapsedMs: Date.now() - since, reason, url: this.#url });
      if (delay === null) {
        this.#fail(
          new SignallingError('CLIENT_RECONNECT_FAILED', { detail: `gave up reconnecting after ${retryCount} attempts (last: ${reason})` }),
          'failed',
        );
        return;
      }
      await this.#sleep(delay);
      if (epoch !== this.#epoch) return;
      try {
        await this.#openSocket();
        if (epoch !== this.#epoch) return;
        const resumed = await this.#resumeOrRenew();
        if (epoch !== this.#epoch) return;
        await this.#rejoinStaleRooms();
        if (epoch !== this.#epoch) return;
        this.#setState(resumed ? 'resumed' : 'connected');
        return;
      } catch (error) {
        if (epoch !== this.#epoch) return;
        this.#dropSocket(4000, 'reconnect attempt failed');
        // Next attempt on the next entry URL: the node we were on may be gone for good (a cluster).
        if (this.#entries.length > 0) this.#url = this.#entries[(this.#entries.indexOf(this.#url) + 1) % this.#entries.length];
        if (isTerminal(error)) {
          this.#fail(error as SignallingError, 'failed');
          return;
        }
        reason = error instanceof SignallingError ? error.detail : error instanceof Error ? error.message : String(error);
        this.#log?.debug({ retryCount, reason }, 'reconnect attempt failed');
      }
    }
  }

  /**
   * On the freshly opened socket: `resume` the session (replayed events arrive first and go
   * through the normal seq-checked path, so each is applied once, in order), or — when the
   * server answers `invalid_session` — open a fresh session with `hello`. Returns whether the
   * old session was resumed.
   */
  async #resumeOrRenew(): Promise<boolean> {
    if (this.#session) {
      const outcome = await this.#runHandshake({
        op: 'resume',
        sessionId: this.#session.sessionId,
        resumeToken: this.#session.resumeToken,
        lastSeq: this.#lastSeq,
      });
      if (outcome.kind === 'resumed') {
        if (outcome.iceServers !== undefined && this.#session) {
          // Minted at resume time: `ready`'s TURN credentials may have expired (turn.ttlSec).
          this.#session = { ...this.#session, iceServers: outcome.iceServers };
          this.emit('ice_servers', outcome.iceServers);
        }
        this.#startHeartbeat();
        const onServer = new Set(outcome.rooms);
        for (const id of this.#rooms.keys()) if (!onServer.has(id)) this.#staleRooms.add(id);
        for (const [id, room] of this.#rooms) if (!this.#staleRooms.has(id)) this.emit('room', { room, reason: 'resumed' });
        return true;
      }
      this.#log?.debug({ reason: outcome.kind === 'invalid' ? outcome.reason : outcome.kind }, 'session not resumable; re-joining');
      this.#abandonSession();
      // The server may keep the socket for a fresh hello or close it; a close lands in the catch of the loop.
      if (!this.#socket || this.#socket.readyState !== WS_OPEN) {
        throw new SignallingError('CLIENT_CONNECTION_CLOSED', { detail: 'socket closed after invalid_session' });
      }
    }
    await this.#hello();
    return false;
  }

  /** Re-join every room the new session is not in, so the app's room model matches the server again. */
  async #rejoinStaleRooms(): Promise<void> {
    for (const id of [...this.#staleRooms]) {
      const room = this.#rooms.get(id);
      if (!room) {
        this.#staleRooms.delete(id);
        continue;
      }
      const options: JoinOptions = { ...room.joinOptions, muted: room.self?.muted ?? room.joinOptions.muted };
      try {
        this.#joinOptions.set(id, options);
        await this.#joinRouted(id, options, true);
        this.#staleRooms.delete(id);
      } catch (error) {
        const e = error as SignallingError;
        // Connection trouble, or a placement the cluster cannot make yet: the loop retries.
        if ((e.serverCode === undefined && e.code !== 'INVALID_ARGUMENT') || e.serverCode === 'CLUSTER_UNAVAILABLE') throw e;
        // The server refused (room full, grant gone…): the room is gone for this client.
        this.#staleRooms.delete(id);
        this.#removeRoom(room);
        this.emit('error', e);
      } finally {
        this.#joinOptions.delete(id);
      }
    }
  }

  /**
   * `join`, following `redirect`s to the room's node (at most two hops): the session moves there
   * (a new socket and `hello` first, then the old socket closes) and the join is sent again with
   * the ticket, which the owner admits without asking the cluster registry.
   */
  async #joinRouted(room: string, options: JoinOptions, duringReconnect: boolean): Promise<void> {
    let ticket = this.#tickets.get(room);
    this.#tickets.delete(room);
    for (let hop = 0; ; hop++) {
      const reply = await this.#request({ op: 'join', room, options: ticket === undefined ? options : { ...options, ticket } }, duringReconnect);
      if (reply.op !== 'redirect') return;
      if (hop >= 2) throw new SignallingError('CLIENT_PROTOCOL_ERROR', { detail: `join ${room}: redirected more than twice` });
      const elsewhere = [...this.#rooms.keys()].filter((id) => id !== room && !this.#staleRooms.has(id));
      if (elsewhere.length > 0) {
        throw new SignallingError('INVALID_ARGUMENT', {
          detail: `room ${room} lives on another cluster node than ${elsewhere.join(', ')}: use one VoxClient per room on a cluster`,
        });
      }
      this.#log?.debug({ room, url: reply.url }, 'room lives on another node; moving there');
      (await this.#moveTo(reply.url))();
      ticket = reply.ticket;
    }
  }

  /**
   * Make-before-break move of the session: the new node's socket and `hello` first; the old
   * socket is closed (1000) by the returned function, or at once when the move fails.
   */
  async #moveTo(url: string): Promise<() => void> {
    const old = this.#socket;
    this.#stopHeartbeat();
    if (old) {
      old.onmessage = null;
      old.onclose = null;
      old.onerror = () => {};
    }
    this.#socket = null;
    this.#url = url;
    const closeOld = (): void => {
      try {
        old?.close(1000, 'moved to the room owner node');
      } catch {
        // Already closed.
      }
    };
    try {
      await this.#openSocket();
      await this.#hello();
    } catch (error) {
      closeOld();
      throw error;
    }
    return closeOld;
  }

  /** Unsolicited `redirect` (reason moving): this node is shutting down; every room re-joins on the new node. */
  async #followMove(url: string): Promise<void> {
    if (this.#moving) return;
    this.#moving = true;
    const epoch = ++this.#epoch;
    this.#setState('reconnecting');
    try {
      this.#abandonSession();
      const closeOld = await this.#moveTo(url);
      try {
        if (epoch !== this.#epoch) return;
        // The old node keeps serving (and forwarding) until the rooms are joined on the new one.
        await this.#rejoinStaleRooms();
      } finally {
        closeOld();
      }
      if (epoch !== this.#epoch) return;
      this.#setState('connected');
    } catch (error) {
      if (epoch !== this.#epoch) return;
      this.#log?.debug({ err: String(error) }, 'moving to the new node failed; reconnecting');
      this.#dropSocket(4000, 'move failed');
      void this.#reconnectLoop('room moved and the new node was unreachable');
    } finally {
      this.#moving = false;
    }
  }

  /** The server no longer has (or we no longer trust) this session: next attempt says hello and re-joins. */
  #abandonSession(): void {
    this.#session = null;
    for (const id of this.#rooms.keys()) this.#staleRooms.add(id);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeSleeper = resolve;
      this.#sleepTimer = setTimeout(() => {
        this.#sleepTimer = null;
        this.#wakeSleeper = null;
        resolve();
      }, ms);
    });
  }

  #cancelSleep(): void {
    if (this.#sleepTimer) clearTimeout(this.#sleepTimer);
    this.#sleepTimer = null;
    this.#wakeSleeper?.();
    this.#wakeSleeper = null;
  }

  /** Detach and close the current socket without triggering the reconnect path. */
  #dropSocket(code: number, reason: string, pendingError?: SignallingError): void {
    this.#stopHeartbeat();
    const ws = this.#socket;
    this.#socket = null;
    const error = pendingError ?? new SignallingError('CLIENT_CONNECTION_CLOSED', { detail: `signalling connection closed: ${reason}` });
    this.#rejectPending(error);
    this.#abortOpen?.(error);
    if (!ws) return;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = () => {};
    try {
      // Browsers only accept 1000 or 3000–4999 from a client.
      ws.close(code, reason);
    } catch {
      // Already closing or never opened; the socket is detached either way.
    }
  }

  // -----------------------------------------------------------------------------------------
  // Heartbeats: at the server's interval, carrying the ack of the last seq applied; the server's
  // heartbeat_ack (or any other frame) proves the connection alive.

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    const interval = this.#session?.heartbeatIntervalMs;
    if (!interval) return;
    this.#missedHeartbeats = 0;
    this.#awaitingAck = false;
    this.#heartbeatTimer = setInterval(() => this.#heartbeatTick(), interval);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
  }

  #heartbeatTick(): void {
    const ws = this.#socket;
    if (!ws) return;
    if (this.#awaitingAck && ++this.#missedHeartbeats >= this.#maxMissed) {
      // Half-open TCP (NAT timeout, sleeping laptop): the socket may never report a close.
      this.#log?.debug({ missed: this.#missedHeartbeats }, 'heartbeats unanswered; connection presumed dead');
      ws.onclose = null;
      this.#onSocketClosedLocally(ws, 4000, 'heartbeat timeout (client side)');
      return;
    }
    this.#awaitingAck = true;
    try {
      this.#send({ op: 'heartbeat', ack: this.#lastSeq, ref: this.#nextRef++ });
    } catch {
      // Not open any more; the close event handles it.
    }
  }

  #onSocketClosedLocally(ws: WebSocketLike, code: number, reason: string): void {
    try {
      // A close handshake cannot complete on a dead connection; `ws` (Node) can drop the TCP
      // socket at once instead of waiting 30 s for the peer's close frame. Browsers have only close().
      const terminate = (ws as { terminate?: () => void }).terminate;
      if (typeof terminate === 'function') terminate.call(ws);
      else ws.close(code, reason);
    } catch {
      // Closing a dead socket may throw in some implementations; it is abandoned anyway.
    }
    this.#onSocketClosed(ws, code, reason);
  }

  // -----------------------------------------------------------------------------------------
  // Requests: numbered refs, a map of pending promises, all rejected when the connection closes.

  #send(message: ClientMessage): void {
    const ws = this.#socket;
    if (!ws || ws.readyState !== WS_OPEN) throw new SignallingError('CLIENT_NOT_CONNECTED', { detail: `cannot send ${message.op}: not connected` });
    ws.send(encodeMessage(message));
  }

  #request(message: ClientRequest, duringReconnect: boolean): Promise<ServerMessage> {
    const usable = this.#state === 'connected' || this.#state === 'resumed' || (duringReconnect && this.#session !== null);
    if (!usable) {
      return Promise.reject(new SignallingError('CLIENT_NOT_CONNECTED', { detail: `cannot ${message.op}: client is ${this.#state}` }));
    }
    const ref = this.#nextRef++;
    return new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new SignallingError('TIMEOUT', { detail: `no reply to ${message.op} within ${this.#requestTimeoutMs} ms` }));
      }, this.#requestTimeoutMs);
      this.#pending.set(ref, { op: message.op, resolve, reject, timer });
      try {
        this.#send({ ...message, ref } as ClientMessage);
      } catch (error) {
        clearTimeout(timer);
        this.#pending.delete(ref);
        reject(error);
      }
    });
  }

  #rejectPending(error: SignallingError): void {
    if (this.#pending.size === 0) return;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(error.forOperation(p.op));
    }
  }

  // -----------------------------------------------------------------------------------------
  // Inbound frames

  #onFrame(ws: WebSocketLike, data: unknown): void {
    if (this.#socket !== ws) return;
    this.#missedHeartbeats = 0;
    this.#awaitingAck = false;
    const bytes = toBytes(data);
    if (!bytes) {
      this.emit('error', new SignallingError('CLIENT_PROTOCOL_ERROR', { detail: 'non-binary frame from the server' }));
      return;
    }
    const decoded = decodeServerMessage(bytes);
    if (!decoded.ok) {
      this.emit('error', new SignallingError('CLIENT_PROTOCOL_ERROR', { detail: `bad server message: ${decoded.message}` }));
      return;
    }
    const message = decoded.message;
    if (message.seq !== undefined) {
      // Exactly once, in order: a replay may repeat what we already applied; a gap means the
      // stream is no longer trustworthy, so start a fresh session and re-join (as for invalid_session).
      if (message.seq <= this.#lastSeq) return;
      if (message.seq !== this.#lastSeq + 1) {
        this.#log?.warn({ expected: this.#lastSeq + 1, got: message.seq }, 'sequence gap; renewing the session');
        this.#abandonSession();
        this.#onSocketClosedLocally(ws, 4000, 'sequence gap');
        return;
      }
      this.#lastSeq = message.seq;
    }
    this.#apply(message);
  }

  #apply(message: ServerMessage): void {
    switch (message.op) {
      case 'ready':
        this.#handshake?.resolve({ kind: 'ready', message });
        return;
      case 'resumed':
        this.#handshake?.resolve({ kind: 'resumed', rooms: message.rooms, iceServers: message.iceServers });
        return;
      case 'invalid_session':
        if (this.#handshake) this.#handshake.resolve({ kind: 'invalid', reason: message.reason });
        return;
      case 'heartbeat_ack':
        return;
      case 'refreshed':
        break;
      case 'joined':
        this.#onJoined(message);
        break;
      case 'left': {
        const room = this.#rooms.get(message.room);
        if (room) this.#removeRoom(room);
        break;
      }
      case 'participant_joined': {
        const room = this.#rooms.get(message.room);
        if (room) {
          room.participants.set(message.participant.participantId, message.participant);
          this.emit('participant_joined', { room: room.id, participant: message.participant });
        }
        break;
      }
      case 'participant_left': {
        const room = this.#rooms.get(message.room);
        if (!room) break;
        if (message.participantId === room.participantId) {
          // We were removed (kicked, replaced by a newer connection of the same user, removed by an admin, room ended).
          this.#removeRoom(room, message.reason);
          break;
        }
        if (room.participants.delete(message.participantId)) {
          this.emit('participant_left', { room: room.id, participantId: message.participantId, reason: message.reason });
        }
        break;
      }
      case 'participant_updated': {
        const room = this.#rooms.get(message.room);
        if (room) {
          const previous = room.participants.get(message.participant.participantId);
          room.participants.set(message.participant.participantId, message.participant);
          // mute_ack may already have applied our own change; report each change once.
          if (!previous || participantChanged(previous, message.participant)) {
            this.emit('participant_updated', { room: room.id, participant: message.participant, previous });
          }
        }
        break;
      }
      case 'mute_ack': {
        const room = this.#rooms.get(message.room);
        const p = room?.participants.get(message.participantId);
        if (room && p && p.muted !== message.muted) {
          const updated = { ...p, muted: message.muted };
          room.participants.set(p.participantId, updated);
          this.emit('participant_updated', { room: room.id, participant: updated, previous: p });
        }
        break;
      }
      case 'speaking': {
        const room = this.#rooms.get(message.room);
        const p = room?.participants.get(message.participantId);
        if (room && p && p.speaking !== message.speaking) room.participants.set(p.participantId, { ...p, speaking: message.speaking });
        this.emit('speaking', { room: message.room, participantId: message.participantId, speaking: message.speaking, level: message.level });
        this.emit('media', message);
        break;
      }
      case 'slots': {
        const room = this.#rooms.get(message.room);
        if (room) room.slots = message.slots;
        this.emit('slots', { room: message.room, slots: message.slots });
        this.emit('media', message);
        break;
      }
      case 'media':
      case 'media_reconnect':
      case 'peer':
      case 'transport':
        this.emit('media', message);
        break;
      case 'recording': {
        const room = this.#rooms.get(message.room);
        const recording =
          message.recording && message.id !== undefined
            ? { id: message.id, startedBy: message.by ?? '', startedAt: message.startedAt ?? Date.now() }
            : null;
        if (room) room.recording = recording;
        this.emit('recording', { room: message.room, recording, by: message.by });
        break;
      }
      case 'redirect':
        if (message.ref === undefined && this.#rooms.has(message.room)) {
          this.#tickets.set(message.room, message.ticket);
          void this.#followMove(message.url);
        }
        break;
      case 'transcript':
        this.emit('transcript', { room: message.room, recordingId: message.recordingId, tracks: message.tracks, words: message.words, failed: message.failed });
        break;
      case 'room_metadata': {
        const room = this.#rooms.get(message.room);
        if (room) {
          room.metadata = message.metadata;
          this.emit('room_metadata', { room: room.id, metadata: message.metadata });
        }
        break;
      }
      case 'error': {
        const error = new SignallingError('CLIENT_REQUEST_FAILED', {
          serverCode: message.code,
          detail: `${message.about ?? 'request'}: ${message.code}: ${message.message}`,
        });
        const pending = message.ref === undefined ? undefined : this.#pending.get(message.ref);
        if (pending) {
          this.#pending.delete(message.ref!);
          clearTimeout(pending.timer);
          pending.reject(error);
        } else {
          this.emit('error', error);
        }
        return;
      }
    }
    // Resolve after the model is updated, so `await client.join()` sees the room.
    if (message.ref !== undefined) {
      const pending = this.#pending.get(message.ref);
      if (pending) {
        this.#pending.delete(message.ref);
        clearTimeout(pending.timer);
        pending.resolve(message);
      }
    }
  }

  #onJoined(message: JoinedMessage): void {
    const existing = this.#rooms.get(message.room);
    if (!existing) {
      const room = new LocalRoom(message.room, message.mode, message.participantId, this.#joinOptions.get(message.room) ?? {});
      room.replaceParticipants(message.participants);
      room.recording = message.recording ?? null;
      room.metadata = message.metadata ?? '';
      this.#rooms.set(room.id, room);
      this.emit('room', { room, reason: 'joined' });
      return;
    }
    // A re-join on a fresh session: reconcile, then tell listeners what changed while we were away.
    const before = new Map(existing.participants);
    const oldSelf = existing.participantId;
    existing.mode = message.mode;
    const wasRecording = existing.recording;
    existing.recording = message.recording ?? null;
    existing.participantId = message.participantId;
    const oldMetadata = existing.metadata;
    existing.metadata = message.metadata ?? '';
    existing.replaceParticipants(message.participants);
    for (const id of before.keys()) {
      if (id !== oldSelf && id !== message.participantId && !existing.participants.has(id)) {
        this.emit('participant_left', { room: existing.id, participantId: id, reason: 'disconnected' });
      }
    }
    for (const participant of message.participants) {
      if (participant.participantId === message.participantId) continue;
      const previous = before.get(participant.participantId);
      if (!previous) this.emit('participant_joined', { room: existing.id, participant });
      else if (participantChanged(previous, participant)) this.emit('participant_updated', { room: existing.id, participant, previous });
    }
    if (wasRecording?.id !== existing.recording?.id) {
      this.emit('recording', { room: existing.id, recording: existing.recording, by: existing.recording?.startedBy });
    }
    if (oldMetadata !== existing.metadata) this.emit('room_metadata', { room: existing.id, metadata: existing.metadata });
    this.emit('room', { room: existing, reason: 'rejoined' });
  }

  #removeRoom(room: LocalRoom, leftReason?: ParticipantLeftMessage['reason']): void {
    this.#rooms.delete(room.id);
    this.#staleRooms.delete(room.id);
    this.emit('room', { room, reason: 'left', ...(leftReason === undefined ? {} : { leftReason }) });
  }
}

function closeError(code: 'CLIENT_CONNECT_FAILED' | 'CLIENT_CONNECTION_CLOSED', closeCode: number, reason: string, what: string): SignallingError {
  const detail = `${what}: closed ${describeClose(closeCode, reason)}`;
  const terminal = !isResumableClose(closeCode);
  // A first connect that never got a close frame (1006: nothing listening, DNS, TLS) is "could not reach".
  if (!terminal && code === 'CLIENT_CONNECT_FAILED' && closeCodeInfo(closeCode) === undefined) {
    return new SignallingError(code, { sentence: 'CLIENT_CONNECT_FAILED', closeCode, closeReason: reason, detail });
  }
  return new SignallingError(terminal ? 'CLIENT_TERMINAL_CLOSE' : code, { closeCode, closeReason: reason, detail });
}

function isTerminal(error: unknown): boolean {
  return error instanceof SignallingError && error.code === 'CLIENT_TERMINAL_CLOSE';
}
