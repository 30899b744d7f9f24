/**
 * `npm run bench -- <name> [--quick]`: runs bench/<name>/index.ts, which writes
 * bench/results/<name>.json and bench/results/<name>.md (with --quick: bench/results/quick/, which
 * is not committed, so a quick run never replaces a full one). With no name, runs them all.
 * Standalone benches that live beside another one are listed in EXTRA (name → script).
 */
import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const names = args.filter((a) => !a.startsWith('--'));
const flags = args.filter((a) => a.startsWith('--'));
/** `srtp`: the SRTP engine microbench (docs/srtp.md); `send-path`: one forwarded packet's send, werift vs the fast path (docs/media.md). */
const EXTRA: Record<string, string> = { srtp: join('forwarding', 'srtp.ts'), 'send-path': join('forwarding', 'send-path.ts') };
const scripts = new Map<string, string>(
  readdirSync(here, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'index.ts')))
    .map((d) => [d.name, join(here, d.name, 'index.ts')]),
);
for (const [name, script] of Object.entries(EXTRA)) scripts.set(name, join(here, script));
const available = [...scripts.keys()];

const unknown = names.filter((n) => !available.includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const name of names.length > 0 ? names : available) {
  console.log(`\n== bench ${name} ${flags.join(' ')}`);
  // Each benchmark gets a fresh process so one's JIT state and heap do not colour the next.
  const run = spawnSync(process.execPath, ['--import', 'tsx', scripts.get(name)!, ...flags], {
    stdio: 'inherit',
  });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
