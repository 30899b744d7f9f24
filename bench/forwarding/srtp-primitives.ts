/**
 * Candidate AES-CM and HMAC-SHA1 primitives for the SRTP microbench (bench/forwarding/srtp.ts),
 * plugged into VoxLink's SrtpContext through its SrtpPrimitives seam so that every candidate runs
 * the same RFC 3711 logic. The TypeScript pair in src/media/srtp/ is the production default;
 * these are the alternatives it was measured against.
 */
import { createCipheriv, createHash, createHmac, type Hash } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac';
import { sha1 } from '@noble/hashes/legacy';
import type { Authenticator, KeystreamCipher } from '../../src/media/srtp/index.ts';

export { NodeEcbKeystream } from '../../src/media/srtp/node-keystream.ts';

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
