/**
 * The two small interfaces the server-side audio processors (jitter buffer, room mixer, transcoders)
 * need from a codec: decode one 20 ms frame to mono float PCM, encode one back. The Opus binding and
 * G.711 are adapted to them in src/codec/frame-codecs.ts, so the processors never depend on how a
 * codec is bound (wasm views, tables) and G.711 inputs mix exactly like Opus ones.
 */

export interface FrameDecoder {
  /** PCM rate the decoder produces (48 kHz for the mix bus; 8 kHz for telephony). */
  readonly sampleRate: number;
  /** Decodes `packet` into `pcm`; returns samples written (one frame). */
  decode(packet: Uint8Array, pcm: Float32Array): number;
  /**
   * Opus in-band FEC (RFC 6716 §2.1.7, `opus_decode(..., decode_fec=1)`): rebuilds the frame *before*
   * `next` from the LBRR copy carried in `next`. Returns 0 (and writes nothing) when `next` carries
   * no FEC, so the caller can try DRED or conceal instead. Absent when the codec has no FEC.
   */
  decodeFec?(next: Uint8Array, pcm: Float32Array): number;
  /**
   * Opus 1.5 DRED (`opus_dred_parse` + `opus_decoder_dred_decode`): rebuilds the frame that starts
   * `offsetSamples` (at 48 kHz) before the first sample of `later`. Returns 0 when `later` carries no
   * DRED reaching back that far.
   */
  decodeDred?(later: Uint8Array, offsetSamples: number, pcm: Float32Array): number;
  /** Packet loss concealment for one frame (`opus_decode(NULL)`); silence for codecs without PLC. */
  conceal(pcm: Float32Array): number;
  reset?(): void;
}

export interface FrameEncoder {
  readonly sampleRate: number;
  /**
   * Encodes one frame of mono float PCM. Returns the packet as a view that stays valid until the
   * next call on this encoder (for Opus a view on wasm memory: no copy).
   */
  encode(pcm: Float32Array): Uint8Array;
  reset?(): void;
}
