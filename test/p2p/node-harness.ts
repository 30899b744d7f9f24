import { OpusEncoder } from '../../src/codec/index.ts';
import { NodeMediaClient, ToneSource, audioLevelOf } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import type { ReceivedPacket } from '../../src/client/media/node.ts';
import { powerAt } from '../codec/signal.ts';

/**
 * Node SDK participants for the p2p tests: a VoxClient and a NodeMediaClient wired as an app
 * would (`signal.sendPeer`, `join({ direct })`), publishing a tone on their own 20 ms clock so
 * every Opus payload they send is known by its frame index. The server forwards Opus payloads
 * unchanged (an `auto` room's server side is `sfu`), so a receiver can tell, across a switch
 * between the direct link and the server, exactly which frames it played: a gap is frames never
 * played, measured on the sender's media clock, not on the (loaded) receiver's wall clock.
 */
export class ToneParticipant {
  readonly client: VoxClient;
  media!: NodeMediaClient;
  readonly name: string;
  readonly hz: number;
  readonly source: ToneSource;
  /** Joins with `direct: true` (its media client can connect directly). */
  readonly direct: boolean;
  /** Gives its media client `signal.sendPeer`. */
  readonly #sendPeer: boolean;
  participantId = '';
  /** Opus payload (base64) → frame index, for every frame sent. */
  readonly #frames = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #encoder: OpusEncoder | null = null;
  /** Played frames per sender: [frame index or -1 if unknown, arrival ms]. */
  readonly played = new Map<string, [number, number][]>();
  /** Every sender's frame map, to resolve the frame index of what this one plays. */
  static readonly senders = new Map<string, ToneParticipant>();

  constructor(name: string, hz: number, options: { direct: boolean; sendPeer?: boolean }) {
    this.name = name;
    this.hz = hz;
    this.source = new ToneSource(hz);
    this.client = createNodeClient();
    this.direct = options.direct;
    this.#sendPeer = options.sendPeer ?? true;
  }

  /** Connects and joins `room` with a media client for it, as an app would wire them. */
  async join(url: string, token: string, room: string, mode?: 'auto' | 'p2p'): Promise<void> {
    const send = (m: Parameters<VoxClient['sendMedia']>[0]): void => {
      try {
        this.client.sendMedia(m);
      } catch {
        // Disconnected (the participant left): nothing more to send.
      }
    };
    const media = new NodeMediaClient({ room, signal: this.#sendPeer ? { send, sendPeer: send } : { send } });
    this.media = media;
    this.client.on('media', (m) => void media.handle(m));
    this.client.on('slots', (e) => void media.handle({ op: 'slots', room: e.room, slots: [...e.slots] }));
    media.on('rtp', (p) => this.#played(p));
    await this.client.connect(url, token);
    const state = await this.client.join(room, { direct: this.direct, ...(mode === undefined ? {} : { mode }) });
    this.participantId = state.participantId;
    ToneParticipant.senders.set(this.participantId, this);
  }

  /** Sends the tone (48 kHz, 20 ms Opus frames) through `sendAudioFrame`, catching up after stalls as publish() does. */
  startTone(): void {
    this.stopTone();
    const encoder = new OpusEncoder({ sampleRate: 48_000, channels: 1, bitrate: 24_000, inbandFec: true });
    this.#encoder = encoder;
    const frame = new Float32Array(960);
    // A faint deterministic dither: a pure tone repeats every few frames, and so would its Opus
    // payloads; with it every payload is unique and names its frame.
    let seed = this.hz;
    const start = performance.now();
    let sent = 0;
    this.#timer = setInterval(() => {
      const due = Math.floor((performance.now() - start) / 20);
      while (sent < due) {
        this.source.read(frame);
        for (let i = 0; i < frame.length; i++) {
          seed = (seed * 1_103_515_245 + 12_345) >>> 0;
          frame[i] += ((seed / 0x1_0000_0000) - 0.5) * 0.002;
        }
        const payload = Buffer.from(encoder.encode(frame));
        const key = payload.toString('base64');
        if (!this.#frames.has(key)) this.#frames.set(key, this.#frames.size);
        else this.#frames.set(key, -1); // the same bytes twice: ambiguous, not used for gaps
        this.media.sendAudioFrame(payload, audioLevelOf(frame));
        sent++;
      }
    }, 5);
  }

  stopTone(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#encoder?.close();
    this.#encoder = null;
  }

  frameIndex(payload: Buffer): number {
    return this.#frames.get(payload.toString('base64')) ?? -1;
  }

  #played(p: ReceivedPacket): void {
    if (p.participantId === null) return;
    const sender = ToneParticipant.senders.get(p.participantId);
    let list = this.played.get(p.participantId);
    if (!list) this.played.set(p.participantId, (list = []));
    list.push([sender ? sender.frameIndex(p.payload) : -1, p.arrivalMs]);
  }

  /** Starts a gap window for what this one plays of `from`. */
  markPlayed(from: string): number {
    return this.played.get(from)?.length ?? 0;
  }

  /**
   * Since `mark`: the longest run of `from`'s frames never played (ms, on the sender's 20 ms clock),
   * how many frames were played again (the new path behind the old), and how many were played.
   */
  gapSince(from: string, mark: number): { gapMs: number; repeated: number; played: number; known: number } {
    const list = (this.played.get(from) ?? []).slice(mark).filter(([index]) => index >= 0);
    let gap = 0;
    let repeated = 0;
    let highest = -1;
    for (const [index] of list) {
      if (highest >= 0 && index > highest + 1) gap = Math.max(gap, index - highest - 1);
      if (index <= highest) repeated++;
      highest = Math.max(highest, index);
    }
    return { gapMs: gap * 20, repeated, played: (this.played.get(from)?.length ?? 0) - mark, known: list.length };
  }

  /**
   * The `hz` voice's share of what this one decoded from `from` over the last second (dB above the
   * rest), and its RMS. The voice counts with ±4 Hz sidebands: the pages' fake microphone is
   * amplitude-modulated at 4 Hz (test/web/page-harness.ts); a plain tone has nothing there.
   */
  heard(from: Pick<ToneParticipant, 'participantId' | 'hz'>, seconds = 1): { rms: number; toneDb: number } {
    const pcm = this.media.audioFrom(from.participantId, seconds);
    if (pcm.length < 4800) return { rms: 0, toneDb: -Infinity };
    let sum = 0;
    for (const v of pcm) sum += v * v;
    const mean = sum / pcm.length;
    const tone = powerAt(pcm, 48_000, from.hz - 4) + powerAt(pcm, 48_000, from.hz) + powerAt(pcm, 48_000, from.hz + 4);
    return { rms: Math.sqrt(mean), toneDb: 10 * Math.log10(tone / Math.max(1e-12, mean - tone)) };
  }

  async leave(room: string): Promise<void> {
    this.stopTone();
    await this.client.leave(room).catch(() => undefined);
    await this.media.close();
    await this.client.disconnect();
  }
}
