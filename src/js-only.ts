/**
 * Untrusted bytes are parsed by JavaScript only. npm installs three native addons as optional
 * dependencies (msgpackr-extract for msgpackr, bufferutil and utf-8-validate for ws); they are
 * not needed — both libraries have JS paths — and a fault in one would take the whole process
 * down on a hostile frame. The switches below must be set before msgpackr and ws are first
 * loaded, so this module is imported first wherever they are used. In a browser there is no
 * `process` and nothing to switch off.
 */
const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
if (env !== undefined) {
  env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';
  env.WS_NO_BUFFER_UTIL ??= '1';
  env.WS_NO_UTF_8_VALIDATE ??= '1';
}
export {};
