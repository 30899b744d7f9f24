import { PEER_LEVEL_INTERVAL_MS } from '../protocol/messages.ts';
import type { SignallingContext } from './context.ts';

/** RFC 6464 §3: 127 is silence. */
const SILENCE = 127;
/*
 * The media rooms' speaker detection, applied to reports instead of RTP (its defaults, see
 * src/media/speaker-detector.ts; signalling does not import media/, docs/architecture.md):
 * exponential smoothing in dB with a 250 ms time constant, speaking from −50 dBov, silent again
 * below −60 dBov (hysteresis), no report for 300 ms decays towards silence, 2 s forgets.
 */
const SMOOTHING_MS = 250;
const ON_DBOV = -50;
const OFF_DBOV = -60;
const IDLE_AFTER_MS = 300;
const FORGET_AFTER_MS = 2000;
/** Idle speakers decay this often. */
const TICK_MS = 100;

interface Speaker {
  dbov: number;
  /** Last report. */
  lastMs: number;
  /** Time up to which the smoothing has accounted (reports or idle decay). */
  smoothedAtMs: number;
  speaking: boolean;
}

/**
 * Speaking events of direct rooms. While two participants talk directly the server sees no RTP,
 * so each SDK reports its own microphone level over signalling (`peer` kind `level`, the mean of
 * the last PEER_LEVEL_INTERVAL_MS) and this decides who speaks the way a media room does. Changes
 * go out as a media room's do: presence's `speaking` flag and an ephemeral `speaking` message to
 * the room. A muted participant's reports are ignored.
 */
export class DirectSpeaking {
  readonly #ctx: SignallingContext;
  /** Room → participant → speaker. */
  readonly #rooms = new Map<string, Map<string, Speaker>>();
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(ctx: SignallingContext) {
    this.#ctx = ctx;
  }

  /** One level report (RFC 6464 −dBov) of `participantId` in the direct room `roomId`. */
  report(roomId: string, participantId: string, level: number): void {
    if (this.#ctx.presence.participant(roomId, participantId)?.muted !== false) return;
    let speakers = this.#rooms.get(roomId);
    if (!speakers) this.#rooms.set(roomId, (speakers = new Map()));
    const now = performance.now();
    const dbov = -Math.min(SILENCE, Math.max(0, level));
    const s = speakers.get(participantId);
    if (!s) {
      const speaker = { dbov, lastMs: now, smoothedAtMs: now, speaking: false };
      speakers.set(participantId, speaker);
      this.#update(roomId, participantId, speaker);
    } else {
      // A report weighs as the audio it stands for, not as the time since the last one.
      smooth(s, dbov, PEER_LEVEL_INTERVAL_MS);
      s.lastMs = now;
      s.smoothedAtMs = now;
      this.#update(roomId, participantId, s);
    }
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), TICK_MS);
      this.#timer.unref?.();
    }
  }

  /** The participant left, or was muted: it stops speaking now. */
  forget(roomId: string, participantId: string): void {
    const s = this.#rooms.get(roomId)?.get(participantId);
    if (!s) return;
    this.#rooms.get(roomId)!.delete(participantId);
    if (s.speaking) this.#send(roomId, participantId, false, SILENCE);
  }

  /**
   * The room's audio goes through the server (or the room closed): its media room detects speakers
   * from RTP from now on, so whoever spoke here stops, and the media room's next event says more.
   */
  reset(roomId: string): void {
    const speakers = this.#rooms.get(roomId);
    if (!speakers) return;
    this.#rooms.delete(roomId);
    for (const [participantId, s] of speakers) if (s.speaking) this.#send(roomId, participantId, false, SILENCE);
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#rooms.clear();
  }

  #tick(): void {
    const now = performance.now();
    for (const [roomId, speakers] of this.#rooms) {
      for (const [participantId, s] of speakers) {
        const idle = now - s.lastMs;
        if (idle > FORGET_AFTER_MS) {
          speakers.delete(participantId);
          if (s.speaking) this.#send(roomId, participantId, false, SILENCE);
        } else if (idle > IDLE_AFTER_MS) {
          // No reports: the client fell silent (it reports only sound). Decay by the time that passed.
          smooth(s, -SILENCE, Math.min(now - s.smoothedAtMs, TICK_MS));
          s.smoothedAtMs = now;
          this.#update(roomId, participantId, s);
        }
      }
      if (speakers.size === 0) this.#rooms.delete(roomId);
    }
    if (this.#rooms.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #update(roomId: string, participantId: string, s: Speaker): void {
    const next = s.speaking ? s.dbov >= OFF_DBOV : s.dbov >= ON_DBOV;
    if (next === s.speaking) return;
    s.speaking = next;
    this.#send(roomId, participantId, next, Math.round(-s.dbov));
  }

  #send(roomId: string, participantId: string, speaking: boolean, level: number): void {
    if (!this.#ctx.presence.participant(roomId, participantId)) return;
    this.#ctx.presence.setSpeaking(roomId, participantId, speaking);
    this.#ctx.out.publishEphemeral(roomId, { op: 'speaking', room: roomId, participantId, speaking, level: linearLevel(level) });
  }
}

/** First-order low-pass in the dB domain with a time-based coefficient. */
function smooth(s: Speaker, dbov: number, dtMs: number): void {
  const dt = dtMs > 0 ? dtMs : 0;
  s.dbov += (dt / (SMOOTHING_MS + dt)) * (dbov - s.dbov);
}

/** RFC 6464 level (−dBov) → the protocol's linear 0…1 scale (`speaking.level`), as media rooms send it. */
function linearLevel(level: number): number {
  if (level >= SILENCE) return 0;
  return Math.round(10 ** (-level / 20) * 1000) / 1000;
}
