// Runs one of Opus's test programs, built by `emsdk-build.sh --conformance` as a
// standalone (WASI) wasm, under Node's node:wasi, and exits with its exit code.
//
//   node wasm/tools/wasi-run.mjs tests/test_opus_api [args...]
//
// automake's test driver calls this as LOG_COMPILER with the program path. emcc writes
// `prog` (JS we do not use) and `prog.wasm` side by side, so `prog.wasm` is preferred.
import { readFileSync, existsSync } from 'node:fs';
import { WASI } from 'node:wasi';
import { basename } from 'node:path';

const [, , program, ...args] = process.argv;
if (!program) {
  process.stderr.write('usage: node wasi-run.mjs <program[.wasm]> [args...]\n');
  process.exit(2);
}
const file = existsSync(`${program}.wasm`) ? `${program}.wasm` : program;
const module = await WebAssembly.compile(readFileSync(file));

const wasi = new WASI({
  version: 'preview1',
  args: [basename(program), ...args],
  env: process.env,
  // the tests print with stdio only; no file system is preopened
  returnOnExit: true,
});

// Emscripten's standalone mode may still import a few `env` functions; the ones a
// test program can reach are given trivial bodies, anything else fails loudly.
let instance;
const env = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module !== 'env' || imp.kind !== 'function') continue;
  if (imp.name === 'emscripten_notify_memory_growth') env[imp.name] = () => {};
  else {
    env[imp.name] = () => {
      throw new Error(`wasi-run: unexpected call to env.${imp.name}`);
    };
  }
}
instance = await WebAssembly.instantiate(module, {
  wasi_snapshot_preview1: wasi.wasiImport,
  env,
});
const code = wasi.start(instance);
process.exitCode = code ?? 0;
