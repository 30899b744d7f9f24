/**
 * AES-CM keystream from Node's OpenSSL (AES-NI) for large payloads, as an opt-in trade: one
 * long-lived aes-128-ecb context per session key encrypts all counter blocks of a packet in one
 * update() call. update() returns a new Buffer (Node has no "encrypt into" API), so this
 * allocates one keystream buffer per packet it handles; AdaptiveKeystream therefore uses it only
 * for payloads of at least `threshold` bytes (video), and the allocation-free T-table AES below
 * that (audio). Numbers in docs/srtp.md.
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import { Aes128 } from './aes.ts';
import type { KeystreamCipher, SrtpPrimitives } from './context.ts';
import { HmacSha1 } from './sha1.ts';

const MAX_BLOCKS = 128; // 2 KiB: any payload that fits a UDP datagram on a sane MTU

export class NodeEcbKeystream implements KeystreamCipher {
  readonly #ecb: Cipher;
  readonly #counters = Buffer.alloc(MAX_BLOCKS * 16);
  /** Views of #counters for 0..MAX_BLOCKS blocks, made once so a packet makes no view. */
  readonly #views: Buffer[] = [];
  readonly #fallback: Aes128;

  constructor(key: Uint8Array) {
    this.#ecb = createCipheriv('aes-128-ecb', key, null);
    this.#ecb.setAutoPadding(false);
    for (let n = 0; n <= MAX_BLOCKS; n++) this.#views.push(this.#counters.subarray(0, n * 16));
    this.#fallback = new Aes128(key);
  }

  xorKeystream(iv0: number, iv1: number, iv2: number, iv3: number, buf: Uint8Array, off: number, len: number): void {
    const blocks = (len + 15) >> 4;
    if (blocks > MAX_BLOCKS) {
      this.#fallback.xorKeystream(iv0, iv1, iv2, iv3, buf, off, len);
      return;
    }
    const c = this.#counters;
    for (let b = 0; b < blocks; b++) {
      const o = b * 16;
      c.writeInt32BE(iv0, o);
      c.writeInt32BE(iv1, o + 4);
      c.writeInt32BE(iv2, o + 8);
      c.writeInt32BE(iv3 | b, o + 12);
    }
    const ks = this.#ecb.update(this.#views[blocks]);
    for (let i = 0; i < len; i++) buf[off + i] ^= ks[i];
  }
}

/** T-table AES below `threshold` payload bytes, Node's AES from there on. */
export class AdaptiveKeystream implements KeystreamCipher {
  readonly #small: Aes128;
  readonly #large: NodeEcbKeystream;
  readonly #threshold: number;

  constructor(key: Uint8Array, threshold: number) {
    this.#small = new Aes128(key);
    this.#large = new NodeEcbKeystream(key);
    this.#threshold = threshold;
  }

  xorKeystream(iv0: number, iv1: number, iv2: number, iv3: number, buf: Uint8Array, off: number, len: number): void {
    if (len < this.#threshold) this.#small.xorKeystream(iv0, iv1, iv2, iv3, buf, off, len);
    else this.#large.xorKeystream(iv0, iv1, iv2, iv3, buf, off, len);
  }
}

/**
 * Primitives for contexts that carry video: allocation-free for payloads under thresholdBytes
 * (default 256, above any voice Opus frame), one keystream Buffer per larger packet.
 */
export function adaptivePrimitives(thresholdBytes = 256): SrtpPrimitives {
  return {
    cipher: (key) => new AdaptiveKeystream(key, thresholdBytes),
    mac: (key) => new HmacSha1(key),
  };
}
