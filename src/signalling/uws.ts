import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

/**
 * Load uWebSockets.js and tell whether its native addon loaded. The package's loader
 * (src/uws.js) requires `binaries/uws_<platform>_<arch>_<abi>.node` and silently falls back to a
 * JS implementation built on `ws` when that file is missing or incompatible (or when
 * UWS_USE_FALLBACK is set). The native module exports many functions the fallback lacks
 * (H3App, getParts, …), so their presence is the marker.
 */
const require = createRequire(import.meta.url);
export const uws = require('uWebSockets.js') as typeof UWS;
export const uwsNative: boolean = typeof (uws as unknown as Record<string, unknown>).getParts === 'function';
export const uwsBinaryName = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;

const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

/**
 * `app.listen(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, cb)`: without the option uWS binds with
 * SO_REUSEPORT, so a second server on a port in use starts too and the kernel splits connections
 * between them. The native addon and the JS fallback both take this four-argument form; the
 * package's typings only declare it without a host.
 */
export function listenExclusive(app: UWS.TemplatedApp, host: string, port: number): Promise<UWS.us_listen_socket | false> {
  const listen = app.listen as unknown as (host: string, port: number, options: number, cb: (socket: UWS.us_listen_socket | false) => void) => void;
  return new Promise((resolve) => listen.call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, resolve));
}
