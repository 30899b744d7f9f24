import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { VoxConfig } from '../config.ts';
import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { counter, gauge } from '../metrics/registry.ts';
import type { SignallingCore } from '../signalling/core.ts';
import type { JoinRoute, JoinRouter } from '../signalling/join-router.ts';
import { redactUrl } from '../turn/redis-store.ts';
import { ClusterPresence } from './presence.ts';
import { RecordingHandover } from './recording.ts';
import { keys, openClusterRedis, releaseIn, readNodes, readRooms, type ClusterRedis, type NodeInfo, type RoomSummary } from './store.ts';
import { signTicket, verifyTicket } from './ticket.ts';

const log = logger('cluster');

export interface ClusterNodeOptions {
  /** Server version published in the registry. */
  version: string;
  /** auth.hs256Secret as resolved (the ticket key is derived from it when cluster.secret is unset). */
  hs256Secret: string | undefined;
}

export interface ClusterHealth {
  node: string;
  redis: 'up' | 'down';
  draining: boolean;
  nodes: { id: string; url: string; load: number; rooms: number; draining: boolean; version: string }[];
}

const clusterNodes = gauge('voxlink_cluster_nodes', 'Live nodes in the cluster registry as this node last read it.');
/** ioredis's error for a command past `commandTimeout` (store.ts). */
const COMMAND_TIMED_OUT = 'Command timed out';
const clusterRedisUp = gauge('voxlink_cluster_redis_up', '1 while the cluster registry (Redis) answers, 0 during an outage.');
/** Per purpose, so operators (and bench/cluster) see what a join costs against the periodic traffic. */
const redisCommands = counter('voxlink_cluster_redis_commands_total', 'Redis commands this node sent, by purpose: route (join placement), registry (heartbeat and node list), lease (renewals), writeback (room list).', ['purpose']);
const clusterRoomsOwned = gauge('voxlink_cluster_rooms_owned', 'Rooms whose lease this node holds.');

/**
 * One node of a VoxLink cluster (docs/cluster.md): registers itself in Redis with a TTL, holds the
 * lease of every room it serves, routes joins for rooms it does not hold (a signed redirect to
 * the owner), writes its rooms behind for the cluster-wide room list, and on SIGTERM hands its
 * rooms to other nodes. Redis being down never reaches a running call: only joins that need a new
 * placement are refused (CLUSTER_UNAVAILABLE), and the node heals itself when Redis answers again.
 */
export class ClusterNode implements JoinRouter {
  readonly id: string;
  readonly presence: ClusterPresence;
  readonly #config: VoxConfig['cluster'];
  readonly #redis: ClusterRedis;
  readonly #ticketKey: Buffer;
  readonly #version: string;
  readonly #startedAt = Date.now();
  #url = '';
  #core: SignallingCore | undefined;
  /** Live nodes as last read (this node included, with its current load). */
  #nodes = new Map<string, NodeInfo>();
  /** Per node: the registry entry's updatedAt and when (our clock) we saw it change. */
  readonly #lastChange = new Map<string, { updatedAt: number; at: number }>();
  #available = false;
  /** An outage (or Redis unreachable since start-up) has been logged and has not ended yet. */
  #outageLogged = false;
  /** When Redis last answered a heartbeat (or the connection became ready), Date.now(). */
  #lastReplyAt = 0;
  /** A command timed out with the connection up and that was logged (cleared by the next reply). */
  #slowLogged = false;
  #draining = false;
  #closed = false;
  #timers: NodeJS.Timeout[] = [];
  #flushing = false;
  readonly #recordings: RecordingHandover;

