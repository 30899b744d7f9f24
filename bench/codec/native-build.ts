/**
 * Builds native libopus from the same tarball as wasm/opus.wasm (via `./emsdk-build.sh --fetch`)
 * with the system C compiler and libopus's default configure (runtime CPU dispatch on x86), plus
 * bench/codec/native-harness.c, into .cache/native-opus/. Cached: rebuilt only when the harness
 * source changes or the library is missing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

export interface NativeOpus {
  harness: string;
  compiler: string;
}

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${(result.stderr || result.stdout || '').slice(-2000)}`);
  }
  return result.stdout;
}

/** Returns the harness path, or a reason string when no C compiler is available. */
export function ensureNativeOpus(root: string, log: (line: string) => void): NativeOpus | string {
  const cc = process.env.CC ?? 'gcc';
  const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) return `no C compiler (${cc} --version failed)`;
  const compiler = probe.stdout.split('\n')[0];
  const dir = join(root, '.cache', 'native-opus');
  const harnessSource = join(root, 'bench', 'codec', 'native-harness.c');
  const harness = join(dir, 'native-harness');
  const stamp = join(dir, 'harness.sha256');
  const digest = createHash('sha256').update(readFileSync(harnessSource)).digest('hex');
  const srcDir = join(dir, 'opus-1.5.2');
  const lib = join(srcDir, '.libs', 'libopus.a');
  if (!existsSync(lib)) {
    log('building native libopus 1.5.2 (./configure && make, once) into .cache/native-opus/');
    const tarball = run(join(root, 'emsdk-build.sh'), ['--fetch'], root).trim().split('\n').pop() ?? '';
    if (!existsSync(tarball)) throw new Error(`emsdk-build.sh --fetch printed ${tarball}, which does not exist`);
    rmSync(srcDir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    run('tar', ['xzf', tarball, '-C', dir], root);
    // Library build flags are libopus's defaults; docs and demo programs are skipped (not timed).
    run('./configure', ['--disable-shared', '--disable-doc', '--disable-extra-programs'], srcDir);
    run('make', ['-j2'], srcDir);
  }
  if (!existsSync(harness) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== digest) {
    run(cc, ['-O2', '-I', join(srcDir, 'include'), harnessSource, lib, '-lm', '-o', harness], root);
    writeFileSync(stamp, digest);
  }
  return { harness, compiler };
}
