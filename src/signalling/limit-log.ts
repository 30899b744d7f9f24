import { logger } from '../log.ts';
import type { Session } from './session.ts';

const log = logger('signalling');

/**
 * Warnings about limits (rate, backpressure, room full, zombies), logged once and counted always:
 * once per kind per session, and kinds without a session (no hello yet) at most once per minute
 * server-wide, so a flood cannot flood the log too.
 */
export class LimitLog {
  readonly #serverLoggedAt = new Map<string, number>();

  warn(session: Session | null, kind: string, fields: Record<string, unknown>, msg: string): void {
    if (session) {
      if (session.logged?.has(kind)) return;
      (session.logged ??= new Set()).add(kind);
    } else {
      const now = Date.now();
      if (now - (this.#serverLoggedAt.get(kind) ?? -Infinity) < 60_000) return;
      this.#serverLoggedAt.set(kind, now);
    }
    log.warn({ kind, sessionId: session?.id, userId: session?.identity.userId, ...fields }, msg);
  }
}
