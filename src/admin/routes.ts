import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { z } from 'zod';
import type { AuthKeys } from '../auth/keys.ts';
import { grantsForRoom, verifyToken, type Identity } from '../auth/tokens.ts';
import { isVoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { signallingMetrics } from '../metrics/registry.ts';
import { participantIdSchema, ROOM_METADATA_MAX_BYTES, roomIdSchema } from '../protocol/messages.ts';
import type { AdminMiss, RoomAdmin } from '../signalling/admin.ts';
import { bearer, sendJson } from '../signalling/http.ts';
import type { RouteInstaller } from '../signalling/server.ts';

const log = logger('admin');

/** Request bodies above this are refused with 413 before they are parsed. */
export const ADMIN_MAX_BODY_BYTES = 16 * 1024;

/** A participant by its participant id, or by its identity (the token's `sub`; one per room). */
const targetSchema = z.union([
  z.object({ room: roomIdSchema, participantId: participantIdSchema }).strict(),
  z.object({ room: roomIdSchema, userId: z.string().min(1).max(128) }).strict(),
]);

/** The admin API's methods and their request bodies (docs/api.md). */
export const adminRequestSchemas = {
  ListRooms: z.object({}).strict(),
  /** Every room of every node (cluster.redisUrl; docs/cluster.md): room, owner node, participants. */
  ListClusterRooms: z.object({}).strict(),
  ListParticipants: z.object({ room: roomIdSchema }).strict(),
  RemoveParticipant: targetSchema,
  MuteParticipant: targetSchema,
  EndRoom: z.object({ room: roomIdSchema }).strict(),
  UpdateRoomMetadata: z
    .object({
      room: roomIdSchema,
      metadata: z.string().refine((s) => Buffer.byteLength(s, 'utf8') <= ROOM_METADATA_MAX_BYTES, `at most ${ROOM_METADATA_MAX_BYTES} bytes (UTF-8)`),
    })
    .strict(),
} as const;

export type AdminMethod = keyof typeof adminRequestSchemas;
const methods = Object.keys(adminRequestSchemas) as AdminMethod[];

class HttpError extends Error {
  readonly status: string;
  readonly code: string;
  constructor(status: string, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const notFound = (what: AdminMiss, room: string, target?: string): HttpError =>
  new HttpError('404 Not Found', what, what === 'ROOM_NOT_FOUND' ? `no room "${room}" on this server` : `no participant "${target}" in room "${room}"`);

/**
 * The admin API (docs/api.md), for `startServer(config, { routes: [adminRoutes(keys)] })`:
 * `POST /admin/v1/<Method>` with a JSON body, answered with JSON. RPC style like LiveKit's
 * RoomService (Twirp): room ids may contain '/', so they travel in the body, not the path.
 * Every call needs `Authorization: Bearer <token>` whose grants hold `admin` for the room (a room
 * pattern like `team-*` or `*` scopes it); ListRooms lists only the rooms the token administers.
 * Every call is logged at info as `admin call` (who = the token's sub, method, room, target,
 * result), never the token.
 */
/** The cluster's room list (src/cluster/node.ts), for ListClusterRooms. */
export interface ClusterRoomLister {
  readonly id: string;
  listRooms(): Promise<{ room: string; node: string; participants: number; mode: string; recording: boolean }[]>;
}

export function adminRoutes(keys: AuthKeys, cluster?: ClusterRoomLister): RouteInstaller {
  return (app: TemplatedApp, { core }) => {
    app.post('/admin/v1/:method', (res, req) => {
      const method = req.getParameter(0) ?? '';
      const token = bearer(req);
      const aborted = { value: false };
      res.onAborted(() => {
        aborted.value = true;
      });
      readBody(res, ADMIN_MAX_BODY_BYTES).then(
        (body) => handle(core.admin, cluster, keys, method, token, body, res, aborted),
        (err: unknown) => {
          const e = err instanceof HttpError ? err : new HttpError('400 Bad Request', 'INVALID_REQUEST', 'could not read the request body');
          audit(undefined, method, undefined, undefined, e.code);
          sendJson(res, e.status, { error: e.code, message: e.message }, aborted);
        },
      );
    });
    app.any('/admin/v1/*', (res) => {
      sendJson(res, '405 Method Not Allowed', { error: 'METHOD_NOT_ALLOWED', message: 'the admin API takes POST /admin/v1/<Method> with a JSON body' });
    });
  };
}

async function handle(
  admin: RoomAdmin,
  cluster: ClusterRoomLister | undefined,
  keys: AuthKeys,
  method: string,
  token: string | undefined,
  body: Buffer,
  res: HttpResponse,
  aborted: { value: boolean },
): Promise<void> {
  let identity: Identity | undefined;
  let room: string | undefined;
  let target: string | undefined;
  try {
    if (!token) throw new HttpError('401 Unauthorized', 'AUTH_FAILED', 'Authorization: Bearer <token> with the admin grant required');
    try {
      identity = await verifyToken(token, keys.verify);
    } catch (err) {
      signallingMetrics.authFailures.inc({ reason: 'admin' });
      throw new HttpError('401 Unauthorized', 'AUTH_FAILED', isVoxError(err) ? err.message : 'token rejected');
    }
    if (!identity.rooms.some((entry) => entry.grants.includes('admin'))) {
      throw new HttpError('403 Forbidden', 'FORBIDDEN', 'the token has no admin grant');
    }
    if (!(methods as string[]).includes(method)) {
      throw new HttpError('404 Not Found', 'UNKNOWN_METHOD', `no admin method "${method}"; methods: ${methods.join(', ')}`);
    }
    let json: unknown;
    try {
      json = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError('400 Bad Request', 'INVALID_REQUEST', 'the body is not valid JSON');
    }
    const parsed = adminRequestSchemas[method as AdminMethod].safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new HttpError('400 Bad Request', 'INVALID_REQUEST', `${method}: ${where}${issue?.message ?? 'invalid body'}`);
    }
    const request = parsed.data as { room?: string; participantId?: string; userId?: string; metadata?: string };
    room = request.room;
    target = request.participantId ?? request.userId;
    const who = identity;
    if (room !== undefined && !grantsForRoom(who, room).has('admin')) {
      throw new HttpError('403 Forbidden', 'FORBIDDEN', `the token has no admin grant for room "${room}"`);
    }
    const visible = (id: string): boolean => grantsForRoom(who, id).has('admin');
    const result = method === 'ListClusterRooms' ? await clusterRooms(admin, cluster, visible) : run(admin, method as AdminMethod, request, visible);
    audit(identity.userId, method, room, target, 'ok');
    sendJson(res, '200 OK', result, aborted);
  } catch (err) {
    const e = err instanceof HttpError ? err : undefined;
    if (!e) log.error({ err, method }, 'admin call failed');
    audit(identity?.userId, method, room, target, e?.code ?? 'INTERNAL');
    sendJson(res, e?.status ?? '500 Internal Server Error', { error: e?.code ?? 'INTERNAL', message: e?.message ?? 'internal error' }, aborted);
  }
}

function run(
  admin: RoomAdmin,
  method: AdminMethod,
  request: { room?: string; participantId?: string; userId?: string; metadata?: string },
  visible: (roomId: string) => boolean,
): unknown {
  const room = request.room ?? '';
  const participantIdOf = (): string => {
    if (request.participantId !== undefined) return request.participantId;
    const found = admin.findByUser(room, request.userId ?? '');
    if (found === undefined) throw notFound(admin.hasRoom(room) ? 'PARTICIPANT_NOT_FOUND' : 'ROOM_NOT_FOUND', room, request.userId);
    return found;
  };
  const check = <T>(value: T | AdminMiss, target?: string): T => {
    if (value === 'ROOM_NOT_FOUND' || value === 'PARTICIPANT_NOT_FOUND') throw notFound(value as AdminMiss, room, target);
    return value as T;
  };
  switch (method) {
    case 'ListRooms':
      return { rooms: admin.listRooms(visible) };
    case 'ListClusterRooms':
      throw new Error('ListClusterRooms is answered by clusterRooms()');
    case 'ListParticipants':
      return { room, participants: check(admin.listParticipants(room)) };
    case 'RemoveParticipant': {
      const participantId = participantIdOf();
      check(admin.removeParticipant(room, participantId), participantId);
      return { room, participantId };
    }
    case 'MuteParticipant': {
      const participantId = participantIdOf();
      return { room, participant: check(admin.muteParticipant(room, participantId), participantId) };
    }
    case 'EndRoom':
      return { room, removed: check(admin.endRoom(room)) };
    case 'UpdateRoomMetadata':
      return { room: check(admin.updateRoomMetadata(room, request.metadata ?? '')) };
  }
}

/** ListClusterRooms: from Redis on a cluster node; on a single node its own rooms, node "local". */
async function clusterRooms(admin: RoomAdmin, cluster: ClusterRoomLister | undefined, visible: (roomId: string) => boolean): Promise<unknown> {
  if (!cluster) {
    return { rooms: admin.listRooms(visible).map((r) => ({ room: r.room, node: 'local', participants: r.participants })) };
  }
  let rooms;
  try {
    rooms = await cluster.listRooms();
  } catch {
    throw new HttpError('503 Service Unavailable', 'CLUSTER_UNAVAILABLE', 'the cluster registry (Redis) is unreachable');
  }
  return { node: cluster.id, rooms: rooms.filter((r) => visible(r.room)) };
}

/** The audit line of one admin call: who (token sub), what, on which room and participant, and how it ended. Never the token. */
function audit(who: string | undefined, method: string, room: string | undefined, target: string | undefined, result: string): void {
  log.info({ who: who ?? null, method: method.slice(0, 64), room, target, result }, 'admin call');
}

/** The request body, at most `limit` bytes (413 beyond, without reading the rest). */
function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    res.onData((chunk, isLast) => {
      if (refused) return;
      size += chunk.byteLength;
      if (size > limit) {
        refused = true;
        reject(new HttpError('413 Payload Too Large', 'BODY_TOO_LARGE', `request body larger than ${limit} bytes`));
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}
