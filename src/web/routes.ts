import { gzipSync } from 'node:zlib';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { AuthKeys } from '../auth/keys.ts';
import type { VoxConfig } from '../config.ts';
import { logger } from '../log.ts';
import { contentHash, loadWebAssets, type WebAssets } from './assets.ts';
import { DevTokenDesk, type DevTokenOptions } from './dev-token.ts';

/**
 * HTTP routes of the demo page, for `startServer(config, { routes: webRoutes(config, keys) })`:
 *   GET  /         the page (index.html, dev-mode flag filled in)
 *   GET  /app.js   the page's bundle (client SDK included)
 *   GET  /app.css
 *   POST /dev/token {room, name} → {token, userId, room, expiresAt}; 403 DEV_MODE_OFF outside dev mode.
 */
export interface WebRoutesOptions {
  devToken?: DevTokenOptions;
  /** Assets to serve instead of loadWebAssets() (tests share one build between servers). */
  assets?: Promise<WebAssets>;
}

interface Served {
  html: string;
  js: Body;
  css: Body;
  jsHash: string;
  cssHash: string;
}

/** A text asset and its gzip (RFC 1952) form, compressed once: the bundle shrinks to about a quarter. */
interface Body {
  plain: string;
  gzip: Buffer;
}

function body(text: string): Body {
  return { plain: text, gzip: gzipSync(text, { level: 9 }) };
}

const log = logger('web');
/** {room, name} is tiny; anything bigger is not a token request. */
const MAX_BODY_BYTES = 4096;

/**
 * Only our own origin, no inline script (the dev flag travels in a <meta>), no framing. The
 * Referrer-Policy keeps a `?token=` link out of Referer headers.
 */
const PAGE_HEADERS: ReadonlyArray<[string, string]> = [
  [
    'content-security-policy',
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; " +
      "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  ],
  ['referrer-policy', 'no-referrer'],
  ['x-content-type-options', 'nosniff'],
  ['permissions-policy', 'microphone=(self), camera=(self)'],
];

export function webRoutes(config: VoxConfig, keys: AuthKeys, options: WebRoutesOptions = {}): (app: TemplatedApp) => void {
  const devMode = config.auth.devMode === true;
  const served: Promise<Served> = (options.assets ?? loadWebAssets()).then((assets) => {
    log.info({ source: assets.source, jsBytes: assets.js.length, devMode }, 'demo page ready at /');
    return {
      html: assets.htmlTemplate.replace('{{DEV_MODE}}', String(devMode)),
      js: body(assets.js),
      css: body(assets.css),
      jsHash: contentHash(assets.js),
      cssHash: contentHash(assets.css),
    };
  });
  served.catch((err: unknown) => log.error({ err }, 'demo page unavailable (run `node scripts/build-web.mjs` for a bundled server)'));
  const desk = new DevTokenDesk(config, keys, options.devToken);

  return (app) => {
    const page = (res: HttpResponse): void =>
      respond(res, served, (s) => ({ type: 'text/html; charset=utf-8', body: s.html, cache: 'no-cache', headers: PAGE_HEADERS }));
    app.get('/', page);
    app.get('/index.html', page);
    app.get('/app.js', (res, req) => {
      const version = req.getQuery('v');
      const gzip = acceptsGzip(req.getHeader('accept-encoding'));
      respond(res, served, (s) => asset('text/javascript; charset=utf-8', s.js, gzip, cacheFor(version, s.jsHash)));
    });
    app.get('/app.css', (res, req) => {
      const version = req.getQuery('v');
      const gzip = acceptsGzip(req.getHeader('accept-encoding'));
      respond(res, served, (s) => asset('text/css; charset=utf-8', s.css, gzip, cacheFor(version, s.cssHash)));
    });
    app.post('/dev/token', (res) => {
      const address = Buffer.from(res.getRemoteAddressAsText()).toString();
      const aborted = { value: false };
      res.onAborted(() => {
        aborted.value = true;
      });
      readBody(res, (body) => {
        if (body === null) {
          sendJson(res, aborted, 413, { error: 'INVALID_ARGUMENT', message: `body larger than ${MAX_BODY_BYTES} bytes` });
          return;
        }
        desk.issue(address, body).then(
          (reply) => sendJson(res, aborted, reply.status, reply.body),
          (err: unknown) => {
            log.error({ err }, 'dev token failed');
            sendJson(res, aborted, 500, { error: 'INTERNAL', message: 'could not mint a token' });
          },
        );
      });
    });
  };
}

function acceptsGzip(header: string): boolean {
  return /(^|[\s,])gzip(?!;\s*q=0(\.0*)?(\s|,|$))/i.test(header);
}

function asset(type: string, content: Body, gzip: boolean, cache: string): Picked {
  return gzip
    ? { type, body: content.gzip, cache, headers: [['content-encoding', 'gzip'], ['vary', 'accept-encoding']] }
    : { type, body: content.plain, cache, headers: [['vary', 'accept-encoding']] };
}

interface Picked {
  type: string;
  body: string | Buffer;
  cache: string;
  headers?: ReadonlyArray<[string, string]>;
}

/** Immutable only for the URL the page references (content hash); anything else revalidates. */
function cacheFor(version: string, hash: string): string {
  return version === hash ? 'public, max-age=31536000, immutable' : 'no-cache';
}

function respond(
  res: HttpResponse,
  served: Promise<Served>,
  pick: (s: Served) => Picked,
): void {
  const aborted = { value: false };
  res.onAborted(() => {
    aborted.value = true;
  });
  served.then(
    (s) => {
      if (aborted.value) return;
      const { type, body, cache, headers } = pick(s);
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('content-type', type).writeHeader('cache-control', cache);
        for (const [name, value] of headers ?? []) res.writeHeader(name, value);
        res.end(body);
      });
    },
    () => sendJson(res, aborted, 503, { error: 'DEMO_UNAVAILABLE', message: 'the demo page is not built; run `node scripts/build-web.mjs`' }),
  );
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  403: '403 Forbidden',
  413: '413 Payload Too Large',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

function sendJson(res: HttpResponse, aborted: { value: boolean }, status: number, body: unknown): void {
  if (aborted.value) return;
  res.cork(() => {
    res
      .writeStatus(STATUS_TEXT[status] ?? String(status))
      .writeHeader('content-type', 'application/json')
      .writeHeader('cache-control', 'no-store')
      .end(JSON.stringify(body));
  });
}

/** Collects the request body (uWS hands out chunks whose memory is reused after the callback). */
function readBody(res: HttpResponse, done: (body: string | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.onData((chunk, isLast) => {
    size += chunk.byteLength;
    if (size <= MAX_BODY_BYTES) chunks.push(Buffer.from(chunk.slice(0)));
    if (isLast) done(size <= MAX_BODY_BYTES ? Buffer.concat(chunks).toString('utf8') : null);
  });
}
