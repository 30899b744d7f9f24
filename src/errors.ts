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
  // rooms: worker pool, main↔worker channel, media plane (src/rooms, workers/room.ts)
  | 'CHANNEL_CLOSED'
  | 'CHANNEL_TIMEOUT'
  | 'CHANNEL_MESSAGE_TOO_LARGE'
  | 'CHANNEL_UNKNOWN_METHOD'
  | 'ROOM_WORKER_DIED'
  | 'ROOM_NOT_FOUND'
  | 'POOL_CLOSED'
  // signalling, auth, config (src/signalling, src/auth, src/config.ts)
  | 'CONFIG_INVALID'
  | 'PORT_IN_USE'
  | 'AUTH_FAILED'
  | 'AUTH_KEY_MISSING'
  | 'PROTOCOL_ERROR'
  | 'MEDIA_UNAVAILABLE'
  // client SDK signalling (src/client)
  | 'CLIENT_NOT_CONNECTED'
  | 'CLIENT_CONNECT_FAILED'
  | 'CLIENT_CONNECTION_CLOSED'
  | 'CLIENT_TERMINAL_CLOSE'
  | 'CLIENT_RECONNECT_FAILED'
  | 'CLIENT_REQUEST_FAILED'
  | 'CLIENT_PROTOCOL_ERROR'
  // media (src/media, src/client/media)
  | 'MEDIA_UNKNOWN_PARTICIPANT'
  | 'MEDIA_ALREADY_JOINED'
  | 'MEDIA_NEGOTIATION_FAILED'
  | 'MEDIA_NOT_ALLOWED'
  | 'MEDIA_UNSUPPORTED'
  // recording (src/recording)
  | 'RECORDING_UNAVAILABLE'
  | 'RECORDING_FAILED'
  | 'RECORDING_NOT_FOUND'
  | 'RECORDING_STORAGE_UNAVAILABLE'
  // offline transcription (src/transcription)
  | 'TRANSCRIPTION_FAILED'
  // TURN secret store and coturn statistics (src/turn)
  | 'TURN_STORE_UNAVAILABLE'
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
