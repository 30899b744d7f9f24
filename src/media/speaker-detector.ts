import { AUDIO_LEVEL_SILENCE } from './rtp.ts';

export interface SpeakerDetectorOptions {
  /** Time constant of the exponential smoothing of the level, in ms. Longer = steadier, slower. Default 250. */
  smoothingMs?: number;
  /** Smoothed level (dBov) at which a participant starts speaking. Default -50. */
  speakingOnDbov?: number;
  /** Smoothed level (dBov) below which a speaking participant stops. Default -60 (10 dB hysteresis). */
  speakingOffDbov?: number;
  /** How many dB a challenger must be louder than an incumbent of the top places to take its place. Default 6. */
  switchMarginDb?: number;
  /** A participant who just entered the top places keeps the incumbent bonus at least this long. Default 600. */
  minHoldMs?: number;
  /**
   * No packet for this long counts as silence (DTX, mute, loss): the level decays. Default 300,
   * above usual network jitter so a burst of late packets does not drop a speaker.
   */
  idleAfterMs?: number;
  /** No packet for this long removes the participant from the ranking. Default 2000. */
  forgetAfterMs?: number;
}

export interface SpeakerState {
  participantId: string;
  /** Smoothed level in dBov (0 loudest, -127 silence). */
  dbov: number;
  speaking: boolean;
}

export interface SpeakingChange {
  participantId: string;
  speaking: boolean;
  /** RFC 6464 scale: 0 = 0 dBov … 127 = silence. */
  level: number;
}

interface Speaker {
  id: string;
  dbov: number;
  lastMs: number;
  /** Time up to which the smoothing has accounted (packets or idle decay). */
  smoothedAtMs: number;
  speaking: boolean;
  /** The incumbent bonus lasts at least until then. */
  holdUntilMs: number;
  score: number;
}

/**
 * Ranks participants by loudness from RFC 6464 client-to-mixer audio levels (RFC 6464 §3: the
 * level is -dBov, 0–127). Levels are smoothed exponentially in the dB domain; "speaking" has
 * on/off thresholds (hysteresis), and the ranking gives the current top places a margin and a
 * minimum hold, so two similar voices don't swap slots every packet.
 *
 * Pure processor: `process()` per packet, `tick()` a few times a second, `ranking()` to read.
 */
export class SpeakerDetector {
  readonly #tauMs: number;
  readonly #onDbov: number;
  readonly #offDbov: number;
  readonly #marginDb: number;
  readonly #minHoldMs: number;
  readonly #idleAfterMs: number;
  readonly #forgetAfterMs: number;
  readonly #speakers = new Map<string, Speaker>();
  #ranking: Speaker[] = [];
  #rankingIds: string[] = [];
  #stickyPlaces = 1;
  #changes: SpeakingChange[] = [];
  #packets = 0;
  #rankChanges = 0;
  #lastTickMs = Number.NaN;

  constructor(options: SpeakerDetectorOptions = {}) {
    this.#tauMs = options.smoothingMs ?? 250;
    this.#onDbov = options.speakingOnDbov ?? -50;
    this.#offDbov = options.speakingOffDbov ?? -60;
    this.#marginDb = options.switchMarginDb ?? 6;
    this.#minHoldMs = options.minHoldMs ?? 600;
    this.#idleAfterMs = options.idleAfterMs ?? 300;
    this.#forgetAfterMs = options.forgetAfterMs ?? 2000;
  }

  /** How many top places get the incumbent margin (the router sets K + 1: one may be the subscriber). */
  set stickyPlaces(places: number) {
    this.#stickyPlaces = Math.max(1, places | 0);
  }

  /**
   * One packet's RFC 6464 level (0–127) from `participantId` at `nowMs`, describing `durationMs`
   * of audio (20 ms for WebRTC Opus). Returns true when speaking flipped.
   */
  process(participantId: string, level: number, nowMs: number, durationMs = 20): boolean {
    this.#packets++;
    let s = this.#speakers.get(participantId);
    const dbov = -(level < 0 ? AUDIO_LEVEL_SILENCE : level > AUDIO_LEVEL_SILENCE ? AUDIO_LEVEL_SILENCE : level);
    if (s === undefined) {
      s = { id: participantId, dbov, lastMs: nowMs, smoothedAtMs: nowMs, speaking: false, holdUntilMs: 0, score: dbov };
      this.#speakers.set(participantId, s);
      this.#ranking.push(s);
      return this.#updateSpeaking(s);
    }
    // Weigh by the audio the packet carries, not by arrival spacing: a burst of queued packets is
    // as much speech as the same packets spread out.
    this.#smooth(s, dbov, durationMs);
    s.lastMs = nowMs;
    s.smoothedAtMs = nowMs;
    return this.#updateSpeaking(s);
  }

