/**
 * Drift-free 20 ms clock for room mixers. Tick n is scheduled at `start + n·period` (never "20 ms
 * after the last one", which is how setInterval drifts), so a slow tick delays the next one's start
 * but not the timeline. A tick that starts more than `lateToleranceMs` after its slot is counted
 * late; when the clock falls more than `maxCatchUpTicks` behind (a stalled event loop), it jumps to
 * the present and counts the ticks it dropped, instead of running a burst of stale frames.
 */

export interface MixClockOptions {
  /** Default 20 ms (one Opus frame). */
  periodMs?: number;
  /** A tick starting later than this after its slot counts as late (default 10 ms = half a frame). */
  lateToleranceMs?: number;
  /** Ticks run back to back to catch up before the clock skips (default 5). */
  maxCatchUpTicks?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
  /**
   * Called with the number of ticks the clock jumped over (never run), before the next tick runs,
   * so the owner can move its RTP timestamps across the pause (RoomMixer.skip).
   */
  onSkip?: (ticks: number) => void;
}

export interface MixClockStats {
  ticks: number;
  lateTicks: number;
  skippedTicks: number;
  maxLatenessMs: number;
  /** Time spent inside the tick callback, summed. */
  busyMs: number;
}

export class MixClock {
  readonly periodMs: number;
  readonly #lateToleranceMs: number;
  readonly #maxCatchUp: number;
  readonly #now: () => number;
  readonly #onTick: (tick: number, latenessMs: number) => void;
  readonly #onSkip: ((ticks: number) => void) | undefined;
  #start = 0;
  #n = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #stats: MixClockStats = { ticks: 0, lateTicks: 0, skippedTicks: 0, maxLatenessMs: 0, busyMs: 0 };
  readonly #run = (): void => this.#fire();

  constructor(onTick: (tick: number, latenessMs: number) => void, options: MixClockOptions = {}) {
    this.#onTick = onTick;
    this.periodMs = options.periodMs ?? 20;
    this.#lateToleranceMs = options.lateToleranceMs ?? 10;
    this.#maxCatchUp = options.maxCatchUpTicks ?? 5;
    this.#now = options.now ?? (() => performance.now());
    this.#onSkip = options.onSkip;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#start = this.#now();
    this.#n = 0;
    this.#schedule();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  get running(): boolean {
    return this.#running;
  }

  #schedule(): void {
    const due = this.#start + this.#n * this.periodMs;
    this.#timer = setTimeout(this.#run, Math.max(0, due - this.#now()));
  }

  #fire(): void {
    if (!this.#running) return;
    const st = this.#stats;
    let now = this.#now();
    // Run every tick that is due (catching up after a slow one), within the catch-up bound.
    for (;;) {
      const due = this.#start + this.#n * this.periodMs;
      if (due > now) break;
      const lateness = now - due;
      if (lateness > this.#maxCatchUp * this.periodMs) {
        const skip = Math.floor(lateness / this.periodMs);
        this.#n += skip;
        st.skippedTicks += skip;
        st.lateTicks += skip;
        this.#onSkip?.(skip);
        continue;
      }
      if (lateness > this.#lateToleranceMs) st.lateTicks++;
      if (lateness > st.maxLatenessMs) st.maxLatenessMs = lateness;
      this.#onTick(this.#n, lateness);
      this.#n++;
      st.ticks++;
      const after = this.#now();
      st.busyMs += after - now;
      now = after;
      if (!this.#running) return;
    }
    this.#schedule();
  }

  toJSON(): MixClockStats {
    return { ...this.#stats, maxLatenessMs: Math.round(this.#stats.maxLatenessMs * 100) / 100, busyMs: Math.round(this.#stats.busyMs) };
  }
}
