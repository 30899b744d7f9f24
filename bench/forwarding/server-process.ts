/**
 * The bench's side of the server child process (server.ts): commands and stats over IPC, media
 * events routed to the participant (or room) they are for. Used by the forwarding and mixing benches.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MediaRoomStats } from '../../src/media/room.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';
import type { ServerCommand } from './server.ts';

const here = dirname(fileURLToPath(import.meta.url));

export class Server {
  readonly child: ChildProcess;
  readonly #handlers = new Map<string, (m: ServerMediaMessage, to: 'room' | 'participant') => void>();
  readonly #pending = new Map<number, (s: ServerStats) => void>();
  readonly #profiled = new Map<number, () => void>();
  #nextId = 1;

  /** `env`: added to the server's environment (e.g. VOXLINK_DIRECT_UDP=1); `nodeArgs`: added node flags. */
  constructor(env: Record<string, string> = {}, nodeArgs: string[] = []) {
    // VOXLINK_BENCH_SERVER_ARGS: extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const extra = (process.env.VOXLINK_BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
    this.child = fork(join(here, 'server.ts'), [], {
      execArgv: ['--import', 'tsx', ...nodeArgs, ...extra],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child = this.child;
    process.once('exit', () => child.kill());
    this.child.on('message', (raw) => {
      const m = raw as { t: string; roomId: string; event: { to: string; participantId?: string; message: ServerMediaMessage } } & ServerStats & { id: number; message: string };
      if (m.t === 'event') {
        if (m.event.to === 'room') for (const [key, h] of this.#handlers) key.startsWith(`${m.roomId}/`) && h(m.event.message, 'room');
        else this.#handlers.get(`${m.roomId}/${m.event.participantId}`)?.(m.event.message, 'participant');
      } else if (m.t === 'stats') {
        this.#pending.get(m.id)?.(m);
        this.#pending.delete(m.id);
      } else if (m.t === 'profiled') {
        this.#profiled.get(m.id)?.();
        this.#profiled.delete(m.id);
      } else if (m.t === 'error') {
        console.error('server error:', m.message);
      }
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.child.once('message', () => resolve()));
  }

  send(cmd: ServerCommand): void {
    this.child.send(cmd);
  }

  on(roomId: string, participantId: string, handler: (m: ServerMediaMessage, to: 'room' | 'participant') => void): void {
    this.#handlers.set(`${roomId}/${participantId}`, handler);
  }

  stats(): Promise<ServerStats> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.send({ t: 'stats', id });
    });
  }

  /** Starts the server's CPU profiler (no path), or stops it and writes the .cpuprofile to `path`. */
  profile(path?: string): Promise<void> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#profiled.set(id, resolve);
      this.send({ t: 'profile', id, path });
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.send({ t: 'close' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill();
  }
}

export interface ServerStats {
  cpuMs: number;
  gcCount: number;
  gcMs: number;
  rooms: MediaRoomStats[];
}


