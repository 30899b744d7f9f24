import { VoxError, type VoxErrorCode } from '../errors.ts';
import { closeCodeInfo, type ProtocolErrorCode } from '../protocol/index.ts';

/**
 * What the SDK says to people when something goes wrong: one short sentence, then what to do.
 * Apps show `err.message` as it is; programs branch on `err.code` / `err.serverCode` /
 * `err.closeCode`; `err.detail` keeps the technical account (operation, close code and name, the
 * server's reason) for logs and bug reports.
 *
 * One table: the protocol's `error` codes (docs/protocol.md), its close codes, and the SDK's own
 * codes for conditions the server never saw (no connection, timeouts). An app that wants other
 * words (or another language) maps the same keys from `errorSentences`.
 */
export const errorSentences = {
  // Close codes (src/protocol/close-codes.ts); 1008 is refined by the server's reason below.
  'close:1000': 'The call has ended.',
  'close:1001': 'The voice server is restarting — try again in a moment.',
  'close:1003': 'This app and the voice server do not understand each other — update the app.',
  'close:1008': 'Your link is not valid — ask for a new one.',
  'close:1009': 'The app sent more than the voice server accepts — update the app or tell its operator.',
  'close:1011': 'The voice server ran into a problem — try again in a moment.',
  'close:1013': 'The voice server is full right now — try again later.',
  'close:4000': 'The connection to the voice server stopped responding — check your network and try again.',
  'close:4001': 'You joined from another tab or device, so this one was disconnected — use the other one or join again here.',
  'close:4002': 'Your connection is too slow to keep up with the call — try a better network.',
  'close:4003': 'The app sent too many messages — wait a moment and join again.',
  'close:4004': 'Connecting to the voice server took too long — try again.',
  'close:4005': 'You were removed from the call — ask the host whether you may join again.',
  'close:4006': 'This app and the voice server do not understand each other — update the app.',
  // 1008 by the server's close reason (src/auth/tokens.ts, src/signalling).
  'auth:expired': 'Your link has expired — ask for a new one.',
  'auth:not_yet_valid': 'Your link is not valid yet — check the clock on this device or try again shortly.',
  'auth:no_room_grant': 'Your link does not let you into this room — ask for a link to this room.',
  // `error` replies (src/protocol/error-codes.ts).
  BAD_MESSAGE: 'The voice server could not read a request from this app — update the app.',
  UNSUPPORTED_TYPE: 'The voice server could not read a request from this app — update the app.',
  MISSING_OP: 'The voice server could not read a request from this app — update the app.',
  UNKNOWN_OP: 'The voice server does not know a request this app made — update the app or the server.',
  INVALID_MESSAGE: 'The voice server refused a malformed request from this app — update the app.',
  NOT_AUTHENTICATED: 'The app is not signed in to the voice server yet — connect first.',
  ALREADY_AUTHENTICATED: 'The app is already signed in on this connection — nothing to do.',
  NOT_IN_ROOM: 'You are not in this room — join it first.',
  ALREADY_IN_ROOM: 'You are already in this room — nothing to do.',
  ROOM_FULL: 'This room is full — try again later.',
  TOO_MANY_ROOMS: 'You are in too many rooms at once — leave one first.',
  RATE_LIMITED: 'Too many requests at once — wait a moment and try again.',
  JOIN_RATE_LIMITED: 'You joined and left rooms too often — wait a moment before joining again.',
  FORBIDDEN: 'Your link does not allow this — ask for one that does.',
  PARTICIPANT_NOT_FOUND: 'That participant is no longer in the room — refresh the list.',
  MEDIA_UNAVAILABLE: 'This voice server has audio turned off — ask its operator.',
  MEDIA_FAILED: 'The voice server could not set up audio — try again.',
  DIRECT_REQUIRED: 'This call connects its two people directly, which this app cannot do — use another app or room.',
  CLUSTER_UNAVAILABLE: 'The voice service cannot open new rooms right now — try again in a moment.',
  INTERNAL: 'The voice server ran into a problem — try again in a moment.',
  TOKEN_REJECTED: 'Your new link was not accepted — ask for a new one before the current one expires.',
  // The SDK's own codes (src/errors.ts), for what never reached the server.
  CLIENT_CONNECT_FAILED: 'Could not reach the voice server — check your network and the address, then try again.',
  CLIENT_CONNECTION_CLOSED: 'The connection to the voice server was lost — try again.',
  CLIENT_RECONNECT_FAILED: 'Lost the connection to the voice server and could not get it back — check your network and join again.',
  CLIENT_NOT_CONNECTED: 'Not connected to the voice server — connect first.',
  CLIENT_PROTOCOL_ERROR: 'The voice server sent something this app does not understand — update the app.',
  TIMEOUT: 'The voice server did not answer in time — try again.',
  INVALID_ARGUMENT: 'The app used the voice SDK the wrong way — this is a bug in the app.',
  unknown_close: 'The connection to the voice server was lost — check your network and try again.',
  'client:disconnected': 'You left the call.',
  other: 'Something went wrong with the call — try again.',
} as const satisfies Record<string, string>;

