import { Redis } from 'ioredis';
import { logger } from '../log.ts';
import { TRAFFIC_FIELDS, type TrafficField, type TurnMetrics } from './metrics.ts';
import { redactUrl } from './redis-store.ts';

const log = logger('turn-stats');

/**
 * Reads coturn's `redis-statsdb` (/usr/share/doc/coturn/schema.stats.redis; formats as coturn 4.6
 * writes them in ns_ioalib_engine_impl.c):
 *
 *   key + PUBLISH  turn/realm/<realm>/user/<username>/allocation/<id>/status
 *                  "new lifetime=600, type=UDP, local=…, remote=…, ssl=…, cipher=…" | "refreshed lifetime=…"
 *                  (the key is deleted and "deleted" published when the allocation ends)
 *   PUBLISH        …/allocation/<id>/traffic[/peer]        "rcvp=…, rcvb=…, sentp=…, sentb=…"
 *                  counts since the previous report, every 4096 packets of the session and at its end
 *   PUBLISH        …/allocation/<id>/total_traffic[/peer]  the allocation's whole count, when it ends
 *
 * (`turn/user/<username>/…` without the realm part when coturn has no realm.) The reader subscribes
 * first, then SCANs the status keys, so neither side's restart loses the allocations that are up:
 * VoxLink starting late finds them in the scan; Redis restarting (ioredis reconnects, resubscribes)
 * triggers a new scan; coturn restarting deletes its stale status keys without publishing, which the
 * periodic rescan and the allocations' own lifetimes (an allocation not refreshed within its lifetime
 * is gone) clear up.
 */
export interface CoturnStatsOptions {
  /** coturn's redis-statsdb as a redis:// URL. */
  url: string;
  /** Label traffic with the user id taken from the TURN username ("<expiry>:<userId>"). */
  userLabels: boolean;
  metrics: TurnMetrics;
  /** Full rescan interval (default 30 s). */
  rescanMs?: number;
}

interface Allocation {
  realm: string;
  user: string;
  type: string;
  /** When VoxLink first saw it (ms). */
  seenAt: number;
  /** Status time + lifetime: gone if not refreshed by then (ms). */
  expiresAt: number;
  /** Traffic counted so far from interim reports, [client, peer]. */
  counted: [Counts, Counts];
}

type Counts = Record<TrafficField, number>;

export interface StatsChannel {
  realm: string;
  username: string;
  id: string;
  kind: 'status' | 'traffic' | 'traffic/peer' | 'total_traffic' | 'total_traffic/peer';
}

const CHANNEL = /^turn\/(?:realm\/(.*?)\/)?user\/(.*)\/allocation\/(\d+)\/(status|traffic|traffic\/peer|total_traffic|total_traffic\/peer)$/;
const PATTERNS = ['turn/realm/*/user/*/allocation/*', 'turn/user/*/allocation/*'];
/** Transports coturn names (socket_type_name); always exported so a dashboard sees 0, not nothing. */
const TYPES = ['UDP', 'TCP', 'TLS', 'DTLS'];

export function parseChannel(channel: string): StatsChannel | null {
  const m = CHANNEL.exec(channel);
  if (!m) return null;
  return { realm: m[1] ?? '', username: m[2], id: m[3], kind: m[4] as StatsChannel['kind'] };
}

/** "rcvp=1, rcvb=2, sentp=3, sentb=4" → counts; null if a field is missing or not a number. */
export function parseTraffic(message: string): Counts | null {
  const out: Partial<Counts> = {};
  for (const part of message.split(',')) {
    const [name, value] = part.trim().split('=');
    if ((TRAFFIC_FIELDS as readonly string[]).includes(name) && /^\d+$/.test(value ?? '')) out[name as TrafficField] = Number(value);
  }
  return TRAFFIC_FIELDS.every((f) => out[f] !== undefined) ? (out as Counts) : null;
}

/** "new lifetime=600, type=UDP, …" → its parts; null for anything else (e.g. "deleted"). */
export function parseStatus(message: string): { state: 'new' | 'refreshed'; lifetimeSec: number; type: string } | null {
  const m = /^(new|refreshed) lifetime=(\d+)(?:, type=([A-Za-z0-9]+))?/.exec(message);
  if (!m) return null;
  return { state: m[1] as 'new' | 'refreshed', lifetimeSec: Number(m[2]), type: m[3] ?? 'UDP' };
}

