/**
 * HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) for SRTP authentication (RFC 3711 §4.2.1), with the
 * inner and outer pads compressed once per key: a packet then costs its own blocks plus one outer
 * block, and allocates nothing.
 *
 * Node's createHmac() cannot resume from a stored midstate (Hash#copy() can, but returns a new
 * object per packet), so per-packet HMAC through Node allocates; docs/srtp.md has the numbers.
 */

const BLOCK = 64;

export class HmacSha1 {
  /** SHA-1 state after compressing key ^ ipad and key ^ opad. */
  readonly #inner = new Int32Array(5);
  readonly #outer = new Int32Array(5);
  /** Running state, message schedule and the tail block(s) of the message being hashed. */
  readonly #h = new Int32Array(5);
  readonly #w = new Int32Array(80);
  readonly #tail = new Uint8Array(2 * BLOCK);
  /** The last MAC: 20 bytes, of which SRTP keeps the first 10 or 4. */
  readonly digest = new Uint8Array(20);

  constructor(key: Uint8Array) {
    if (key.length > BLOCK) throw new RangeError('HMAC keys longer than 64 bytes are not used by SRTP');
    const pad = new Uint8Array(BLOCK);
    for (const [state, byte] of [[this.#inner, 0x36], [this.#outer, 0x5c]] as const) {
      pad.fill(byte);
      for (let i = 0; i < key.length; i++) pad[i] ^= key[i];
      this.#reset();
      this.#compress(pad, 0);
      state.set(this.#h);
    }
  }

  /**
   * HMAC over data[off, off+len) followed, when withSuffix, by the 4 big-endian bytes of suffix
   * (the ROC of RFC 3711 §4.2). The result is in this.digest.
   */
  compute(data: Uint8Array, off: number, len: number, suffix: number, withSuffix: boolean): void {
    const h = this.#h;
    h.set(this.#inner);
    const end = off + len;
    while (end - off >= BLOCK) {
      this.#compress(data, off);
      off += BLOCK;
    }
    // Tail: the rest of the data, the suffix, 0x80, zeros and the bit length (64 bytes of pad before).
    const tail = this.#tail;
    let n = 0;
    while (off < end) tail[n++] = data[off++];
    if (withSuffix) {
      tail[n++] = suffix >>> 24;
      tail[n++] = suffix >>> 16;
      tail[n++] = suffix >>> 8;
      tail[n++] = suffix;
    }
    const total = BLOCK + len + (withSuffix ? 4 : 0);
    this.#finish(tail, n, total);
    // Outer hash: (key ^ opad) || inner digest.
    for (let i = 0; i < 5; i++) {
      const v = h[i];
      tail[4 * i] = v >>> 24;
      tail[4 * i + 1] = v >>> 16;
      tail[4 * i + 2] = v >>> 8;
      tail[4 * i + 3] = v;
    }
    h.set(this.#outer);
    this.#finish(tail, 20, BLOCK + 20);
    const d = this.digest;
    for (let i = 0; i < 5; i++) {
      const v = h[i];
      d[4 * i] = v >>> 24;
      d[4 * i + 1] = v >>> 16;
      d[4 * i + 2] = v >>> 8;
      d[4 * i + 3] = v;
    }
  }

  /** Pads tail[0, n) (n < 64 + 4) with the SHA-1 length trailer for a message of total bytes, and compresses it. */
  #finish(tail: Uint8Array, n: number, total: number): void {
    tail[n++] = 0x80;
    const blocks = n + 8 <= BLOCK ? 1 : 2;
    const last = blocks * BLOCK;
    tail.fill(0, n, last - 4);
    // Bit length; messages are far below 2^29 bytes, so the high word is zero.
    const bits = total * 8;
    tail[last - 4] = bits >>> 24;
    tail[last - 3] = bits >>> 16;
    tail[last - 2] = bits >>> 8;
    tail[last - 1] = bits;
    this.#compress(tail, 0);
    if (blocks === 2) this.#compress(tail, BLOCK);
  }

  #reset(): void {
    const h = this.#h;
    h[0] = 0x67452301;
    h[1] = 0xefcdab89 | 0;
    h[2] = 0x98badcfe | 0;
    h[3] = 0x10325476;
    h[4] = 0xc3d2e1f0 | 0;
  }

  /** One SHA-1 compression of b[o, o+64) into this.#h (FIPS 180-4 §6.1.2). */
  #compress(b: Uint8Array, o: number): void {
    const w = this.#w;
    const h = this.#h;
    for (let t = 0; t < 16; t++, o += 4) w[t] = (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h[0];
    let bb = h[1];
    let c = h[2];
    let d = h[3];
    let e = h[4];
    for (let t = 0; t < 20; t++) {
      const tmp = (((a << 5) | (a >>> 27)) + ((bb & c) | (~bb & d)) + e + w[t] + 0x5a827999) | 0;
      e = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = tmp;
    }
    for (let t = 20; t < 40; t++) {
      const tmp = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + e + w[t] + 0x6ed9eba1) | 0;
      e = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = tmp;
    }
    for (let t = 40; t < 60; t++) {
      const tmp = (((a << 5) | (a >>> 27)) + ((bb & c) | (bb & d) | (c & d)) + e + w[t] - 0x70e44324) | 0;
      e = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = tmp;
    }
    for (let t = 60; t < 80; t++) {
      const tmp = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + e + w[t] - 0x359d3e2a) | 0;
      e = d;
      d = c;
      c = (bb << 30) | (bb >>> 2);
      bb = a;
      a = tmp;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + bb) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
  }
}
