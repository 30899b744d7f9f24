// Writes the demo page (src/web: index.html, app.js with the client SDK, app.css) to dist/web/ for a
// bundled server (dist/main.js), which serves it from there without esbuild. A server run from the
// checkout (`npm start`) builds the same files in memory at start-up and does not need this.
// Usage: node scripts/build-web.mjs [outdir]   (default dist/web)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { register } from 'tsx/esm/api';

register();
const { buildWebAssets } = await import('../src/web/assets.ts');

const outdir = resolve(process.argv[2] ?? 'dist/web');
const assets = await buildWebAssets();
mkdirSync(outdir, { recursive: true });
writeFileSync(join(outdir, 'index.html'), assets.htmlTemplate);
writeFileSync(join(outdir, 'app.js'), assets.js);
writeFileSync(join(outdir, 'app.css'), assets.css);
console.log(`demo page → ${outdir} (app.js ${(assets.js.length / 1024).toFixed(0)} KiB, app.css ${(assets.css.length / 1024).toFixed(0)} KiB)`);
