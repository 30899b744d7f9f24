import { Redis, type RedisOptions } from 'ioredis';

/**
 * What the cluster keeps in Redis (docs/cluster.md "What Redis holds"), all under `voxlink:cluster:`:
 *
 *   node:<id>    string  JSON NodeInfo, PX nodeTtlMs, refreshed every heartbeatMs
 *   nodes        set     node ids (a listing index; ids whose node key expired are pruned)
 *   room:<room>  string  owner node id: the room's lease, PX leaseMs, renewed by the owner
 *   rooms:<id>   hash    room → JSON RoomSummary of the rooms open on node <id>, PX nodeTtlMs
 *   rec:<room>   string  JSON RoomRecording: the room records, on which node; PX 2 × leaseMs,
 *                        refreshed with the heartbeat, so it outlives a killed owner's lease
 *
 * Lease changes are Lua scripts, so "read the owner, then write" is one atomic step.
 */
export interface NodeInfo {
  id: string;
  /** Signalling URL clients are redirected to. */
  url: string;
  /** Participants on the node (what placement compares). */
  load: number;
  rooms: number;
  version: string;
  /** Shutting down: takes no new rooms. */
  draining: boolean;
  startedAt: number;
  updatedAt: number;
}

export interface RoomSummary {
  room: string;
  node: string;
  participants: number;
  mode: string;
  recording: boolean;
}

/**
 * A room's running recording as the cluster knows it, so the node the room moves to (SIGTERM
 * drain, kill -9 failover) starts recording again there (docs/cluster.md "Recording across a move").
 */
export interface RoomRecording {
  room: string;
  /** The node recording it now. */
  node: string;
  /** The recording running there. */
  id: string;
  startedAt: number;
  /** The first recording of the call, and this one's place in the chain (0 for the first). */
  first: string;
  part: number;
}

export function parseRoomRecording(raw: string | null): RoomRecording | undefined {
  if (raw === null) return undefined;
  try {
    const r = JSON.parse(raw) as RoomRecording;
    return typeof r.node === 'string' && typeof r.id === 'string' && typeof r.first === 'string' && typeof r.part === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}

const PREFIX = 'voxlink:cluster:';
export const keys = {
  node: (id: string) => `${PREFIX}node:${id}`,
  nodes: `${PREFIX}nodes`,
  room: (room: string) => `${PREFIX}room:${room}`,
  rooms: (node: string) => `${PREFIX}rooms:${node}`,
  recording: (room: string) => `${PREFIX}rec:${room}`,
};

/**
 * KEYS[1] room lease; ARGV candidate, lease ms, the dead owner it may replace ('' for none).
 * Claims a free room (or one whose owner is known dead) for the candidate; returns the owner after.
 */
const CLAIM = `
local owner = redis.call('GET', KEYS[1])
if (not owner) or (ARGV[3] ~= '' and owner == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner`;

/**
 * KEYS room leases; ARGV self, lease ms. Per room: 1 renewed, 2 re-claimed (the key was gone,
 * e.g. Redis restarted empty), or the other node's id that owns it now.
 */
const RENEW = `
local out = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = '1'
  elseif not owner then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = '2'
  else
    out[i] = owner
  end
end
return out`;

/** KEYS[1] lease; ARGV self, target, lease ms: hands an owned room to target. 1 done, 0 not ours. */
const TRANSFER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

/** KEYS[1] lease; ARGV self: deletes the lease only while it is ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** KEYS[1] rec:<room>; ARGV self: deletes the room's recording entry only while this node is recording it. */
const FORGET_RECORDING = `
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, rec = pcall(cjson.decode, raw)
  if ok and type(rec) == 'table' and rec.node == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
end
return 0`;

interface ClusterCommands {
  voxClaim(key: string, candidate: string, leaseMs: number, deadOwner: string): Promise<string>;
  voxRenew(numKeys: number, ...args: (string | number)[]): Promise<string[]>;
  voxTransfer(key: string, self: string, target: string, leaseMs: number): Promise<number>;
  voxRelease(key: string, self: string): Promise<number>;
  voxForgetRecording(key: string, self: string): Promise<number>;
}

export type ClusterRedis = Redis & ClusterCommands;

/** A MULTI with the lease release script queued on it (ioredis adds defined commands to pipelines too). */
export function releaseIn<M extends object>(multi: M, room: string, self: string): M {
  (multi as unknown as { voxRelease(key: string, self: string): unknown }).voxRelease(keys.room(room), self);
  return multi;
}

/** The same for a room's recording entry (FORGET_RECORDING). */
export function forgetRecordingIn<M extends object>(multi: M, room: string, self: string): M {
  (multi as unknown as { voxForgetRecording(key: string, self: string): unknown }).voxForgetRecording(keys.recording(room), self);
  return multi;
}

/**
 * A client that fails fast instead of queueing (enableOfflineQueue false, commandTimeout): during
 * an outage every call rejects at once and the caller decides (calls go on, new placements are
 * refused). ioredis reconnects by itself with the retry strategy below.
 */
export function openClusterRedis(url: string, options: RedisOptions = {}): ClusterRedis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(100 * times, 1000),
    connectionName: 'voxlink-cluster',
    ...options,
  });
  redis.defineCommand('voxClaim', { numberOfKeys: 1, lua: CLAIM });
  redis.defineCommand('voxRenew', { lua: RENEW });
  redis.defineCommand('voxTransfer', { numberOfKeys: 1, lua: TRANSFER });
  redis.defineCommand('voxRelease', { numberOfKeys: 1, lua: RELEASE });
  redis.defineCommand('voxForgetRecording', { numberOfKeys: 1, lua: FORGET_RECORDING });
  return redis as ClusterRedis;
}

/** Live nodes (expired entries pruned from the index). */
export async function readNodes(redis: Redis): Promise<NodeInfo[]> {
  const ids = await redis.smembers(keys.nodes);
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map(keys.node));
  const live: NodeInfo[] = [];
  const gone: string[] = [];
  values.forEach((raw, i) => {
    const info = raw === null ? undefined : parseNode(raw);
    if (info) live.push(info);
    else gone.push(ids[i]);
  });
  if (gone.length > 0) await redis.srem(keys.nodes, ...gone);
  return live.sort((a, b) => a.id.localeCompare(b.id));
}

/** Every open room of every live node, as the nodes last wrote them (write-behind, ≤ 1 s old). */
export async function readRooms(redis: Redis, nodes: readonly NodeInfo[]): Promise<RoomSummary[]> {
  const pipeline = redis.pipeline();
  for (const n of nodes) pipeline.hgetall(keys.rooms(n.id));
  const results = (await pipeline.exec()) ?? [];
  const rooms: RoomSummary[] = [];
  results.forEach(([err, value]) => {
    if (err || !value) return;
    for (const raw of Object.values(value as Record<string, string>)) {
      try {
        rooms.push(JSON.parse(raw) as RoomSummary);
      } catch {
        // A value that is not ours: skip it.
      }
    }
  });
  return rooms.sort((a, b) => a.room.localeCompare(b.room));
}

function parseNode(raw: string): NodeInfo | undefined {
  try {
    const n = JSON.parse(raw) as NodeInfo;
    return typeof n.id === 'string' && typeof n.url === 'string' ? n : undefined;
  } catch {
    return undefined;
  }
}
