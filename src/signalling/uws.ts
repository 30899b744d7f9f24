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
