/**
 * ITU-T G.711 companding: PCMU (μ-law, North America/Japan) and PCMA (A-law, Europe), the codecs a
 * telephony peer offers (RFC 3551 §4.5.14, payload types 0 and 8, 8 kHz, one byte per sample).
 *
 * Table-based and allocation-free: every table is built once at module load from the reference
 * algorithm (the Sun Microsystems g711.c that ITU-T G.191's STL mirrors); the per-frame functions only
 * index them. Encoding takes 16-bit linear PCM (or float in [-1, 1]); μ-law uses the 14 most
 * significant bits, A-law the 13 most significant bits, as the standard specifies.
 */

const SIGN_BIT = 0x80;
const QUANT_MASK = 0x0f;
const SEG_SHIFT = 4;
const SEG_MASK = 0x70;
/** μ-law bias (G.711 §3.2: 33 in 14-bit units, 0x84 in 16-bit units). */
const ULAW_BIAS = 0x84;
/** Largest 14-bit magnitude μ-law represents before the bias is added. */
const ULAW_CLIP = 8159;

const SEG_A_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
const SEG_U_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];

function segment(value: number, ends: readonly number[]): number {
  for (let i = 0; i < ends.length; i++) if (value <= ends[i]!) return i;
  return ends.length;
}

/** Reference μ-law encoder for one 16-bit sample (used only to fill the table). */
function linearToUlawRef(sample: number): number {
  let pcm = sample >> 2;
  let mask: number;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  if (pcm > ULAW_CLIP) pcm = ULAW_CLIP;
  pcm += ULAW_BIAS >> 2;
  const seg = segment(pcm, SEG_U_END);
  if (seg >= 8) return 0x7f ^ mask;
  return (((seg << 4) | ((pcm >> (seg + 1)) & 0xf)) ^ mask) & 0xff;
}

function ulawToLinearRef(code: number): number {
  const u = ~code & 0xff;
  let t = ((u & QUANT_MASK) << 3) + ULAW_BIAS;
  t <<= (u & SEG_MASK) >> SEG_SHIFT;
  return u & SIGN_BIT ? ULAW_BIAS - t : t - ULAW_BIAS;
}

/** Reference A-law encoder for one 16-bit sample (used only to fill the table). */
function linearToAlawRef(sample: number): number {
  let pcm = sample >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  const seg = segment(pcm, SEG_A_END);
  if (seg >= 8) return 0x7f ^ mask;
  let aval = seg << SEG_SHIFT;
  aval |= seg < 2 ? (pcm >> 1) & QUANT_MASK : (pcm >> seg) & QUANT_MASK;
  return (aval ^ mask) & 0xff;
}

function alawToLinearRef(code: number): number {
  const a = code ^ 0x55;
  let t = (a & QUANT_MASK) << 4;
  const seg = (a & SEG_MASK) >> SEG_SHIFT;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return a & SIGN_BIT ? t : -t;
}

// μ-law: 14-bit index (sample >> 2, offset by 8192); A-law: 13-bit index (sample >> 3, offset by 4096).
const ULAW_ENCODE = new Uint8Array(1 << 14);
const ALAW_ENCODE = new Uint8Array(1 << 13);
const ULAW_DECODE = new Int16Array(256);
const ALAW_DECODE = new Int16Array(256);
const ULAW_DECODE_F32 = new Float32Array(256);
const ALAW_DECODE_F32 = new Float32Array(256);

for (let i = 0; i < ULAW_ENCODE.length; i++) ULAW_ENCODE[i] = linearToUlawRef((i - 8192) << 2);
for (let i = 0; i < ALAW_ENCODE.length; i++) ALAW_ENCODE[i] = linearToAlawRef((i - 4096) << 3);
for (let i = 0; i < 256; i++) {
  ULAW_DECODE[i] = ulawToLinearRef(i);
  ALAW_DECODE[i] = alawToLinearRef(i);
  ULAW_DECODE_F32[i] = ULAW_DECODE[i]! / 32768;
  ALAW_DECODE_F32[i] = ALAW_DECODE[i]! / 32768;
}

export type G711Law = 'pcmu' | 'pcma';

/** RTP static payload types (RFC 3551 table 4). */
export const G711_PAYLOAD_TYPE: Readonly<Record<G711Law, number>> = { pcmu: 0, pcma: 8 };
export const G711_SAMPLE_RATE = 8000;

export function ulawEncodeSample(sample: number): number {
  return ULAW_ENCODE[(sample >> 2) + 8192]!;
}
export function ulawDecodeSample(code: number): number {
  return ULAW_DECODE[code & 0xff]!;
}
export function alawEncodeSample(sample: number): number {
  return ALAW_ENCODE[(sample >> 3) + 4096]!;
}
export function alawDecodeSample(code: number): number {
  return ALAW_DECODE[code & 0xff]!;
}

/** Encodes `count` 16-bit samples (default all of `pcm`) into `out`; returns the bytes written. */
export function g711EncodeInt16(law: G711Law, pcm: Int16Array, out: Uint8Array, count = pcm.length): number {
  if (law === 'pcmu') {
    for (let i = 0; i < count; i++) out[i] = ULAW_ENCODE[(pcm[i]! >> 2) + 8192]!;
  } else {
    for (let i = 0; i < count; i++) out[i] = ALAW_ENCODE[(pcm[i]! >> 3) + 4096]!;
  }
  return count;
}

export function g711DecodeInt16(law: G711Law, bytes: Uint8Array, out: Int16Array, count = bytes.length): number {
  const table = law === 'pcmu' ? ULAW_DECODE : ALAW_DECODE;
  for (let i = 0; i < count; i++) out[i] = table[bytes[i]!]!;
  return count;
}

/** Float PCM in [-1, 1] (values beyond are saturated, never wrapped) to G.711 bytes. */
export function g711EncodeFloat(law: G711Law, pcm: Float32Array, out: Uint8Array, count = pcm.length): number {
  const table = law === 'pcmu' ? ULAW_ENCODE : ALAW_ENCODE;
  const shift = law === 'pcmu' ? 2 : 3;
  const offset = law === 'pcmu' ? 8192 : 4096;
  for (let i = 0; i < count; i++) {
    let s = Math.round(pcm[i]! * 32768);
    if (s > 32767) s = 32767;
    else if (s < -32768) s = -32768;
    out[i] = table[(s >> shift) + offset]!;
  }
  return count;
}

export function g711DecodeFloat(law: G711Law, bytes: Uint8Array, out: Float32Array, count = bytes.length): number {
  const table = law === 'pcmu' ? ULAW_DECODE_F32 : ALAW_DECODE_F32;
  for (let i = 0; i < count; i++) out[i] = table[bytes[i]!]!;
  return count;
}
