/**
 * RFC 6464 §3 audio level of a frame: −dBov of its RMS, 0 (loudest) … 127 (silence), where
 * 0 dBov is the RMS of a full-scale square wave (1.0 in float PCM). Same scale Chrome sends.
 */
export function audioLevelOf(pcm: Float32Array, start = 0, end = pcm.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += pcm[i] * pcm[i];
  const n = end - start;
  if (n <= 0 || sum === 0) return 127;
  const dbov = 10 * Math.log10(sum / n);
  const level = Math.round(-dbov);
  return level < 0 ? 0 : level > 127 ? 127 : level;
}
