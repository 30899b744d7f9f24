/**
 * RTP sequence number and timestamp arithmetic (RFC 3550 §5.1, Appendix A.1): 16-bit sequence
 * numbers and 32-bit timestamps wrap, so distances and extended values are taken modulo their
 * range. The lowest floor that needs it is codec/ (the jitter buffer); media/ imports it from here.
 * Pure numbers, nothing allocated.
 */

/** Sequence numbers wrap at 2^16. */
export const SEQ_MOD = 0x1_0000;
/** Timestamps wrap at 2^32. */
export const TS_MOD = 0x1_0000_0000;

/** 16-bit sequence arithmetic: signed distance from a to b (−32768 … 32767). */
export function seqDelta(a: number, b: number): number {
  const d = (b - a) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}

/**
 * Extends a wrapped `value` (sequence number or timestamp, range `modulus`) to the unwrapped
 * number closest to the previous extended value `lastExt`, so a wrap counts forward (A.1's cycles).
 */
export function unwrap(value: number, lastExt: number, modulus: number): number {
  let diff = (value - lastExt) % modulus;
  if (diff < 0) diff += modulus;
  if (diff >= modulus / 2) diff -= modulus;
  return lastExt + diff;
}