  /**
   * Decays idle participants, forgets silent ones and re-ranks. Returns true when the ranking's
   * order changed. Call every 50–200 ms.
   */
  tick(nowMs: number): boolean {
    // A late tick means this thread was stalled: the packets of that time are still queued in the
    // socket, unread, so their absence is not silence. Skip the idle decay once.
    const stalled = nowMs - this.#lastTickMs > STALL_MS;
    this.#lastTickMs = nowMs;
    let removed = false;
    for (const s of this.#speakers.values()) {
      const idle = nowMs - s.lastMs;
      if (idle > this.#forgetAfterMs) {
        this.#speakers.delete(s.id);
        if (s.speaking) this.#changes.push({ participantId: s.id, speaking: false, level: AUDIO_LEVEL_SILENCE });
        removed = true;
      } else if (idle > this.#idleAfterMs && !stalled) {
        // No packets (DTX or loss) means no sound: let the level fall as if silence arrived, by at
        // most one step's worth per tick so a long gap cannot drop a speaker in a single tick.
        this.#smooth(s, -AUDIO_LEVEL_SILENCE, Math.min(nowMs - s.smoothedAtMs, MAX_DECAY_STEP_MS));
        s.smoothedAtMs = nowMs;
        this.#updateSpeaking(s);
      }
    }
    if (removed) this.#ranking = this.#ranking.filter((s) => this.#speakers.has(s.id));
    return this.#rerank(nowMs) || removed;
  }

  /** Participant ids, loudest (with hysteresis) first. Stable between ticks. */
  ranking(): readonly string[] {
    return this.#rankingIds;
  }

  remove(participantId: string): void {
    if (!this.#speakers.delete(participantId)) return;
    this.#ranking = this.#ranking.filter((s) => s.id !== participantId);
    this.#rankingIds = this.#ranking.map((s) => s.id);
  }

  isSpeaking(participantId: string): boolean {
    return this.#speakers.get(participantId)?.speaking ?? false;
  }

  /** Smoothed level on the RFC 6464 scale (0 loudest … 127 silence). */
  level(participantId: string): number {
    const s = this.#speakers.get(participantId);
    return s === undefined ? AUDIO_LEVEL_SILENCE : Math.round(-s.dbov);
  }

  /** Speaking flips since the last call, oldest first. */
  takeSpeakingChanges(): SpeakingChange[] {
    if (this.#changes.length === 0) return EMPTY;
    const out = this.#changes;
    this.#changes = [];
    return out;
  }

  toJSON(): { packets: number; rankChanges: number; speakers: SpeakerState[] } {
    return {
      packets: this.#packets,
      rankChanges: this.#rankChanges,
      speakers: this.#ranking.map((s) => ({ participantId: s.id, dbov: Math.round(s.dbov * 10) / 10, speaking: s.speaking })),
    };
  }

  #smooth(s: Speaker, dbov: number, dtMs: number): void {
    // First-order low-pass with a time-based coefficient: packets weigh by the audio they carry
    // (20 ms, 60 ms frames), idle decay by the time that passed.
    const dt = dtMs > 0 ? dtMs : 0;
    const a = dt / (this.#tauMs + dt);
    s.dbov += a * (dbov - s.dbov);
  }

  #updateSpeaking(s: Speaker): boolean {
    const next = s.speaking ? s.dbov >= this.#offDbov : s.dbov >= this.#onDbov;
    if (next === s.speaking) return false;
    s.speaking = next;
    this.#changes.push({ participantId: s.id, speaking: next, level: Math.round(-s.dbov) });
    return true;
  }

  #rerank(nowMs: number): boolean {
    const ranking = this.#ranking;
    const sticky = Math.min(this.#stickyPlaces, ranking.length);
    for (let i = 0; i < ranking.length; i++) {
      const s = ranking[i];
      const incumbent = i < sticky || s.holdUntilMs > nowMs;
      s.score = s.dbov + (incumbent ? this.#marginDb : 0);
    }
    // Insertion sort: the order barely changes between ticks, so this is near O(n).
    let changed = false;
    for (let i = 1; i < ranking.length; i++) {
      const s = ranking[i];
      let j = i - 1;
      while (j >= 0 && ranking[j].score < s.score) {
        ranking[j + 1] = ranking[j];
        j--;
      }
      if (j !== i - 1) {
        ranking[j + 1] = s;
        changed = true;
      }
    }
    if (changed || this.#rankingIds.length !== ranking.length) {
      const top = sticky;
      for (let i = 0; i < top; i++) {
        const s = ranking[i];
        const before = this.#rankingIds.indexOf(s.id);
        if (before < 0 || before >= top) s.holdUntilMs = nowMs + this.#minHoldMs;
      }
      this.#rankingIds = ranking.map((s) => s.id);
      this.#rankChanges++;
      return true;
    }
    return false;
  }
}

const EMPTY: SpeakingChange[] = [];
/** Ticks further apart than this mean the thread was stalled (the room ticks every ~100 ms). */
const STALL_MS = 400;
/** The most idle time one tick's decay accounts for. */
const MAX_DECAY_STEP_MS = 200;
