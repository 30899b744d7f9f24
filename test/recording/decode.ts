import { readFileSync } from 'node:fs';
import { readOggOpus, type OggOpusFile } from '../../src/codec/ogg.ts';
import { OpusDecoder } from '../../src/codec/opus.ts';
import { channelOf } from '../codec/signal.ts';

/** An Ogg Opus recording read back: the parsed stream and its first channel decoded at 48 kHz. */
export interface DecodedRecording {
  file: OggOpusFile & { truncated: boolean };
  pcm: Float32Array;
}

/** Parses `bytes` (CRCs checked) and decodes every packet with our Opus decoder, pre-skip removed. */
export function decodeRecording(bytes: Uint8Array): DecodedRecording {
  const file = readOggOpus(bytes);
  const channels = file.head.channels === 2 ? 2 : 1;
  const decoder = new OpusDecoder({ sampleRate: 48000, channels });
  const chunks: Float32Array[] = [];
  let total = 0;
  try {
    for (const packet of file.packets) {
      const pcm = channelOf(decoder.decode(packet), channels, 0);
      chunks.push(pcm);
      total += pcm.length;
    }
  } finally {
    decoder.close();
  }
  const all = new Float32Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return { file, pcm: all.subarray(Math.min(file.head.preSkip, all.length)) };
}

export function decodeRecordingFile(path: string): DecodedRecording {
  return decodeRecording(readFileSync(path));
}

/** Samples [from, to) seconds of a 48 kHz signal. */
export function seconds(pcm: Float32Array, from: number, to: number): Float32Array {
  return pcm.subarray(Math.round(from * 48000), Math.min(pcm.length, Math.round(to * 48000)));
}
