/**
 * The soak's process-level chaos, on VoxLink as deployed: `src/main.ts` started the way `npm start`
 * starts it (its own process, a JSON config file, `--max-semi-space-size=2`), a tone room of SDK
 * clients (media-load.ts) recording, then
 * 1. SIGTERM: the clients must be told to go away and come back (close 1001, resumable), the
 *    running recordings closed valid (EOS page, opusinfo clean, as long as they ran), and the
 *    process must exit within its shutdown budget (SHUTDOWN_BUDGET_MS, main.ts);
 * 2. restart: the same clients reconnect by themselves; time until everyone hears everyone;
 * 3. kill -9 while recording: the files must be valid up to the last flushed second (opusinfo
 *    reads them; at most FLUSH_SEC + slack of audio lost before the kill);
 * 4. restart again: the clients come back by themselves.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readOggOpus } from '../../src/codec/ogg.ts';
import { powerAt } from '../../test/codec/signal.ts';
import { decodeRecordingFile } from '../../test/recording/decode.ts';
import { BENCH_SECRET } from '../signalling/secret.ts';
import type { MediaLoadReport } from './ipc.ts';
import type { Child } from './spawn.ts';
import type { MediaLoadToParent } from './ipc.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
/** main.ts exits at the latest this long after SIGTERM (its shutdown timer, without a cluster). */
export const SHUTDOWN_BUDGET_MS = 5000;
/** Recorders flush at least every second (docs/recording.md); a crash may lose that much. */
const FLUSH_SEC = 1;
const TONES = [440, 660, 880];

export interface RecordingCheck {
  file: string;
  opusinfoOk: boolean;
  opusinfo: string;
  ended: boolean;
  seconds: number;
  /** Seconds of wall time the recording ran (start → stop or kill) minus the file's length. */
  missingSec: number;
  /** The decoded last half second carries one of the publishers' tones. */
  toneAtEnd: boolean;
}

export interface ChaosReport {
  sigterm: {
    exitMs: number | null;
    exitCode: number | null;
    budgetMs: number;
    /** Close codes the clients saw, and whether they went to `reconnecting` (told to come back). */
    clientCloses: Record<string, number>;
    clientsReconnecting: number;
    recordings: RecordingCheck[];
    restartAudioBackMs: number | null;
  };
  kill9: {
    recordings: RecordingCheck[];
    restartAudioBackMs: number | null;
  };
  clientErrors: Record<string, number>;
  ok: boolean;
}

export type Spawner = <O>(file: string, args: string[]) => Child<O>;

function checkRecordings(dir: string, ids: string[], wallSec: number, expectEnded: boolean): RecordingCheck[] {
  const out: RecordingCheck[] = [];
  for (const id of ids) {
    const folder = join(dir, id);
    if (!existsSync(folder)) continue;
    for (const f of readdirSync(folder).filter((x) => x.endsWith('.opus'))) {
      const path = join(folder, f);
      const info = spawnSync('opusinfo', [path], { encoding: 'utf8' });
      const text = `${info.stdout}${info.stderr}`;
      // opusinfo says WARNING/ERROR for broken pages, bad CRCs, holes; a crashed file only lacks its EOS page.
      const problems = text.split('\n').filter((l) => /WARNING|ERROR/i.test(l) && !(!expectEnded && /EOS not set/.test(l)));
      const file = readOggOpus(readFileSync(path));
      const { pcm } = decodeRecordingFile(path);
      const last = pcm.subarray(Math.max(0, pcm.length - 24_000));
      out.push({
        file: `${id}/${f}`,
        // opusinfo exits 1 on its "EOS not set" warning, the one thing a crashed file may lack.
        opusinfoOk: problems.length === 0 && (info.status === 0 || !expectEnded),
        opusinfo: problems.join('; ') || (text.match(/Playback length: .*/)?.[0] ?? ''),
        ended: file.ended,
        seconds: Math.round((file.granule / 48_000) * 100) / 100,
        missingSec: Math.round((wallSec - file.granule / 48_000) * 100) / 100,
        toneAtEnd: TONES.some((f0) => powerAt(last, 48_000, f0) > 0.01),
      });
    }
  }
  return out;
}