export type ErrorSentenceKey = keyof typeof errorSentences;

export interface SignallingErrorDetails {
  /** The server's `error` code (e.g. ROOM_FULL), when the server refused a request. */
  serverCode?: ProtocolErrorCode;
  /** The WebSocket close code that ended the connection (e.g. 1008 = bad token). */
  closeCode?: number;
  /** The close frame's reason text, as the server sent it. */
  closeReason?: string;
  /** Which sentence to use instead of the one the codes select. */
  sentence?: ErrorSentenceKey;
  /** The technical account: which operation, what the server said. Defaults to the sentence. */
  detail?: string;
  cause?: unknown;
}

/**
 * A VoxError from the signalling connection. `message` is the sentence for people (see
 * `errorSentences`); `code` the SDK's code; `serverCode` / `closeCode` what the server said;
 * `detail` the technical text (e.g. `join: closed 1008 POLICY_VIOLATION: token expired`).
 */
export class SignallingError extends VoxError {
  readonly serverCode: ProtocolErrorCode | undefined;
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
  /** Which table entry `message` came from, for apps that bring their own words. */
  readonly sentenceKey: ErrorSentenceKey;
  readonly detail: string;

  constructor(code: VoxErrorCode, details: SignallingErrorDetails = {}) {
    const key = details.sentence ?? sentenceKeyFor(code, details);
    const sentence = errorSentences[key];
    super(code, sentence, details.cause === undefined ? undefined : { cause: details.cause });
    this.serverCode = details.serverCode;
    this.closeCode = details.closeCode;
    this.closeReason = details.closeReason;
    this.sentenceKey = key;
    this.detail = details.detail ?? sentence;
  }

  /** The close code's name from the protocol table (e.g. POLICY_VIOLATION), if any. */
  get closeName(): string | undefined {
    return this.closeCode === undefined ? undefined : closeCodeInfo(this.closeCode)?.name;
  }

  /** The same error for one operation: same sentence and codes, the operation named in `detail`. */
  forOperation(op: string): SignallingError {
    return new SignallingError(this.code, {
      sentence: this.sentenceKey,
      serverCode: this.serverCode,
      closeCode: this.closeCode,
      closeReason: this.closeReason,
      detail: `${op}: ${this.detail}`,
      cause: this,
    });
  }
}

function sentenceKeyFor(code: VoxErrorCode, details: SignallingErrorDetails): ErrorSentenceKey {
  if (details.serverCode !== undefined) return details.serverCode;
  if (details.closeCode !== undefined) {
    if (details.closeCode === 1008) {
      // The server's reasons for 1008 (src/auth/tokens.ts describeJoseError, the join grant check).
      const reason = details.closeReason ?? '';
      if (reason.startsWith('token expired')) return 'auth:expired';
      if (reason.startsWith('token not yet valid')) return 'auth:not_yet_valid';
      if (reason.startsWith('no join grant')) return 'auth:no_room_grant';
    }
    const key = `close:${details.closeCode}`;
    return key in errorSentences ? (key as ErrorSentenceKey) : 'unknown_close';
  }
  return code in errorSentences ? (code as ErrorSentenceKey) : 'other';
}

/** `1008 POLICY_VIOLATION: token expired`, for `detail` and the reconnect policy's `reason`. */
export function describeClose(code: number, reason: string): string {
  const info = closeCodeInfo(code);
  const name = info ? info.name : code === 1006 ? 'ABNORMAL_CLOSURE' : 'UNKNOWN';
  return `${code} ${name}${reason ? `: ${reason}` : ''}`;
}
