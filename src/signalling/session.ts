import type { Identity } from '../auth/tokens.ts';
import { ReplayBuffer } from './replay-buffer.ts';
import type { BucketState } from './token-bucket.ts';
import type { Connection } from './transport.ts';

/**
 * A signalling session: an authenticated identity with its rooms, its outgoing sequence and replay
 * buffer. It outlives connections: a drop detaches the connection and starts the resume grace
 * timer; `resume` attaches a new one and replays what was missed.
 */
export class Session {
  readonly id: string;
  readonly resumeToken: string;
  /** Replaced by a `refresh` with a newer token of the same user (ops/session.ts). */
  identity: Identity;
  readonly replay: ReplayBuffer;
  /** roomId → participantId. */
  readonly rooms = new Map<string, string>();
  /** Highest seq stamped so far. */
  seq = 0;
  connection: Connection | null = null;
  graceTimer: NodeJS.Timeout | null = null;
  ended = false;
  /**
   * The rate limit's state when the session last lost its connection (inbound.ts takeToken): a
   * resume continues from it, so reconnecting never refills the bucket (bucketAt 0: none saved).
   */
  bucketTokens = 0;
  bucketAt = 0;
  bucketDropped = 0;
  bucketLimited = false;
  /** The join rate limit's bucket (join-limit.ts), from the first join on; kept across resumes. */
  joins: BucketState | null = null;
  /** Limit violations already logged for this session (log once, count always); created on the first. */
  logged: Set<string> | null = null;

  constructor(id: string, resumeToken: string, identity: Identity, replayMaxMessages: number, replayMaxBytes: number) {
    this.id = id;
    this.resumeToken = resumeToken;
    this.identity = identity;
    this.replay = new ReplayBuffer(replayMaxMessages, replayMaxBytes);
  }

  /**
   * Take the next seq for an encoded (unstamped) message and keep the body for replay; returns the
   * seq to stamp on send. The body is recorded even without a connection: that is what a later
   * `resume` replays. Bodies are shared between recipients and must not be mutated afterwards.
   */
  next(body: Uint8Array): number {
    const seq = ++this.seq;
    this.replay.push(seq, body);
    return seq;
  }
}