async function healthy(base: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export async function runChaos(spawnLoad: Spawner, port: number, rtcMinPort: number, log: (s: string) => void): Promise<ChaosReport> {
  const dataDir = mkdtempSync(join(tmpdir(), 'voxlink-soak-chaos-'));
  const recordingDir = join(dataDir, 'recordings');
  const configFile = join(dataDir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      server: { host: '127.0.0.1', port },
      dataDir,
      auth: { hs256Secret: BENCH_SECRET },
      media: { workers: 2, announcedIp: '127.0.0.1', listenIp: '127.0.0.1', rtcMinPort, rtcMaxPort: rtcMinPort + 99 },
      log: { level: 'warn' },
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  const start = async (): Promise<{ proc: ChildProcess; readyAt: number }> => {
    const proc = spawn(process.execPath, ['--max-semi-space-size=2', '--import', 'tsx', join(root, 'src', 'main.ts')], {
      cwd: root,
      env: { ...process.env, VOXLINK_CONFIG: configFile },
      stdio: ['ignore', process.env.SOAK_DEBUG ? 'inherit' : 'ignore', 'inherit'],
    });
    // Never outlive the soak, whatever happens to it.
    const kill = () => proc.kill('SIGKILL');
    process.once('exit', kill);
    proc.once('exit', () => process.off('exit', kill));
    if (!(await healthy(base, 60_000))) throw new Error('chaos: main.ts did not become healthy');
    return { proc, readyAt: Date.now() };
  };
  const exited = (proc: ChildProcess): Promise<number | null> =>
    proc.exitCode !== null ? Promise.resolve(proc.exitCode) : new Promise((r) => proc.once('exit', (code) => r(code)));

  let server = await start();
  const tones = spawnLoad<MediaLoadToParent>('media-load.ts', [`ws://127.0.0.1:${port}/ws`, '1', '3', 'chaos']);
  const ready = await tones.next((m) => m.type === 'ready', 120_000, 'chaos tone room');
  log(`chaos: tone room up (everyone hears everyone: ${ready.type === 'ready' && ready.hearing})`);
  const record = async (action: 'start' | 'stop'): Promise<string[]> => {
    tones.proc.send({ type: 'record', action });
    const m = await tones.next((x) => x.type === 'recording', 30_000, `record ${action}`);
    if (m.type !== 'recording' || m.error) throw new Error(`chaos: record ${action} failed: ${m.type === 'recording' ? m.error : ''}`);
    return m.ids.filter((x): x is string => x !== null);
  };
  const report = async (): Promise<MediaLoadReport> => {
    tones.proc.send({ type: 'report' });
    const m = await tones.next((x) => x.type === 'report', 30_000, 'report');
    if (m.type !== 'report') throw new Error('unreachable');
    return structuredClone(m.report);
  };
  const recovered = async (event: string, at: number): Promise<number | null> => {
    tones.proc.send({ type: 'recover', event, at });
    await tones.next((x) => x.type === 'recovered' && x.event === event, 60_000, `recovery ${event}`);
    if (process.env.SOAK_DEBUG) console.log(JSON.stringify(await report()));
    return (await report()).recoveries.find((r) => r.event === event)?.audioBackMs ?? null;
  };

  // 1. SIGTERM while recording.
  const ids1 = await record('start');
  const recStart1 = Date.now();
  await new Promise((r) => setTimeout(r, 4000));
  const before = await report();
  const termAt = Date.now();
  server.proc.kill('SIGTERM');
  const exitCode = await Promise.race([exited(server.proc), new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
  const exitMs = exitCode === null ? null : Date.now() - termAt;
  const wall1 = (termAt - recStart1) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  const afterTerm = await report();
  const closes: Record<string, number> = {};
  for (const [k, v] of Object.entries(afterTerm.closes)) closes[k] = v - (before.closes[k] ?? 0);
  const sigtermRecordings = checkRecordings(recordingDir, ids1, wall1, true);
  log(`chaos: SIGTERM → exit ${exitCode} in ${exitMs} ms; client closes ${JSON.stringify(closes)}; ${sigtermRecordings.length} files`);

  // 2. Restart: the clients come back by themselves.
  server = await start();
  const restart1 = await recovered('restart-after-sigterm', server.readyAt);
  log(`chaos: restarted; audio back ${restart1} ms after the server was healthy`);

  // 3. kill -9 while recording.
  const ids2 = await record('start');
  const recStart2 = Date.now();
  await new Promise((r) => setTimeout(r, 4500));
  const killAt = Date.now();
  server.proc.kill('SIGKILL');
  await exited(server.proc);
  const kill9Recordings = checkRecordings(recordingDir, ids2, (killAt - recStart2) / 1000, false);
  log(`chaos: kill -9; ${kill9Recordings.length} files, missing ${kill9Recordings.map((r) => r.missingSec).join(', ')} s`);

  // 4. Restart again.
  server = await start();
  const restart2 = await recovered('restart-after-kill9', server.readyAt);
  log(`chaos: restarted after kill -9; audio back ${restart2} ms after the server was healthy`);
  const final = await report();
  tones.proc.send({ type: 'stop' });
  await tones.next((x) => x.type === 'report', 30_000, 'stop');
  server.proc.kill('SIGTERM');
  await exited(server.proc);

  const clientsReconnecting = afterTerm.states.reconnecting - (before.states.reconnecting ?? 0);
  const recordingsOk = (rs: RecordingCheck[], maxMissing: number) =>
    rs.length > 0 && rs.every((r) => r.opusinfoOk && r.toneAtEnd && r.missingSec <= maxMissing && r.missingSec >= -0.5);
  const result: ChaosReport = {
    sigterm: {
      exitMs,
      exitCode,
      budgetMs: SHUTDOWN_BUDGET_MS,
      clientCloses: closes,
      clientsReconnecting: Number.isFinite(clientsReconnecting) ? clientsReconnecting : 0,
      recordings: sigtermRecordings,
      restartAudioBackMs: restart1,
    },
    kill9: { recordings: kill9Recordings, restartAudioBackMs: restart2 },
    clientErrors: final.errors,
    ok: false,
  };
  result.ok =
    exitCode === 0 &&
    exitMs !== null &&
    exitMs <= SHUTDOWN_BUDGET_MS &&
    (closes['1001'] ?? 0) === 3 &&
    recordingsOk(sigtermRecordings, 0.5) &&
    sigtermRecordings.every((r) => r.ended) &&
    recordingsOk(kill9Recordings, FLUSH_SEC + 0.5) &&
    restart1 !== null &&
    restart2 !== null;
  return result;
}