/** The user id VoxLink put into a TURN REST username ("<expiry>:<userId>"); other usernames as they are. */
export function userOf(username: string): string {
  const m = /^\d+:(.*)$/.exec(username);
  return m ? m[1] : username;
}

const zero = (): Counts => ({ rcvp: 0, rcvb: 0, sentp: 0, sentb: 0 });

export class CoturnStatsReader {
  readonly #options: CoturnStatsOptions;
  readonly #commands: Redis;
  readonly #subscriber: Redis;
  readonly #allocations = new Map<string, Allocation>();
  /** Ids deleted recently: a scan that read the key just before the delete must not bring them back. */
  readonly #deleted = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #started: Promise<void>;
  /** Interim counts of allocations deleted in the last minute (their total_traffic follows the "deleted"). */
  readonly #counted = new Map<string, [Counts, Counts]>();
  #scanning: Promise<void> | undefined;
  #scans = 0;
  #closed = false;

  constructor(options: CoturnStatsOptions) {
    this.#options = options;
    this.#commands = new Redis(options.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, connectionName: 'voxlink-turn-stats' });
    // The subscriber queues its subscription until it is connected (however long Redis is away) and
    // ioredis resubscribes after every reconnect.
    this.#subscriber = new Redis(options.url, { maxRetriesPerRequest: null, lazyConnect: true, connectionName: 'voxlink-turn-stats-sub' });
    for (const r of [this.#commands, this.#subscriber]) r.on('error', () => undefined);
    this.#subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => this.#onMessage(channel, message));
    this.#subscriber.on('ready', () => options.metrics.statsUp.set(1));
    this.#subscriber.on('close', () => options.metrics.statsUp.set(0));
    // Every (re)connection of the command client rescans: Redis may have restarted empty, or coturn
    // may have come and gone meanwhile.
    this.#commands.on('ready', () => void this.rescan());
    options.metrics.allocations.reset();
    for (const type of TYPES) options.metrics.allocations.set({ type }, 0);
    this.#timer = setInterval(() => {
      this.#expire(Date.now());
      void this.rescan();
    }, options.rescanMs ?? 30_000);
    this.#timer.unref();
    this.#started = this.#start();
    this.#started.catch(() => undefined); // closed before Redis was reached: nobody waits for it
  }

  /** Resolves once subscribed and the first scan is done (however long Redis takes to appear). */
  ready(): Promise<void> {
    return this.#started;
  }

