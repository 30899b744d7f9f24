/**
 * One catalogue of VoxLink error codes (LiveKit's room/errors.ts and piscina's errors.ts are the
 * model): every error a user, a client or a test can observe carries a machine-readable `code`.
 * Each area adds its codes to the union below, grouped, instead of inventing ad-hoc strings.
 */
export type VoxErrorCode =
  // codec (src/codec)
  | 'OPUS_ERROR'
  | 'CODEC_CLOSED'
  | 'CODEC_BAD_ARGUMENT'
  | 'WASM_LOAD_FAILED'
  // generic
  | 'INTERNAL'
  | 'INVALID_ARGUMENT'
  | 'CLOSED'
  | 'TIMEOUT';

export class VoxError extends Error {
  override readonly name = 'VoxError';
  readonly code: VoxErrorCode;

  constructor(code: VoxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isVoxError(value: unknown, code?: VoxErrorCode): value is VoxError {
  return value instanceof VoxError && (code === undefined || value.code === code);
}
