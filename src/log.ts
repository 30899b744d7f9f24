import { pino, type Logger } from 'pino';

/**
 * One structured logger for the process: JSON lines (pino), level from VOXLINK_LOG_LEVEL
 * (default `info`; the test config sets `silent`). Never log tokens, secrets or credentials.
 */
const level = process.env.VOXLINK_LOG_LEVEL ?? 'info';

export const rootLogger: Logger = pino({
  level,
  base: { pid: process.pid },
  redact: { paths: ['token', '*.token', 'secret', '*.secret', 'credential', '*.credential'], remove: true },
});

export function logger(component: string): Logger {
  return rootLogger.child({ component });
}

export type { Logger };
