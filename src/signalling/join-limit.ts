import type { VoxConfig } from '../config.ts';
import type { Session } from './session.ts';
import { takeToken } from './token-bucket.ts';

/**
 * The join rate limit (`limits.joinsPerMinute`, burst `limits.joinBurst`): every `join` a session
 * sends takes a token from the session's own bucket, so a client that joins and leaves in a loop
 * is refused (JOIN_RATE_LIMITED with `retryAfterMs`) while everyone else in its rooms goes on.
 * Each join costs a presence change, a broadcast to the room and a media peer on a worker; the
 * message rate limit (inbound.ts) alone would let 50 of them through per second.
 *
 * The bucket lives on the Session, made at its first join (sessions that never join pay nothing).
 * A resume reattaches the same Session to the new connection, so the bucket carries over as it
 * is: the message limiter keeps its state per connection and has to save it into the session at
 * the drop and cut the new connection's bucket to it at the resume (sessions.ts saveBucket /
 * restoreBucket); this one has nothing to carry. Reconnecting never buys a fresh burst.
 *
 * Returns 0 when the join may go ahead (its token taken), else the milliseconds until the bucket
 * holds a token again.
 */
export function takeJoin(session: Session, limits: VoxConfig['limits'], now: number): number {
  const ratePerMs = limits.joinsPerMinute / 60_000;
  const bucket = (session.joins ??= { tokens: limits.joinBurst, tokensAt: now });
  if (takeToken(bucket, now, ratePerMs, limits.joinBurst)) return 0;
  return Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs));
}
