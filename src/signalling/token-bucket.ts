/** A token bucket's state: tokens left and when they were last refilled (ms). */
export interface BucketState {
  tokens: number;
  tokensAt: number;
}

/**
 * Token bucket arithmetic: `ratePerMs` tokens refill up to `burst`; a message takes one. On any
 * object with the two fields, so per-connection state can hold them flat (no bucket object per
 * connection, signalling/connections.ts); time comes from the caller, so the hot path does one
 * subtraction and no allocation.
 */
export function takeToken(bucket: BucketState, now: number, ratePerMs: number, burst: number): boolean {
  const elapsed = now - bucket.tokensAt;
  if (elapsed > 0) {
    bucket.tokens = Math.min(burst, bucket.tokens + elapsed * ratePerMs);
    bucket.tokensAt = now;
  }
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

/** A standalone bucket: `ratePerSec` tokens per second refill up to `burst` (e.g. per address). */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #state: BucketState;

  constructor(ratePerSec: number, burst: number, now: number) {
    this.#ratePerMs = ratePerSec / 1000;
    this.#burst = burst;
    this.#state = { tokens: burst, tokensAt: now };
  }

  take(now: number): boolean {
    return takeToken(this.#state, now, this.#ratePerMs, this.#burst);
  }
}
