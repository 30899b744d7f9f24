import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { mintToken } from '../../src/auth/tokens.ts';
import { NodeMediaClient, ToneSource } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import type { RoomState } from '../../src/client/room.ts';
import { powerAt } from '../codec/signal.ts';
import { decodeRecording } from '../recording/decode.ts';

/**
 * A cluster for tests: a real redis-server on a private port and VoxLink nodes as child processes
 * (`node --import tsx src/main.ts`, as `npm start` runs it), plus SDK members (VoxClient + werift
 * NodeMediaClient publishing a tone) that re-create their media when the SDK re-joins elsewhere.
 */
export const SECRET = 'cluster-test-signing-secret-0123456789';
const root = new URL('../../', import.meta.url).pathname;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export class RedisServer {
  readonly port: number;
  readonly url: string;
  #child: ChildProcess | null = null;

  constructor(port: number) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** Starts redis-server (no persistence: a restart comes back empty, the hardest case). */
  async start(): Promise<void> {
    this.#child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await until(
        async () => {
          try {
            if (probe.status !== 'ready') await probe.connect();
            return (await probe.ping()) === 'PONG';
          } catch {
            probe.disconnect();
            return false;
          }
        },
        10_000,
        `redis-server on ${this.port}`,
      );
    } finally {
      probe.disconnect();
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Freezes redis-server (SIGSTOP): connections stay open, nothing is answered — a stalled Redis. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  client(): Redis {
    const r = new Redis(this.url, { maxRetriesPerRequest: 1 });
    r.on('error', () => undefined);
    return r;
  }
}

export interface NodeOptions {
  id: string;
  redisUrl: string;
  rtcMinPort: number;
  rtcMaxPort: number;
  env?: Record<string, string>;
}

/** One VoxLink node in its own process. */
export class VoxNode {
  readonly id: string;
  port = 0;
  output = '';
  readonly #options: NodeOptions;
  readonly #dataDir: string;
  #child: ChildProcess | null = null;
  exited: Promise<number | null> = Promise.resolve(null);

