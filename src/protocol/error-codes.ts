/**
 * Codes carried by the `error` message (`{ op: 'error', code, message, ref? }`). An `error` never
 * closes the connection by itself; conditions that do are close codes (see close-codes.ts).
 */
export const ProtocolErrorCodes = [
  /** Bytes are not one well-formed MessagePack value (random bytes, truncated, trailing data). */
  'BAD_MESSAGE',
  /** MessagePack extension types (timestamps, records, …) are not part of the protocol. */
  'UNSUPPORTED_TYPE',
  /** `op` is missing or not a string. */
  'MISSING_OP',
  /** `op` is not a v1 client operation. */
  'UNKNOWN_OP',
  /** The message failed schema validation (wrong type, missing field, out of range). */
  'INVALID_MESSAGE',
  /** An operation other than `hello`/`resume` arrived before the session was established. */
  'NOT_AUTHENTICATED',
  /** `hello` or `resume` on a connection that already has a session. */
  'ALREADY_AUTHENTICATED',
  /** The operation names a room the session has not joined. */
  'NOT_IN_ROOM',
  /** `join` for a room the session is already in. */
  'ALREADY_IN_ROOM',
  /** The room has `limits.maxParticipantsPerRoom` participants. */
  'ROOM_FULL',
  /** The session is in `limits.maxRoomsPerSession` rooms already. */
  'TOO_MANY_ROOMS',
  /** Token bucket empty; the message was dropped. Sent once per burst, not per dropped message. */
  'RATE_LIMITED',
  /**
   * `join` beyond the session's join rate (`limits.joinsPerMinute`, burst `limits.joinBurst`); the
   * join was not applied. `retryAfterMs` says when the next join will be accepted.
   */
  'JOIN_RATE_LIMITED',
  /** The token lacks the grant for this operation (e.g. muting someone else needs `admin`). */
  'FORBIDDEN',
  /** The target participant is not in the room. */
  'PARTICIPANT_NOT_FOUND',
  /** No media plane is configured; media messages cannot be served. */
  'MEDIA_UNAVAILABLE',
  /** The media plane rejected or failed the request. */
  'MEDIA_FAILED',
  /**
   * `join` of a `p2p` room (no server media) by a client that did not say it can connect
   * directly (`join.options.direct`); an `auto` room takes it and stays on the server.
   */
  'DIRECT_REQUIRED',
  /**
   * Cluster: the join needs a room placement and the cluster registry (Redis) is unreachable.
   * Calls already running go on; retry the join later (docs/cluster.md).
   */
  'CLUSTER_UNAVAILABLE',
  /** `refresh` with a token that fails verification or names another user; the current token stays in force. */
  'TOKEN_REJECTED',
  /** Unexpected server error; the message was not applied. */
  'INTERNAL',
] as const;

export type ProtocolErrorCode = (typeof ProtocolErrorCodes)[number];
