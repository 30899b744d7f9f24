/**
 * Audio NACK (RFC 4585 §6.2.1 Generic NACK) for one forwarded audio output: the last packets it sent,
 * as plain RTP (before SRTP), so a NACKed packet can be sent again with its own sequence number —
 * and so its own SRTP index: the receiver never got that index, so its replay window takes it, and
 * the same plaintext under the same index gives the same ciphertext (RFC 3711 §9.1 is not broken).
 *
 * Audio only pays for a retransmission when it can arrive before the receiver plays the frame: the
 * output answers a NACK only while the measured round trip is at most `maxRttMs` and the packet is
 * at most `maxAgeMs` old (docs/audio.md "Resilience"). Bounded memory: `capacity` packets of up to
 * 256 bytes each (a larger packet grows its entry once), allocated when NACK is first negotiated.
 */

export interface NackOptions {
  /** Packets kept per output (default 32 = 640 ms of 20 ms audio). */
  capacity?: number;
  /** Answer NACKs only while the output's RTT (RTCP RR) is at most this, ms (default 100). */
  maxRttMs?: number;
  /** Never resend a packet older than this, ms (default 200): the receiver has played or concealed it. */
  maxAgeMs?: number;
}

export interface NackStats {
  /** Sequence numbers NACKed by the receiver. */
  requested: number;
  /** Of those, sent again. */
  resent: number;
  /** Not in the history any more (too old or never sent). */
  missing: number;
  /** Refused because the round trip or the age says it would arrive too late. */
  tooLate: number;
}

import { copyPrefix } from './bytes.ts';

const ENTRY_BYTES = 256;

export class RetransmitHistory {
  readonly capacity: number;
  readonly maxRttMs: number;
  readonly maxAgeMs: number;
  readonly #data: Buffer[] = [];
  readonly #length: Uint16Array;
  readonly #seq: Int32Array;
  readonly #sentMs: Float64Array;
  readonly stats: NackStats = { requested: 0, resent: 0, missing: 0, tooLate: 0 };

  constructor(options: NackOptions = {}) {
    const capacity = options.capacity ?? 32;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1024) throw new RangeError(`NACK history capacity must be 1…1024, got ${capacity}`);
    this.capacity = capacity;
    this.maxRttMs = options.maxRttMs ?? 100;
    this.maxAgeMs = options.maxAgeMs ?? 200;
    this.#length = new Uint16Array(capacity);
    this.#seq = new Int32Array(capacity).fill(-1);
    this.#sentMs = new Float64Array(capacity);
    for (let i = 0; i < capacity; i++) this.#data.push(Buffer.allocUnsafe(ENTRY_BYTES));
  }

  /** Keeps the plain RTP packet `buf[0, length)` with sequence number `seq`, sent at `nowMs`. */
  store(buf: Buffer, length: number, seq: number, nowMs: number): void {
    const i = seq % this.capacity;
    let entry = this.#data[i]!;
    if (length > entry.length) this.#data[i] = entry = Buffer.allocUnsafe(Math.min(Math.max(length, entry.length * 2), 1500));
    if (length > entry.length) {
      this.#seq[i] = -1;
      return;
    }
    copyPrefix(buf, length, entry, 0); // Buffer#copy of part of `buf` would allocate a view per packet
    this.#length[i] = length;
    this.#seq[i] = seq;
    this.#sentMs[i] = nowMs;
  }

  /**
   * The history index of packet `seq` if it should be sent again now (given the output's RTT, or
   * undefined before the first RR), else −1. Counts the request.
   */
  lookup(seq: number, nowMs: number, rttMs: number | undefined): number {
    this.stats.requested++;
    const i = seq % this.capacity;
    if (this.#seq[i] !== seq) {
      this.stats.missing++;
      return -1;
    }
    if ((rttMs !== undefined && rttMs > this.maxRttMs) || nowMs - this.#sentMs[i]! > this.maxAgeMs) {
      this.stats.tooLate++;
      return -1;
    }
    return i;
  }

  packet(index: number): Buffer {
    return this.#data[index]!;
  }

  packetLength(index: number): number {
    return this.#length[index]!;
  }
}