  /** Live allocations as VoxLink knows them (tests, debugging). */
  allocations(): { id: string; realm: string; username: string; type: string }[] {
    return [...this.#allocations].map(([id, a]) => ({ id, realm: a.realm, username: a.user, type: a.type }));
  }

  async #start(): Promise<void> {
    this.#subscriber.connect().catch(() => log.warn({ url: redactUrl(this.#options.url) }, 'coturn statistics: Redis not reachable yet, retrying'));
    this.#commands.connect().catch(() => undefined); // ioredis keeps retrying
    await this.#subscriber.psubscribe(...PATTERNS);
    // Subscribed first, then scanned: an allocation made in between is in the scan or in a message.
    while (!this.#closed) {
      if (this.#commands.status === 'ready') {
        await this.rescan();
        if (this.#scans > 0) return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** SCANs the status keys and rebuilds the live allocations from them. */
  rescan(): Promise<void> {
    if (this.#closed || this.#commands.status !== 'ready') return Promise.resolve();
    return (this.#scanning ??= this.#scan()
      .catch((err: unknown) => log.warn({ err }, 'coturn statistics: scan failed'))
      .finally(() => (this.#scanning = undefined)));
  }

  async #scan(): Promise<void> {
    const startedAt = Date.now();
    const found = new Map<string, { channel: StatsChannel; status: string }>();
    for (const match of ['turn/realm/*/user/*/allocation/*/status', 'turn/user/*/allocation/*/status']) {
      let cursor = '0';
      do {
        const [next, keys] = await this.#commands.scan(cursor, 'MATCH', match, 'COUNT', 500);
        cursor = next;
        if (keys.length === 0) continue;
        const values = await this.#commands.mget(...keys);
        keys.forEach((key, i) => {
          const channel = parseChannel(key);
          const status = values[i];
          if (channel && status != null) found.set(channel.id, { channel, status });
        });
      } while (cursor !== '0');
    }
    const now = Date.now();
    for (const [id, a] of this.#allocations) {
      // Gone from Redis (coturn restarted and cleared its keys) unless it appeared after the scan began.
      if (!found.has(id) && a.seenAt < startedAt) this.#allocations.delete(id);
    }
    for (const [id, { channel, status }] of found) {
      if (this.#deleted.has(id)) continue;
      this.#status(channel, status, now);
    }
    for (const [id, at] of this.#deleted) if (at < startedAt - 60_000) this.#deleted.delete(id);
    this.#publishGauge();
    this.#scans++;
  }

  #onMessage(channelName: string, message: string): void {
    const channel = parseChannel(channelName);
    if (!channel) return;
    const now = Date.now();
    switch (channel.kind) {
      case 'status':
        if (message === 'deleted') this.#delete(channel.id, now);
        else this.#status(channel, message, now);
        this.#publishGauge();
        return;
      case 'traffic':
      case 'traffic/peer': {
        const counts = parseTraffic(message);
        if (!counts) return;
        const peer = channel.kind === 'traffic/peer';
        this.#add(channel, counts, peer);
        const a = this.#allocations.get(channel.id);
        if (a) for (const f of TRAFFIC_FIELDS) a.counted[peer ? 1 : 0][f] += counts[f];
        return;
      }
      case 'total_traffic':
      case 'total_traffic/peer': {
        // The allocation's whole count: add what the interim reports did not (traffic before VoxLink
        // subscribed), so the counters end where coturn's own exporter would put them.
        const total = parseTraffic(message);
        if (!total) return;
        const peer = channel.kind === 'total_traffic/peer';
        const counted = this.#counted.get(channel.id)?.[peer ? 1 : 0] ?? this.#allocations.get(channel.id)?.counted[peer ? 1 : 0] ?? zero();
        const rest = zero();
        for (const f of TRAFFIC_FIELDS) rest[f] = Math.max(0, total[f] - counted[f]);
        this.#add(channel, rest, peer);
        return;
      }
    }
  }

  #status(channel: StatsChannel, message: string, now: number): void {
    const status = parseStatus(message);
    if (!status) return;
    const existing = this.#allocations.get(channel.id);
    const expiresAt = now + status.lifetimeSec * 1000;
    if (existing) {
      existing.expiresAt = expiresAt;
      existing.type = status.type;
      return;
    }
    this.#allocations.set(channel.id, { realm: channel.realm, user: channel.username, type: status.type, seenAt: now, expiresAt, counted: [zero(), zero()] });
  }

  #delete(id: string, now: number): void {
    const a = this.#allocations.get(id);
    this.#deleted.set(id, now);
    if (!a) return;
    this.#allocations.delete(id);
    this.#counted.set(id, a.counted);
    setTimeout(() => this.#counted.delete(id), 60_000).unref();
    this.#options.metrics.allocationDuration.observe((now - a.seenAt) / 1000);
  }

  #expire(now: number): void {
    for (const [id, a] of this.#allocations) if (a.expiresAt + 5_000 < now) this.#allocations.delete(id);
    this.#publishGauge();
  }

  #add(channel: StatsChannel, counts: Counts, peer: boolean): void {
    const m = this.#options.metrics;
    const labels = this.#options.userLabels ? { realm: channel.realm, user: userOf(channel.username) } : { realm: channel.realm };
    const labelled = peer ? m.peerTraffic : m.traffic;
    const total = peer ? m.totalPeerTraffic : m.totalTraffic;
    for (const f of TRAFFIC_FIELDS) {
      if (counts[f] === 0) continue;
      labelled[f].inc(labels, counts[f]);
      total[f].inc(counts[f]);
    }
  }

  #publishGauge(): void {
    const byType = new Map<string, number>(TYPES.map((t) => [t, 0]));
    for (const a of this.#allocations.values()) byType.set(a.type, (byType.get(a.type) ?? 0) + 1);
    for (const [type, n] of byType) this.#options.metrics.allocations.set({ type }, n);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#scanning;
    this.#options.metrics.statsUp.set(0);
    this.#subscriber.disconnect();
    this.#commands.disconnect();
  }
}