  constructor(options: NodeOptions) {
    this.id = options.id;
    this.#options = options;
    this.#dataDir = mkdtempSync(join(tmpdir(), `voxlink-cluster-${options.id}-`));
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get dataDir(): string {
    return this.#dataDir;
  }

  async start(): Promise<void> {
    this.output = '';
    const env = {
      ...process.env,
      VOXLINK_PORT: '0',
      VOXLINK_HOST: '127.0.0.1',
      VOXLINK_DATA_DIR: this.#dataDir,
      VOXLINK_LOG_LEVEL: 'info',
      VOXLINK_SECRET: SECRET,
      VOXLINK_MEDIA_WORKERS: '1',
      VOXLINK_RTC_MIN_PORT: String(this.#options.rtcMinPort),
      VOXLINK_RTC_MAX_PORT: String(this.#options.rtcMaxPort),
      VOXLINK_REDIS_URL: this.#options.redisUrl,
      VOXLINK_NODE_ID: this.id,
      VOXLINK_CLUSTER_DRAIN_TIMEOUT_MS: '8000',
      // A cold media worker on a CPU-starved 2-core box can take longer than the 5 s default to answer its first join.
      VOXLINK_MEDIA_REQUEST_TIMEOUT_MS: '20000',
      ...this.#options.env,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    const listening = /"component":"server".*?"port":(\d+)/;
    await until(() => listening.test(this.output) || child.exitCode !== null, 60_000, `node ${this.id} listening`);
    if (child.exitCode !== null) throw new Error(`node ${this.id} exited: ${this.output}`);
    this.port = Number(listening.exec(this.output)![1]);
    await until(() => this.output.includes('cluster node started'), 10_000, `node ${this.id} in the cluster`);
  }

  kill(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  async health(): Promise<{ participants: number; rooms: number; cluster: { node: string; redis: string; nodes: { id: string }[] } }> {
    return (await (await fetch(`${this.httpUrl}/healthz`)).json()) as never;
  }

  /** Lines of the node's JSON log with this `msg`. */
  lines(msg: string): Record<string, unknown>[] {
    return this.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === msg);
  }

  /** Warnings and errors the node logged (for failure messages). */
  problems(): string[] {
    return this.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .filter((l) => (JSON.parse(l) as { level: number }).level >= 40)
      .map((l) => `${this.id}: ${l.slice(0, 400)}`);
  }

  cleanup(): void {
    rmSync(this.#dataDir, { recursive: true, force: true });
  }
}

export function token(userId: string, grants: ('join' | 'publish' | 'subscribe' | 'record' | 'admin')[] = ['join', 'publish', 'subscribe']): Promise<string> {
  return mintToken({ key: SECRET, userId, name: userId, room: '*', grants, ttl: 3600 });
}

/** A participant through the SDK, publishing `toneHz`; its media client is re-created whenever the SDK (re-)joins. */
export class Member {
  readonly userId: string;
  readonly toneHz: number;
  readonly client: VoxClient;
  readonly room: string;
  media: NodeMediaClient | null = null;
  /** When the current media client was made (after a re-join: when the SDK got back into the room). */
  mediaSince = 0;
  readonly rooms: { reason: string; at: number }[] = [];
  /** Participant ids this member was told are speaking (`speaking` events from the room's node). */
  readonly speaking = new Set<string>();

  constructor(userId: string, toneHz: number, room: string) {
    this.userId = userId;
    this.toneHz = toneHz;
    this.room = room;
    this.client = createNodeClient();
    this.client.on('media', (m) => void this.media?.handle(m).catch(() => undefined));
    this.client.on('speaking', (e) => {
      if (e.room === this.room && e.speaking) this.speaking.add(e.participantId);
    });
    this.client.on('room', (e) => {
      if (e.room.id !== this.room) return;
      this.rooms.push({ reason: e.reason, at: Date.now() });
      if (e.reason === 'joined' || e.reason === 'rejoined') this.#newMedia();
    });
  }

  async join(entries: string[], grants?: Parameters<typeof token>[1]): Promise<RoomState> {
    await this.client.connect(entries, await token(this.userId, grants));
    return this.client.join(this.room);
  }

  #newMedia(): void {
    const old = this.media;
    const media = new NodeMediaClient({ room: this.room, signal: { send: (m) => this.client.sendMedia(m) } });
    this.media = media;
    this.mediaSince = Date.now();
    void old?.close().catch(() => undefined);
    void media
      .connected(30_000)
      .then(() => {
        if (this.media === media) media.publish(new ToneSource(this.toneHz));
      })
      .catch(() => undefined);
  }

  /** Whether this member was told `other` is speaking (in their current room state). */
  heardSpeaking(other: Member): boolean {
    const room = this.client.room(this.room);
    if (!room) return false;
    for (const p of room.participants.values()) if (p.userId === other.userId && this.speaking.has(p.participantId)) return true;
    return false;
  }

  /** Power of `other`'s tone in the last second this member received from them (0 when nothing). */
  powerOf(other: Member): number {
    const room = this.client.room(this.room);
    const media = this.media;
    if (!room || !media) return 0;
    for (const p of room.participants.values()) {
      if (p.userId !== other.userId) continue;
      const pcm = media.audioFrom(p.participantId, 1);
      if (pcm.length < 48_000 * 0.8) return 0;
      return powerAt(pcm, 48_000, other.toneHz);
    }
    return 0;
  }

  async close(): Promise<void> {
    await this.media?.close().catch(() => undefined);
    await this.client.disconnect();
  }
}

/** A 0.3-amplitude sine has power 0.045; decoded Opus keeps most of it. */
export const PRESENT = 0.01;

/** Who hears whom how loud, for failure messages: "ann←bob 0.031 ann←cy 0 …". */
export function powerMatrix(members: readonly Member[]): string {
  return members
    .flatMap((m) => members.filter((o) => o !== m).map((o) => `${m.userId}←${o.userId} ${m.powerOf(o).toFixed(3)}`))
    .concat(members.map((m) => `${m.userId}: ${m.client.state}, heard ${m.media?.heard().length ?? 0}, rooms ${m.rooms.map((r) => r.reason).join('/')}`))
    .join('  ');
}

/** Waits until every member hears every other one; the timeout error says who hears whom. */
export async function untilEveryoneHears(members: readonly Member[], timeoutMs: number, what: string, extra: () => boolean = () => true): Promise<void> {
  try {
    await until(() => extra() && hearsEveryone(members), timeoutMs, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${powerMatrix(members)}`);
  }
}

export function hearsEveryone(members: readonly Member[]): boolean {
  return members.every((m) => members.every((o) => o === m || m.powerOf(o) > PRESENT));
}

/** The strongest `hz` power over half-second windows (a recorded track has silence where nobody spoke yet). */
export function peakPower(pcm: Float32Array, hz: number, windowS = 0.5): number {
  const n = Math.floor(48_000 * windowS);
  let peak = 0;
  for (let at = 0; at + n <= pcm.length; at += n) peak = Math.max(peak, powerAt(pcm.subarray(at, at + n), 48_000, hz));
  return peak;
}

export interface RecordedTrack {
  userId: string | null;
  pcm: Float32Array;
  truncated: boolean;
}

/** A recording on a node's disk, every track decoded (undefined while its manifest is not there yet). */
export function readRecording(node: VoxNode, id: string): { stoppedAt: number | null; continues?: unknown; tracks: RecordedTrack[] } | undefined {
  const dir = join(node.dataDir, 'recordings', id);
  if (!existsSync(join(dir, 'manifest.json'))) return undefined;
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { stoppedAt: number | null; continues?: unknown; files: { userId: string | null; file: string }[] };
  const tracks = manifest.files.map((f) => {
    const decoded = decodeRecording(readFileSync(join(dir, f.file)));
    return { userId: f.userId, pcm: decoded.pcm, truncated: decoded.file.truncated };
  });
  return { stoppedAt: manifest.stoppedAt, ...(manifest.continues === undefined ? {} : { continues: manifest.continues }), tracks };
}

/** Per member: the peak power of their own tone in their track of the recording (0 without a track). */
export function recordedTones(node: VoxNode, id: string, members: readonly Member[]): Record<string, number> {
  const recording = readRecording(node, id);
  const out: Record<string, number> = {};
  for (const m of members) {
    const track = recording?.tracks.find((t) => t.userId === m.userId);
    out[m.userId] = track ? peakPower(track.pcm, m.toneHz) : 0;
  }
  return out;
}
