// Bundles the server, its worker entry points, the CLI and the demo page into dist/ with esbuild,
// so deployers can run `node dist/main.js` without tsx. wasm/opus.wasm is copied beside them.
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
