import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createMediaRoom, type MediaRoom, type MediaRoomEvent, type MediaRoomOptions } from '../../src/media/room.ts';
import { NodeMediaClient, type NodeMediaClientOptions } from '../../src/client/media/node-media-client.ts';
import type { ServerMediaMessage } from '../../src/protocol/index.ts';

export const FULL_GRANTS = { publish: true, subscribe: true, record: false, admin: false };

/** Ports for a test file: spread so files running in parallel don't collide. */
export function portRange(base: number, size = 200): { rtcMinPort: number; rtcMaxPort: number } {
  return { rtcMinPort: base, rtcMaxPort: base + size - 1 };
}

/**
 * A media room in this process with werift clients wired to it directly (no signalling server):
 * room events go to the clients' `handle`, client messages go to `room.signal`.
 */
export class RoomHarness {
  readonly room: MediaRoom;
  readonly roomId: string;
  readonly clients = new Map<string, NodeMediaClient>();
  readonly roomEvents: ServerMediaMessage[] = [];
  /** Every other endpoint that wants events (e.g. a Chromium page), by participant id. */
  readonly sinks = new Map<string, (m: ServerMediaMessage) => void>();
  readonly errors: unknown[] = [];

  constructor(options: Partial<MediaRoomOptions> & { rtcMinPort: number; rtcMaxPort: number }) {
    this.roomId = options.roomId ?? 'r1';
    this.room = createMediaRoom(
      { roomId: this.roomId, slots: 3, announcedIp: '127.0.0.1', mode: 'sfu', ...options },
      (e) => this.#route(e),
    );
  }

  async join(
    participantId: string,
    grants = FULL_GRANTS,
    options: { decode?: boolean; audioCodec?: NodeMediaClientOptions['audioCodec'] } = {},
  ): Promise<NodeMediaClient> {
    const client = new NodeMediaClient({
      room: this.roomId,
      decode: options.decode,
      audioCodec: options.audioCodec,
      signal: {
        send: (m) => {
          this.room.signal(participantId, m).catch((e: unknown) => this.errors.push(e));
        },
      },
    });
    this.clients.set(participantId, client);
    await this.room.join({ roomId: this.roomId, participantId, name: participantId, grants });
    return client;
  }

  async leave(participantId: string): Promise<void> {
    const c = this.clients.get(participantId);
    this.clients.delete(participantId);
    await this.room.leave(participantId);
    await c?.close();
  }

  async close(): Promise<void> {
    await this.room.close();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  #route(e: MediaRoomEvent): void {
    if (e.to === 'room') {
      this.roomEvents.push(e.message);
      for (const c of this.clients.values()) c.handle(e.message).catch((err: unknown) => this.errors.push(err));
      for (const s of this.sinks.values()) s(e.message);
      return;
    }
    const c = this.clients.get(e.participantId);
    if (c !== undefined) c.handle(e.message).catch((err: unknown) => this.errors.push(err));
    this.sinks.get(e.participantId)?.(e.message);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * The longest event-loop stall of this process (ms) since `start`. Media clients and the room
 * share the test process, so on a starved CI box a gap in received audio can be the test's own
 * stall; assertions on gaps and switch times add it to their bound.
 */
export function stallMonitor(): { maxMs(): number; stop(): void } {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return {
    maxMs: () => h.max / 1e6,
    stop: () => h.disable(),
  };
}
