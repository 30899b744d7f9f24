/**
 * When (and whether) the SDK retries a dropped signalling connection. LiveKit's
 * `ReconnectPolicy.nextRetryDelayInMs(context)` is the model: a small strategy interface with
 * a default, so apps can plug in their own (e.g. "retry forever while the tab is visible").
 */
export interface ReconnectContext {
  /** 0 for the first retry after a drop, then 1, 2, ... */
  readonly retryCount: number;
  /** Milliseconds since the connection was lost. */
  readonly elapsedMs: number;
  /** Why the last attempt ended (close code / reason / error message), for logging and policies. */
  readonly reason: string;
  readonly url: string;
}

export interface ReconnectPolicy {
  /** Delay before the next attempt, or `null` to give up (the client then goes to `failed`). */
  nextRetryDelayMs(context: ReconnectContext): number | null;
}

export interface BackoffOptions {
  /** First backoff window; attempt n waits in [0, min(maxDelayMs, initialDelayMs * 2^n)]. Default 250 ms. */
  initialDelayMs?: number;
  /** Cap on one wait, so a long outage does not leave clients asleep for minutes. Default 10 000 ms. */
  maxDelayMs?: number;
  /** Give up once the connection has been down this long. Default 5 min (past any resume grace period). */
  maxElapsedMs?: number;
  /** Injectable randomness in [0, 1) for tests; default `Math.random`. */
  random?: () => number;
}

/**
 * Exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff and
 * Jitter", 2015): the wait is uniform in [0, window], so after a server restart thousands of
 * clients spread their reconnects instead of arriving in synchronized waves.
 */
export class ExponentialBackoffPolicy implements ReconnectPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxElapsedMs: number;
  readonly #random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialDelayMs = options.initialDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    this.maxElapsedMs = options.maxElapsedMs ?? 5 * 60_000;
    this.#random = options.random ?? Math.random;
    if (!(this.initialDelayMs > 0) || !(this.maxDelayMs >= this.initialDelayMs) || !(this.maxElapsedMs >= 0)) {
      throw new RangeError('ExponentialBackoffPolicy: need 0 < initialDelayMs <= maxDelayMs and maxElapsedMs >= 0');
    }
  }

  nextRetryDelayMs(context: ReconnectContext): number | null {
    if (context.elapsedMs >= this.maxElapsedMs) return null;
    // Clamp the exponent so 2^n never overflows to Infinity on very long outages.
    const window = Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** Math.min(context.retryCount, 30));
    const delay = Math.floor(this.#random() * window);
    // Never sleep past the give-up deadline.
    return Math.min(delay, Math.max(0, this.maxElapsedMs - context.elapsedMs));
  }
}

/** Never retry: useful for tests and for apps that drive reconnection themselves. */
export const noReconnect: ReconnectPolicy = { nextRetryDelayMs: () => null };
