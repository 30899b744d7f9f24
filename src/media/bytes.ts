/**
 * Copying bytes on the media hot path without allocating (docs/architecture.md "The way of one
 * audio packet": nothing allocates per packet). On Node 20, `Buffer#copy` of PART of a buffer
 * makes a new Uint8Array view per call (lib/buffer.js `_copyActual`); a whole-view
 * `TypedArray#set`, `copyWithin` and `Buffer#fill` with a buffer value do not.
 */

/** Below this a byte loop beats a native call (measured in bench/forwarding/copy.ts). */
export const SMALL_COPY_BYTES = 32;

/**
 * Copies `src[0, length)` into `dst` at `at`, allocating nothing: a whole `src` with
 * `TypedArray#set`, a few bytes with a loop, else `Buffer#fill` with `src` as the fill value
 * (native: it copies min(src.length, end − at) bytes from the start of `src`, a memcpy).
 */
export function copyPrefix(src: Uint8Array, length: number, dst: Buffer, at: number): void {
  if (length > src.length || at < 0 || at + length > dst.length) {
    throw new RangeError(`copyPrefix: ${length} bytes of ${src.length} into ${dst.length} at ${at}`);
  }
  if (length === src.length) {
    dst.set(src, at);
  } else if (length <= SMALL_COPY_BYTES) {
    for (let i = 0; i < length; i++) dst[at + i] = src[i]!;
  } else {
    dst.fill(src, at, at + length);
  }
}
