/**
 * WebSocket close codes used by VoxLink signalling (one table, shared by server and client SDK).
 *
 * RFC 6455 §7.4.1 defines 1000–1015; §7.4.2 reserves 4000–4999 for private use, which is where
 * VoxLink's own codes live. Each code is either:
 * - `resumable`: the client should reconnect (with backoff) and send `resume`; the session and its
 *   room memberships survive for the grace period, so nothing visible happens to other participants.
 * - `terminal`: the client must NOT retry automatically (a bad token stays bad, a replaced session
 *   stays replaced); surface the reason to the user instead.
 */
export const CloseCode = {
  /** Normal closure (RFC 6455): the client said goodbye, or the server ended the session on request. */
  NORMAL: 1000,
  /** Server shutting down or restarting (RFC 6455 "going away"). Reconnect; resume may fail → re-join. */
  GOING_AWAY: 1001,
  /** A text frame arrived; v1 is binary-only (RFC 6455 "unsupported data"). */
  UNSUPPORTED_DATA: 1003,
  /** Auth failed: missing, malformed, expired, not-yet-valid or forged token, or no grant for the room. */
  POLICY_VIOLATION: 1008,
  /** Frame larger than `limits.maxPayloadBytes` (RFC 6455 "message too big"). */
  MESSAGE_TOO_BIG: 1009,
  /** Unexpected server error while handling the connection. */
  INTERNAL_ERROR: 1011,
  /** Server at `limits.maxSessions` (IANA-registered "Try Again Later"). Retry with backoff. */
  TRY_AGAIN_LATER: 1013,
  /** No heartbeat within `signalling.heartbeatTimeoutMs`: the connection is considered a zombie. */
  HEARTBEAT_TIMEOUT: 4000,
  /** The same identity (`sub`) joined the same room from a newer connection; newest wins. */
  SESSION_REPLACED: 4001,
  /** The client read too slowly: outgoing buffer exceeded `limits.maxBackpressureBytes`. */
  BACKPRESSURE: 4002,
  /** The client kept sending after being told RATE_LIMITED (`limits.rateCloseAfterDropped`). */
  RATE_LIMITED: 4003,
  /** Neither `hello` nor `resume` arrived within `signalling.helloTimeoutMs`. */
  HELLO_TIMEOUT: 4004,
  /** The server ended the session (kicked by an admin or the session was closed server-side). */
  SESSION_ENDED: 4005,
  /** The peer violated the protocol in a way that cannot be answered with an `error`. */
  PROTOCOL_VIOLATION: 4006,
} as const;

export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

export interface CloseCodeInfo {
  name: CloseCodeName;
  resumable: boolean;
  description: string;
}

const table: Record<number, CloseCodeInfo> = {
  1000: { name: 'NORMAL', resumable: false, description: 'normal closure' },
  1001: { name: 'GOING_AWAY', resumable: true, description: 'server going away' },
  1003: { name: 'UNSUPPORTED_DATA', resumable: false, description: 'text frames are not accepted' },
  1008: { name: 'POLICY_VIOLATION', resumable: false, description: 'authentication or authorization failed' },
  1009: { name: 'MESSAGE_TOO_BIG', resumable: false, description: 'frame larger than the maximum payload' },
  1011: { name: 'INTERNAL_ERROR', resumable: true, description: 'internal server error' },
  1013: { name: 'TRY_AGAIN_LATER', resumable: true, description: 'server full, retry later' },
  4000: { name: 'HEARTBEAT_TIMEOUT', resumable: true, description: 'no heartbeat in time' },
  4001: { name: 'SESSION_REPLACED', resumable: false, description: 'same identity connected elsewhere' },
  4002: { name: 'BACKPRESSURE', resumable: true, description: 'client read too slowly' },
  4003: { name: 'RATE_LIMITED', resumable: true, description: 'too many messages' },
  4004: { name: 'HELLO_TIMEOUT', resumable: true, description: 'no hello or resume in time' },
  4005: { name: 'SESSION_ENDED', resumable: false, description: 'session ended by the server' },
  4006: { name: 'PROTOCOL_VIOLATION', resumable: false, description: 'protocol violation' },
};

/** Look up a close code. Unknown codes (incl. 1006 abnormal closure = network drop) are resumable. */
export function closeCodeInfo(code: number): CloseCodeInfo | undefined {
  return table[code];
}

/**
 * Whether a client should try to resume after this close code. Abnormal closures (1005/1006, no close
 * frame: network loss, process killed) are resumable; everything in the table follows its flag.
 */
export function isResumableClose(code: number): boolean {
  const info = table[code];
  return info === undefined ? true : info.resumable;
}

export const closeCodeTable: readonly (CloseCodeInfo & { code: number })[] = Object.entries(table).map(
  ([code, info]) => ({ code: Number(code), ...info }),
);
