/** Forks a soak process (server or load) with tsx, and awaits its IPC messages by predicate. */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export interface Child<O> {
  proc: ChildProcess;
  /** The next message matching `pred` (queued ones first); rejects after `timeoutMs`. */
  next(pred: (m: O) => boolean, timeoutMs: number, what: string): Promise<O>;
}

/** Descriptors a soak process asks for: the server holds one per client (20 000 + 2 000 in the full run). */
export const WANT_OPEN_FILES = 65_536;

/**
 * `ulimit -n` is per process and Node cannot raise its own, so each child starts through `sh`, which
 * raises the soft limit (to WANT_OPEN_FILES, or at least to the hard limit) and then execs node
 * with the IPC channel intact. deploy/voxlink.service sets LimitNOFILE the same way.
 */
const RAISE_LIMIT = `ulimit -n ${WANT_OPEN_FILES} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec`;

/**
 * Niceness of the busy load generators (churn, fuzz, datagrams). They stand for clients on other
 * machines: on this host they share its 2 cores with the servers under test, and at the same
 * priority they took the CPU the media server's recovery needed (audio back after a worker kill:
 * 0.6–0.8 s in the quick run, 1.7–3.9 s in the full one). At lower priority they use what the
 * servers leave; the report's `cpuSeconds` says what each side got. The idle clients keep the
 * default priority: they cost little and their heartbeats are the latency samples, which a starved
 * client would inflate with its own scheduling delay.
 */
export const LOAD_NICE = 10;

/** The soft open-files limit of a running process (Linux), or null where /proc is not there. */
export function openFilesLimit(pid: number): number | null {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined ? null : soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return null;
  }
}

export function spawnChild<O>(file: string, args: string[], execArgv: string[] = [], env: Record<string, string> = {}, nice = 0): Child<O> {
  const script = nice > 0 ? `${RAISE_LIMIT} nice -n ${nice} "$0" "$@"` : `${RAISE_LIMIT} "$0" "$@"`;
  const proc = fork(join(here, file), args, {
    execPath: '/bin/sh',
    execArgv: ['-c', script, process.execPath, '--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
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

/** User + system CPU seconds a running process (all its threads) has used so far (Linux /proc), or null. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5) (utime, stime), counted from the state field (3): indexes 11, 12;
    // in clock ticks, 100 per second on Linux (USER_HZ, `getconf CLK_TCK`).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}
