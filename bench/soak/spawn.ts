/** Forks a soak process (server or load) with tsx, and awaits its IPC messages by predicate. */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export interface Child<O> {
  proc: ChildProcess;
  /** The next message matching `pred` (queued ones first); rejects after `timeoutMs`. */
  next(pred: (m: O) => boolean, timeoutMs: number, what: string): Promise<O>;
}

export function spawnChild<O>(file: string, args: string[], execArgv: string[] = [], env: Record<string, string> = {}): Child<O> {
  const proc = fork(join(here, file), args, { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  const queue: O[] = [];
  const waiters: { pred: (m: O) => boolean; resolve: (m: O) => void }[] = [];
  proc.on('message', (m) => {
    const i = waiters.findIndex((w) => w.pred(m as O));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m as O);
    else {
      // Unclaimed periodic messages (memory samples) must not pile up: the oldest go first.
      queue.push(m as O);
      if (queue.length > 1000) queue.shift();
    }
  });
  return {
    proc,
    next(pred, timeoutMs, what) {
      const i = queue.findIndex(pred);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} from ${file}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
}
