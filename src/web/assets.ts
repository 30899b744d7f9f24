import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/**
 * The demo page's files: index.html (a template), app.js (src/web/app.ts and the client SDK,
 * bundled by esbuild for browsers) and app.css.
 *
 * Running from a checkout (tsx, `npm start`), they are built in memory from src/web once, when
 * the server starts: nothing to run after `npm ci`, and an edited page shows up on restart. A
 * bundled server (dist/main.js from scripts/build.mjs) has no src/web beside it; it serves what
 * `node scripts/build-web.mjs` wrote to dist/web/, and needs no esbuild at run time.
 */
export interface WebAssets {
  /** index.html with `{{DEV_MODE}}` still to fill in, asset hashes already in. */
  htmlTemplate: string;
  js: string;
  css: string;
  /** Where they came from, for the start-up log. */
  source: 'esbuild' | 'prebuilt';
}

const SOURCE_DIR = new URL('./', import.meta.url);
const APP_ENTRY = new URL('./app.ts', SOURCE_DIR);
/**
 * Where a bundled server looks for scripts/build-web.mjs's output: dist/web/ beside dist/main.js,
 * or one level up (scripts/build.mjs keeps the source tree, dist/src/main.js).
 */
const PREBUILT_DIRS = [new URL('./web/', import.meta.url), new URL('../web/', import.meta.url)];

/** Browsers the page targets: WebRTC's unified plan, CSS color-mix, ES2022 private fields. */
export const BROWSER_TARGETS = ['chrome111', 'edge111', 'firefox113', 'safari16.4'];

export function sourceAvailable(): boolean {
  return existsSync(fileURLToPath(APP_ENTRY));
}

/** Bundles src/web with esbuild (a dev dependency, imported only here). */
export async function buildWebAssets(options: { minify?: boolean } = {}): Promise<WebAssets> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [fileURLToPath(APP_ENTRY), fileURLToPath(new URL('./styles.css', SOURCE_DIR))],
    bundle: true,
    write: false,
    outdir: fileURLToPath(new URL('./out/', SOURCE_DIR)),
    format: 'esm',
    platform: 'browser',
    target: BROWSER_TARGETS,
    minify: options.minify ?? true,
    legalComments: 'none',
    plugins: [zodWithoutLocales],
    logLevel: 'silent',
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'))?.text;
  const css = result.outputFiles.find((f) => f.path.endsWith('.css'))?.text;
  if (js === undefined || css === undefined) throw new Error('esbuild produced no app.js/app.css');
  const html = await readFile(new URL('./index.html', SOURCE_DIR), 'utf8');
  return { htmlTemplate: stampHashes(html, js, css), js, css, source: 'esbuild' };
}

/**
 * zod's classic API and core re-export ~40 locale bundles (`z.locales`) that nothing in the SDK uses; its
 * English default is imported separately. Dropping them takes ~40 % off the page's bundle.
 */
const zodWithoutLocales: import('esbuild').Plugin = {
  name: 'zod-without-locales',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'zod-without-locales' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-without-locales' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

/** Reads what scripts/build-web.mjs wrote (index.html already carries the hashes). */
async function readPrebuilt(): Promise<WebAssets> {
  const dir = PREBUILT_DIRS.find((d) => existsSync(fileURLToPath(new URL('app.js', d)))) ?? PREBUILT_DIRS[0];
  const [htmlTemplate, js, css] = await Promise.all(
    ['index.html', 'app.js', 'app.css'].map((name) => readFile(new URL(name, dir), 'utf8')),
  );
  return { htmlTemplate, js, css, source: 'prebuilt' };
}

export function loadWebAssets(): Promise<WebAssets> {
  return sourceAvailable() ? buildWebAssets() : readPrebuilt();
}

/** Content hashes in the asset URLs, so browsers may cache app.js/app.css for good. */
export function stampHashes(html: string, js: string, css: string): string {
  return html.replace('{{JS_HASH}}', contentHash(js)).replace('{{CSS_HASH}}', contentHash(css));
}

export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
