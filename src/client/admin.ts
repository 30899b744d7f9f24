import { VoxError, type VoxErrorCode } from '../errors.ts';
import type { ParticipantInfo, RecordingInfo, RoomMode } from '../protocol/index.ts';

/**
 * A typed client of the admin API (docs/api.md) for servers and scripts: `voxlink/admin`. It uses
 * the global `fetch` (Node 20, browsers, Deno) and needs a token with the `admin` grant for the
 * rooms it acts on (`*` for all of them); mint one on your backend with `voxlink/auth`.
 *
 *   const admin = new AdminClient({ url: 'https://voice.example.com', token });
 *   for (const room of await admin.listRooms()) console.log(room.room, room.participants);
 *   await admin.removeParticipant('standup', { userId: 'mallory' });
 */

export interface AdminClusterRoom {
  room: string;
  /** The owner node's id. */
  node: string;
  participants: number;
  mode?: string;
  recording?: boolean;
}

export interface AdminRoom {
  room: string;
  mode: RoomMode;
  /** How many participants are in it now. */
  participants: number;
  /** The running recording, or null. */
  recording: RecordingInfo | null;
  /** The room's metadata ('' when none was set). */
  metadata: string;
}

/** Who to act on: a participant id from ListParticipants, or the identity (token `sub`). */
export type AdminTarget = { participantId: string } | { userId: string };

export interface AdminClientOptions {
  /** The server's base URL, e.g. `https://voice.example.com` (http(s); `/admin/v1/…` is appended). */
  url: string;
  /** A token with the admin grant; or a function returning one (called per request, e.g. to re-mint). */
  token: string | (() => string | Promise<string>);
  /** Per request, ms (default 10000). */
  timeoutMs?: number;
  /** Another fetch (tests, proxies); default the global one. */
  fetch?: typeof fetch;
}

/**
 * A failed admin call. `code` is the SDK's: AUTH_FAILED (401), CLIENT_CONNECT_FAILED (no answer),
 * TIMEOUT, CLIENT_REQUEST_FAILED (any other refusal). `status` is the HTTP status (0 without an
 * answer) and `serverCode` the server's `error` (FORBIDDEN, ROOM_NOT_FOUND, INVALID_REQUEST, …).
 */
export class AdminApiError extends VoxError {
  readonly status: number;
  readonly serverCode: string | undefined;
  readonly method: string;

  constructor(code: VoxErrorCode, method: string, status: number, serverCode: string | undefined, message: string, cause?: unknown) {
    super(code, `${method}: ${message}`, cause === undefined ? undefined : { cause });
    this.status = status;
    this.serverCode = serverCode;
    this.method = method;
  }
}

export class AdminClient {
  readonly #base: string;
  readonly #token: AdminClientOptions['token'];
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: AdminClientOptions) {
    const base = new URL(options.url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new VoxError('INVALID_ARGUMENT', `admin url must be http(s)://…, got ${base.protocol}`);
    }
    this.#base = base.origin + base.pathname.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  /** The rooms this token administers that have someone in them. */
  async listRooms(): Promise<AdminRoom[]> {
    return (await this.#call<{ rooms: AdminRoom[] }>('ListRooms', {})).rooms;
  }

  /**
   * Every room of every node of a cluster this token administers (docs/cluster.md), with the
   * node that owns it; on a single node its own rooms with node "local".
   */
  async listClusterRooms(): Promise<AdminClusterRoom[]> {
    return (await this.#call<{ rooms: AdminClusterRoom[] }>('ListClusterRooms', {})).rooms;
  }

  async listParticipants(room: string): Promise<ParticipantInfo[]> {
    return (await this.#call<{ participants: ParticipantInfo[] }>('ListParticipants', { room })).participants;
  }

  /** Takes the participant out of the room (it and the room hear `removed`); returns its participant id. */
  async removeParticipant(room: string, target: AdminTarget): Promise<string> {
    return (await this.#call<{ participantId: string }>('RemoveParticipant', { room, ...target })).participantId;
  }

  /** Server-side mute of the participant's audio; returns the participant as the room now sees it. */
  async muteParticipant(room: string, target: AdminTarget): Promise<ParticipantInfo> {
    return (await this.#call<{ participant: ParticipantInfo }>('MuteParticipant', { room, ...target })).participant;
  }

  /** Everyone out, the room and its recording closed; returns how many were removed. */
  async endRoom(room: string): Promise<number> {
    return (await this.#call<{ removed: number }>('EndRoom', { room })).removed;
  }

  /** New room metadata (at most 4096 UTF-8 bytes; '' clears it), told to everyone in the room. */
  async updateRoomMetadata(room: string, metadata: string): Promise<AdminRoom> {
    return (await this.#call<{ room: AdminRoom }>('UpdateRoomMetadata', { room, metadata })).room;
  }

  async #call<T>(method: string, body: object): Promise<T> {
    const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    let response: Response;
    try {
      response = await this.#fetch(`${this.#base}/admin/v1/${method}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      throw new AdminApiError(
        timedOut ? 'TIMEOUT' : 'CLIENT_CONNECT_FAILED',
        method,
        0,
        undefined,
        timedOut ? `no answer within ${this.#timeoutMs} ms` : `could not reach ${this.#base}: ${(err as Error).message}`,
        err,
      );
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const error = json as { error?: string; message?: string } | undefined;
      throw new AdminApiError(
        response.status === 401 ? 'AUTH_FAILED' : 'CLIENT_REQUEST_FAILED',
        method,
        response.status,
        error?.error,
        error?.message ?? `HTTP ${response.status}`,
      );
    }
    if (json === undefined || typeof json !== 'object') {
      throw new AdminApiError('CLIENT_PROTOCOL_ERROR', method, response.status, undefined, 'the server answered with something other than JSON');
    }
    return json as T;
  }
}
