// Bundles the server (dist/src/main.js), its worker entry points (dist/workers/), the CLI
// (dist/src/cli.js) and the demo page (dist/web/) with esbuild, so deployers run plain `node`
// without tsx; wasm/opus.wasm is copied to dist/wasm/.
//
// npm packages stay external (`packages: 'external'`): the release is dist/ beside package.json
// and package-lock.json, with `npm ci --omit=dev` run there (README "Deploy"). Bundling the
// pure-JS ones would save nothing: uWebSockets.js must be installed anyway (a native binary per
// platform and Node ABI), piscina starts its workers from its own worker.js file, and pino's
// transports run in worker threads loaded from its package; the lockfile pins what runs.
// test/deploy/bundle.test.ts builds, installs and runs exactly that.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';

const entryPoints = ['src/main.ts', 'src/cli.ts']
  .concat(existsSync('workers') ? readdirSync('workers').filter((f) => f.endsWith('.ts')).map((f) => `workers/${f}`) : [])
  .filter((f) => existsSync(f));

mkdirSync('dist', { recursive: true });
await build({
  entryPoints,
  outdir: 'dist',
  outbase: '.',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  packages: 'external',
  logLevel: 'info',
});
if (existsSync('wasm/opus.wasm')) {
  mkdirSync('dist/wasm', { recursive: true });
  cpSync('wasm/opus.wasm', 'dist/wasm/opus.wasm');
}

// The demo page (src/web) as static files beside the bundle: dist/web/.
await import('./build-web.mjs');
console.log('release: dist/ + package.json + package-lock.json, then `npm ci --omit=dev` and `node dist/src/main.js` (README "Deploy")');
