/**
 * Just enough WAV (RIFF WAVE) reading for the bot example: PCM 16-bit or 32-bit float, any rate
 * and channel count, returned as mono float at 48 kHz (what the SDK's publisher encodes).
 */
export function readWav(bytes: Buffer): Float32Array {
  if (bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  let format = 0;
  let channels = 0;
  let rate = 0;
  let bits = 0;
  let data: Buffer | null = null;
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = bytes.toString('ascii', at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    const body = bytes.subarray(at + 8, at + 8 + size);
    if (id === 'fmt ') {
      format = body.readUInt16LE(0);
      channels = body.readUInt16LE(2);
      rate = body.readUInt32LE(4);
      bits = body.readUInt16LE(14);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the sub-format GUID's first two bytes.
      if (format === 0xfffe && body.length >= 26) format = body.readUInt16LE(24);
    } else if (id === 'data') {
      data = body;
    }
    at += 8 + size + (size & 1); // chunks are padded to even sizes
  }
  const pcm16 = format === 1 && bits === 16;
  const float32 = format === 3 && bits === 32;
  if (!data || channels < 1 || rate < 1 || !(pcm16 || float32)) {
    throw new Error(`unsupported WAV (format ${format}, ${bits} bits): use 16-bit PCM or 32-bit float`);
  }
  const frameBytes = channels * (bits / 8);
  const frames = Math.floor(data.length / frameBytes);
  const mono = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const at = i * frameBytes + c * (bits / 8);
      sum += pcm16 ? data.readInt16LE(at) / 32768 : data.readFloatLE(at);
    }
    mono[i] = sum / channels;
  }
  return resample(mono, rate, 48_000);
}

/** Linear interpolation: plenty for speech (espeak-ng writes 22.05 kHz); use a real resampler for music. */
function resample(input: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return input;
  const out = new Float32Array(Math.floor((input.length * to) / from));
  const step = from / to;
  for (let i = 0; i < out.length; i++) {
    const x = i * step;
    const k = Math.floor(x);
    const a = input[k] ?? 0;
    const b = input[k + 1] ?? a;
    out[i] = a + (b - a) * (x - k);
  }
  return out;
}
