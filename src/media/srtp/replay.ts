/**
 * Sliding replay window of RFC 3711 §3.3.2 over packet indices: the highest authenticated index
 * and a bitmap of which of the WINDOW indices below it (itself included) were seen. Indices are
 * plain numbers (48-bit SRTP index, 31-bit SRTCP index), exact in a double.
 */

/** Packets the window remembers; RFC 3711 asks for at least 64. */
export const REPLAY_WINDOW = 128;

export class ReplayWindow {
  /** Highest index accepted so far; -1 before the first packet. */
  top = -1;
  /** Bit k of the 128-bit map (word k >> 5, bit k & 31) = index top - k was accepted. */
  readonly #bits = new Int32Array(REPLAY_WINDOW / 32);

  /** True when index is new: above the top, or inside the window and not yet seen. */
  check(index: number): boolean {
    if (index > this.top) return true;
    const k = this.top - index;
    if (k >= REPLAY_WINDOW) return false;
    return (this.#bits[k >> 5] & (1 << (k & 31))) === 0;
  }

  /** Records an authenticated index (check() was true for it). */
  accept(index: number): void {
    const bits = this.#bits;
    if (index > this.top) {
      const shift = this.top < 0 ? REPLAY_WINDOW : index - this.top;
      this.top = index;
      if (shift >= REPLAY_WINDOW) {
        bits.fill(0);
      } else {
        // Shift the 128-bit map left (towards older) by `shift` bits, word 0 being the newest.
        const ws = shift >> 5;
        const bs = shift & 31;
        for (let i = bits.length - 1; i >= 0; i--) {
          const src = i - ws;
          let v = src >= 0 ? bits[src] << bs : 0;
          if (bs !== 0 && src - 1 >= 0) v |= bits[src - 1] >>> (32 - bs);
          bits[i] = v;
        }
      }
      bits[0] |= 1;
    } else {
      const k = this.top - index;
      bits[k >> 5] |= 1 << (k & 31);
    }
  }
}
