/**
 * Candidate AES-CM and HMAC-SHA1 primitives for the SRTP microbench (bench/forwarding/srtp.ts),
 * plugged into VoxLink's SrtpContext through its SrtpPrimitives seam so that every candidate runs
 * the same RFC 3711 logic. The TypeScript pair in src/media/srtp/ is the production default;
 * these are the alternatives it was measured against.
 */
import { createCipheriv, createHash, createHmac, type Cipher, type Hash } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac';
import { sha1 } from '@noble/hashes/legacy';
import type { Authenticator, KeystreamCipher } from '../../src/media/srtp/index.ts';

const MAX_BLOCKS = 128; // 2 KiB of keystream: any UDP payload we forward

/**
 * (a) One long-lived aes-128-ecb context per session key: counter blocks are written into a
 * reusable buffer and encrypted in one update() per packet. update() returns a new Buffer, so
 * each packet allocates its keystream (Node has no "encrypt into" API).
 */
export class NodeEcbKeystream implements KeystreamCipher {
  readonly #ecb: Cipher;
  readonly #counters = Buffer.alloc(MAX_BLOCKS * 16);
  /** Views of #counters for 1..MAX_BLOCKS blocks, made once so a packet makes no view. */
  readonly #views: Buffer[] = [];

  constructor(key: Uint8Array) {
    this.#ecb = createCipheriv('aes-128-ecb', key, null);
    this.#ecb.setAutoPadding(false);
    for (let n = 0; n <= MAX_BLOCKS; n++) this.#views.push(this.#counters.subarray(0, n * 16));
  }

  xorKeystream(iv0: number, iv1: number, iv2: number, iv3: number, buf: Uint8Array, off: number, len: number): void {
    const blocks = (len + 15) >> 4;
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

/** werift's way: a new aes-128-ctr cipher object per packet. */
export class NodeCtrPerPacket implements KeystreamCipher {
  readonly #key: Uint8Array;
  readonly #iv = Buffer.alloc(16);
  constructor(key: Uint8Array) {
    this.#key = key;
  }
  xorKeystream(iv0: number, iv1: number, iv2: number, iv3: number, buf: Uint8Array, off: number, len: number): void {
    const iv = this.#iv;
    iv.writeInt32BE(iv0, 0);
    iv.writeInt32BE(iv1, 4);
    iv.writeInt32BE(iv2, 8);
    iv.writeInt32BE(iv3, 12);
    const out = createCipheriv('aes-128-ctr', this.#key, iv).update(buf.subarray(off, off + len));
    (buf as Buffer).set(out, off);
  }
}

/** (a) createHmac per packet; the key is long-lived, the HMAC object is not. */
export class NodeHmacPerPacket implements Authenticator {
  readonly digest = new Uint8Array(20);
  readonly #key: Uint8Array;
  readonly #suffix = Buffer.alloc(4);
  constructor(key: Uint8Array) {
    this.#key = key;
  }
  compute(data: Uint8Array, off: number, len: number, suffix: number, withSuffix: boolean): void {
    const h = createHmac('sha1', this.#key).update(data.subarray(off, off + len));
    if (withSuffix) {
      this.#suffix.writeUInt32BE(suffix >>> 0, 0);
      h.update(this.#suffix);
    }
    this.digest.set(h.digest());
  }
}

/**
 * (a') The closest Node gets to a resumable midstate: Hash#copy() of a hash that has already
 * absorbed key ^ ipad (resp. key ^ opad). Saves the pad blocks, still a new object per copy.
 */
export class NodeHashCopyHmac implements Authenticator {
  readonly digest = new Uint8Array(20);
  readonly #inner: Hash;
  readonly #outer: Hash;
  readonly #suffix = Buffer.alloc(4);
  constructor(key: Uint8Array) {
    const pad = (byte: number): Buffer => {
      const p = Buffer.alloc(64, byte);
      for (let i = 0; i < key.length; i++) p[i] ^= key[i];
      return p;
    };
    this.#inner = createHash('sha1').update(pad(0x36));
    this.#outer = createHash('sha1').update(pad(0x5c));
  }
  compute(data: Uint8Array, off: number, len: number, suffix: number, withSuffix: boolean): void {
    const inner = this.#inner.copy().update(data.subarray(off, off + len));
    if (withSuffix) {
      this.#suffix.writeUInt32BE(suffix >>> 0, 0);
      inner.update(this.#suffix);
    }
    this.digest.set(this.#outer.copy().update(inner.digest()).digest());
  }
}

/** (c) @noble/hashes (pure JS, already in the tree via werift): a keyed HMAC template cloned per packet into one reused instance. */
export class NobleHmac implements Authenticator {
  readonly digest = new Uint8Array(20);
  readonly #template;
  readonly #work;
  readonly #suffix = new Uint8Array(4);
  constructor(key: Uint8Array) {
    this.#template = hmac.create(sha1, key);
    this.#work = this.#template.clone();
  }
  compute(data: Uint8Array, off: number, len: number, suffix: number, withSuffix: boolean): void {
    const h = this.#template._cloneInto(this.#work);
    h.update(data.subarray(off, off + len));
    if (withSuffix) {
      const s = this.#suffix;
      s[0] = suffix >>> 24;
      s[1] = suffix >>> 16;
      s[2] = suffix >>> 8;
      s[3] = suffix;
      h.update(s);
    }
    h.digestInto(this.digest);
  }
}
