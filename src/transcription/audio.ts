import { readOggOpus } from '../codec/ogg.ts';
import { OpusDecoder } from '../codec/opus.ts';

/** The recognizers' input rate: what pocketsphinx's en-us model and whisper.cpp expect. */
export const TRANSCRIPTION_RATE = 16_000;
/** Ogg Opus granules and pre-skip are 48 kHz samples (RFC 7845 §4). */
const OPUS_RATE = 48_000;

/**
 * One Ogg Opus track (the recorder's file, src/recording/recorder.ts) as 16 kHz mono int16 PCM.
 * libopus decodes straight to 16 kHz (opus_decoder_create at 16000: the decoder's own band
 * limiting and resampling, RFC 6716 §4), so no resampler of ours is involved. Pre-skip is removed
 * (RFC 7845 §4.2), so sample 0 is the track's first sample; lost-frame packets decode through
 * PLC and the recorder's silence packets to zeros, so the timeline is the file's.
 */
export function decodeTrack16k(bytes: Uint8Array): Int16Array {
  const file = readOggOpus(bytes);
  const decoder = new OpusDecoder({ sampleRate: TRANSCRIPTION_RATE, channels: 1 });
  try {
    const chunks: Int16Array[] = [];
    let total = 0;
    for (const packet of file.packets) {
      let pcm: Int16Array;
      try {
        pcm = decoder.decode16(packet);
      } catch {
        // A packet libopus refuses (the recorder checks them, so only a damaged file): conceal it.
        pcm = decoder.decode16(null);
      }
      chunks.push(pcm.slice());
      total += pcm.length;
    }
    const out = new Int16Array(total);
    let at = 0;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    const preSkip = Math.round((file.head.preSkip * TRANSCRIPTION_RATE) / OPUS_RATE);
    return out.subarray(Math.min(preSkip, total));
  } finally {
    decoder.close();
  }
}

/** A RIFF WAVE file (PCM, 16-bit, mono) around `pcm`: what the recognizers read. */
export function wavFile(pcm: Int16Array, sampleRate = TRANSCRIPTION_RATE): Buffer {
  const header = Buffer.alloc(44);
  const dataBytes = pcm.length * 2;
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataBytes, 40);
  return Buffer.concat([header, Buffer.from(pcm.buffer, pcm.byteOffset, dataBytes)]);
}