  private constructor(config: VoxConfig, options: ClusterNodeOptions) {
    const cluster = config.cluster;
    if (cluster.redisUrl === undefined) throw new VoxError('CONFIG_INVALID', 'cluster.redisUrl is not set');
    const secret = cluster.secret ?? options.hs256Secret;
    if (secret === undefined) {
      throw new VoxError('CONFIG_INVALID', 'cluster: set cluster.secret (VOXLINK_CLUSTER_SECRET) — with EdDSA tokens there is no shared secret to derive the ticket key from');
    }
    this.#config = cluster;
    this.#version = options.version;
    this.#ticketKey = createHash('sha256').update('voxlink-cluster-ticket\n').update(secret).digest();
    this.id = cluster.nodeId ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40)}-${randomBytes(4).toString('hex')}`;
    this.#redis = openClusterRedis(cluster.redisUrl);
    const node = this;
    this.#recordings = new RecordingHandover({
      id: this.id,
      redis: this.#redis,
      ttlMs: 2 * cluster.leaseMs,
      get available() {
        return node.#available;
      },
      get draining() {
        return node.#draining;
      },
      get core() {
        return node.#core;
      },
      count: (purpose, n = 1) => redisCommands.inc({ purpose }, n),
    });
    this.presence = new ClusterPresence({
      opened: (roomId) => this.#recordings.opened(roomId),
      closed: (roomId, recording) => {
        this.#recordings.closed(roomId, recording);
        this.#roomClosed(roomId);
      },
    });
    this.#redis.on('error', (err: Error) => this.#down(err));
    this.#redis.on('close', () => this.#down(new Error('connection closed')));
    this.#redis.on('ready', () => this.#up());
  }

  /** Connects to Redis in the background (a node starts even while Redis is down). */
  static create(config: VoxConfig, options: ClusterNodeOptions): ClusterNode {
    return new ClusterNode(config, options);
  }

  get draining(): boolean {
    return this.#draining;
  }

  get available(): boolean {
    return this.#available;
  }

  /** Starts publishing once the server listens: `url` is what other nodes redirect clients to. */
  start(url: string, core: SignallingCore): void {
    this.#url = url;
    this.#core = core;
    this.#nodes.set(this.id, this.#selfInfo());
    const { heartbeatMs, leaseMs } = this.#config;
    this.#every(heartbeatMs, () => this.#heartbeat());
    this.#every(Math.max(250, Math.floor(leaseMs / 4)), () => this.#renewLeases());
    this.#every(250, () => this.#flushRooms());
    log.info({ node: this.id, url, redis: redactUrl(this.#config.redisUrl!) }, 'cluster node started');
    if (this.#available) void this.#heartbeat();
  }

  // -------------------------------------------------------------------------------------------
  // Join routing (JoinRouter)

  routeNow(roomId: string, ticket: string | undefined): JoinRoute | undefined {
    if (this.#draining) return undefined;
    if (this.presence.get(roomId)) return { kind: 'local' };
    if (ticket !== undefined) {
      const claims = verifyTicket(this.#ticketKey, ticket);
      if (claims && claims.room === roomId && claims.node === this.id) return { kind: 'local' };
    }
    return undefined;
  }

  async route(roomId: string): Promise<JoinRoute> {
    if (!this.#available) return this.#refusal(roomId);
    const key = keys.room(roomId);
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        redisCommands.inc({ purpose: 'route' });
        const owner = await this.#redis.get(key);
        if (owner === this.id && !this.#draining) return { kind: 'local' };
        const info = owner === null ? undefined : this.#nodes.get(owner);
        if (info && owner !== null && owner !== this.id) {
          if (!this.#silent(owner)) return this.#redirect(roomId, info);
          // Its entry stopped changing: probably dead (kill -9). Sending the client there would
          // cost it a failed connect and a backoff; wait here until the entry either moves again
          // (alive: redirect) or expires (dead: claim the room), at most one node TTL.
          await this.#waitWhileSilent(owner);
          continue;
        }
        // Free, owned by a node that left the registry (dead), or ours while draining: place it.
        const target = this.#leastLoaded();
        let now: string;
        redisCommands.inc({ purpose: 'route' });
        if (owner === this.id) {
          now = (await this.#redis.voxTransfer(key, this.id, target.id, this.#config.leaseMs)) === 1 ? target.id : ((await this.#redis.get(key)) ?? '');
        } else {
          now = await this.#redis.voxClaim(key, target.id, this.#config.leaseMs, owner ?? '');
          if (owner !== null && now === target.id) log.info({ roomId, dead: owner, to: target.id }, 'room of a dead node claimed again');
        }
        if (now === this.id) return { kind: 'local' };
        const placed = this.#nodes.get(now);
        if (placed) return this.#redirect(roomId, placed);
        await this.#refreshNodes('route'); // a node we have not seen yet: read the registry, try again
      }
      return { kind: 'refuse', code: 'CLUSTER_UNAVAILABLE', message: `room "${roomId}" could not be placed: its owner is not in the registry` };
    } catch (err) {
      this.#down(err as Error);
      return this.#refusal(roomId);
    }
  }

  #redirect(roomId: string, to: NodeInfo): JoinRoute {
    return { kind: 'redirect', url: to.url, ticket: this.#ticket(roomId, to.id) };
  }

  #ticket(roomId: string, node: string): string {
    return signTicket(this.#ticketKey, { room: roomId, node, expiresAt: Date.now() + this.#config.ticketTtlMs });
  }

  #refusal(roomId: string): JoinRoute {
    return { kind: 'refuse', code: 'CLUSTER_UNAVAILABLE', message: `the cluster registry is unreachable: room "${roomId}" cannot be placed now, try again shortly` };
  }

  /** The live node with the fewest participants; this node wins a tie (no redirect). */
  #leastLoaded(): NodeInfo {
    this.#nodes.set(this.id, this.#selfInfo());
    let best: NodeInfo | undefined;
    for (const n of this.#nodes.values()) {
      // Draining nodes take nothing; a silent one is probably dead and would strand the room.
      if (n.draining || (n.id !== this.id && this.#silent(n.id))) continue;
      if (!best || n.load < best.load || (n.load === best.load && n.id === this.id)) best = n;
    }
    return best ?? this.#selfInfo();
  }

  // -------------------------------------------------------------------------------------------
  // Registry, leases, write-behind

  #selfInfo(): NodeInfo {
    return {
      id: this.id,
      url: this.#url,
      load: this.presence.participantCount,
      rooms: this.presence.roomCount,
      version: this.#version,
      draining: this.#draining,
      startedAt: this.#startedAt,
      updatedAt: Date.now(),
    };
  }

  async #heartbeat(): Promise<void> {
    // Runs whenever the connection is up, so a node marked down by a failed or timed-out command
    // (with the socket still open) finds its way back here too.
    if (this.#redis.status !== 'ready' || this.#url === '' || this.#closed) return;
    const ttl = this.#config.nodeTtlMs;
    try {
      const multi = this.#redis.multi().set(keys.node(this.id), JSON.stringify(this.#selfInfo()), 'PX', ttl).sadd(keys.nodes, this.id).pexpire(keys.rooms(this.id), ttl);
      const recordings = this.#recordings.refreshIn(multi);
      await multi.exec();
      redisCommands.inc({ purpose: 'registry' }, 5 + recordings); // MULTI, SET, SADD, PEXPIRE, EXEC + a PEXPIRE per room recording here
      await this.#refreshNodes('registry');
      this.#up();
    } catch (err) {
      this.#down(err as Error);
    }
  }

  /**
   * True when a node's registry entry has not changed for 2.5 heartbeats, measured on this node's
   * clock (when it saw the change), so clock skew between hosts does not matter.
   */
  #silent(id: string): boolean {
    const seen = this.#lastChange.get(id);
    return seen !== undefined && Date.now() - seen.at > this.#config.heartbeatMs * 2.5;
  }

  async #waitWhileSilent(id: string): Promise<void> {
    const deadline = Date.now() + this.#config.nodeTtlMs + this.#config.heartbeatMs;
    while (Date.now() < deadline && this.#nodes.has(id) && this.#silent(id)) {
      await new Promise((r) => setTimeout(r, 200));
      await this.#refreshNodes('route');
    }
  }

  async #refreshNodes(purpose: 'route' | 'registry'): Promise<void> {
    redisCommands.inc({ purpose }, 2); // SMEMBERS + MGET (an SREM of expired ids is rare)
    const nodes = await readNodes(this.#redis);
    const now = Date.now();
    for (const n of nodes) {
      const seen = this.#lastChange.get(n.id);
      if (!seen || seen.updatedAt !== n.updatedAt) this.#lastChange.set(n.id, { updatedAt: n.updatedAt, at: now });
    }
    for (const id of this.#lastChange.keys()) if (!nodes.some((n) => n.id === id)) this.#lastChange.delete(id);
    const next = new Map(nodes.map((n) => [n.id, n]));
    next.set(this.id, this.#selfInfo());
    this.#nodes = next;
    clusterNodes.set(next.size);
  }

  async #renewLeases(): Promise<void> {
    if (!this.#available) return;
    const rooms = [...this.presence.rooms()].map((r) => r.id);
    clusterRoomsOwned.set(rooms.length);
    if (rooms.length === 0) return;
    let answers: string[];
    try {
      redisCommands.inc({ purpose: 'lease' });
      answers = await this.#redis.voxRenew(rooms.length, ...rooms.map(keys.room), this.id, this.#config.leaseMs);
    } catch (err) {
      this.#down(err as Error);
      return;
    }
    answers.forEach((answer, i) => {
      if (answer === '1') return;
      const roomId = rooms[i];
      if (answer === '2') {
        log.info({ roomId }, 'room lease was gone (Redis restarted or expired during an outage): claimed again');
        this.presence.dirty.add(roomId);
        return;
      }
      // Another node claimed the room while this one could not renew (a long Redis outage):
      // there must be one owner, so this node's clients follow the other one.
      const other = this.#nodes.get(answer);
      if (!other || this.#draining || !this.#core) return;
      const told = this.#core.redirectRoom(roomId, other.url, this.#ticket(roomId, other.id));
      log.warn({ roomId, owner: answer, told }, 'room is owned by another node now: its clients were sent there');
    });
  }

  async #flushRooms(): Promise<void> {
    const dirty = this.presence.dirty;
    if (!this.#available || this.#flushing || dirty.size === 0 || this.#url === '') return;
    this.#flushing = true;
    const batch = [...dirty];
    dirty.clear();
    try {
      const multi = this.#redis.multi();
      for (const roomId of batch) {
        const room = this.presence.get(roomId);
        if (room) {
          const summary: RoomSummary = { room: roomId, node: this.id, participants: room.participants.size, mode: room.mode, recording: room.recording !== null };
          multi.hset(keys.rooms(this.id), roomId, JSON.stringify(summary));
        } else {
          multi.hdel(keys.rooms(this.id), roomId);
          releaseIn(multi, roomId, this.id);
        }
        this.#recordings.writeIn(multi, roomId, room);
      }
      multi.pexpire(keys.rooms(this.id), this.#config.nodeTtlMs);
      redisCommands.inc({ purpose: 'writeback' }, multi.length + 2); // + MULTI/EXEC
      await multi.exec();
      this.#recordings.committed(batch, (roomId) => this.presence.get(roomId));
    } catch (err) {
      for (const roomId of batch) dirty.add(roomId);
      this.#down(err as Error);
    } finally {
      this.#flushing = false;
    }
  }

  #roomClosed(roomId: string): void {
    // The lease is released (and the summary removed) by the next flush; nothing waits for it.
    this.presence.dirty.add(roomId);
  }

  /**
   * The outage is logged once, when it starts, not once per failing call or reconnect attempt
   * (ioredis retries every ≤ 1 s and reports each failure). A node that starts while Redis is
   * unreachable runs on and says so once: it refuses new placements (CLUSTER_UNAVAILABLE) rather
   * than place rooms no other node knows about, and joins the cluster when Redis answers.
   */
  #down(err: Error): void {
    if (this.#closed) return;
    // A command that timed out on a connection still up is more often this node's own event loop
    // too busy to read the reply in time (or Redis briefly stalled) than Redis gone: that caller
    // gets its error, but the node is declared down only when Redis has not answered a heartbeat
    // for nodeTtlMs, the time after which the other nodes stop seeing this one anyway.
    if (this.#available && err.message === COMMAND_TIMED_OUT && this.#redis.status === 'ready' && Date.now() - this.#lastReplyAt < this.#config.nodeTtlMs) {
      if (!this.#slowLogged) log.warn({ err: err.message }, 'a cluster registry (Redis) command timed out; not an outage unless Redis stays silent for cluster.nodeTtlMs');
      this.#slowLogged = true;
      return;
    }
    const wasUp = this.#available;
    this.#available = false;
    clusterRedisUp.set(0);
    if (this.#outageLogged) return;
    this.#outageLogged = true;
    if (wasUp) {
      log.error({ err: err.message }, 'cluster registry (Redis) unavailable: calls in progress go on, joins that need a new room placement are refused until it is back');
    } else {
      log.error(
        { err: err.message, redis: redactUrl(this.#config.redisUrl!) },
        'cluster registry (Redis) unreachable at start-up: this node runs and keeps retrying; joins that need a room placement are refused (CLUSTER_UNAVAILABLE) until it answers',
      );
    }
  }

  #up(): void {
    this.#lastReplyAt = Date.now();
    this.#slowLogged = false;
    if (this.#available || this.#closed) return;
    this.#available = true;
    this.#outageLogged = false;
    clusterRedisUp.set(1);
    log.info({ node: this.id }, 'cluster registry (Redis) reachable');
    // Heal: publish this node, re-claim its rooms' leases, rewrite its room list.
    for (const room of this.presence.rooms()) this.presence.dirty.add(room.id);
    void this.#heartbeat().then(() => this.#renewLeases()).catch(() => undefined);
  }

  #every(ms: number, fn: () => Promise<void>): void {
    const timer = setInterval(() => {
      void fn().catch((err: unknown) => log.error({ err }, 'cluster loop failed'));
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  // -------------------------------------------------------------------------------------------
  // Operators

  health(): { cluster: ClusterHealth } {
    this.#nodes.set(this.id, this.#selfInfo());
    return {
      cluster: {
        node: this.id,
        redis: this.#available ? 'up' : 'down',
        draining: this.#draining,
        nodes: [...this.#nodes.values()].map((n) => ({ id: n.id, url: n.url, load: n.load, rooms: n.rooms, draining: n.draining, version: n.version })),
      },
    };
  }

  /** Every room in the cluster (rooms, owner node, participants), from Redis. */
  async listRooms(): Promise<RoomSummary[]> {
    const nodes = await readNodes(this.#redis);
    return readRooms(this.#redis, nodes);
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown

  /**
   * SIGTERM: take no more rooms, hand each room to the least-loaded other node (the lease moves
   * first, then its clients are told to follow: the new owner is ready before they leave), and
   * wait up to `timeoutMs` for the clients to go. Rooms nobody can take stay until the server closes.
   */
  async drain(timeoutMs = this.#config.drainTimeoutMs): Promise<{ moved: number; told: number }> {
    this.#draining = true;
    const deadline = Date.now() + timeoutMs;
    let moved = 0;
    let told = 0;
    if (this.#available) {
      await this.#heartbeat();
      for (const room of [...this.presence.rooms()]) {
        const target = this.#leastLoaded();
        if (target.id === this.id) continue;
        try {
          if ((await this.#redis.voxTransfer(keys.room(room.id), this.id, target.id, this.#config.leaseMs)) !== 1) continue;
        } catch (err) {
          this.#down(err as Error);
          break;
        }
        moved++;
        told += this.#core?.redirectRoom(room.id, target.url, this.#ticket(room.id, target.id)) ?? 0;
        log.info({ roomId: room.id, to: target.id }, 'room handed to another node');
      }
    }
    while (this.presence.participantCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    log.info({ moved, told, left: this.presence.participantCount }, 'drained');
    return { moved, told };
  }

  /** Leaves the registry (its entry, room list and any lease still held) and closes the client. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    if (this.#available) {
      try {
        const multi = this.#redis.multi().del(keys.node(this.id)).srem(keys.nodes, this.id).del(keys.rooms(this.id));
        for (const room of this.presence.rooms()) releaseIn(multi, room.id, this.id);
        await multi.exec();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not leave the cluster registry (entries expire by themselves)');
      }
    }
    this.#closed = true;
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
