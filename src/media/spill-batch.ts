import type { MessagePort } from 'node:worker_threads';
import { copyPrefix } from './bytes.ts';
import { OFF_LEN, RecordScratch, SCRATCH_BYTES, type RecordHandler, type SpillReceiver, type SpillSender } from './spill-wire.ts';

/**
 * The other spill link transport (docs/media.md "Rooms over several workers"): records are
 * appended to one reused buffer and posted as one message per event-loop turn (setImmediate),
 * so a burst of packets costs one postMessage, not one each. The message is a copy (structured
 * clone), made once per batch. Kept beside the SharedArrayBuffer ring for the measurement
 * (bench/bigroom/link.ts) and as the fallback where SharedArrayBuffer is unavailable.
 */

const BATCH_BYTES = 64 * 1024;

export class BatchSender implements SpillSender {
  readonly #port: MessagePort;
  readonly #buf = Buffer.allocUnsafe(BATCH_BYTES);
  #len = 0;
  #scheduled = false;
  #dropped = 0;
  #closed = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#len === 0 || this.#closed) return;
    this.#port.postMessage(this.#buf.subarray(0, this.#len));
    this.#len = 0;
  };

  constructor(port: MessagePort) {
    this.#port = port;
  }

  get dropped(): number {
    return this.#dropped;
  }

  write(record: Buffer, len: number): boolean {
    if (this.#closed || this.#len + len > BATCH_BYTES) {
      this.#dropped++;
      return false;
    }
    copyPrefix(record, len, this.#buf, this.#len);
    this.#len += len;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.#port.close();
  }
}

export class BatchReceiver implements SpillReceiver {
  readonly #port: MessagePort;
  /** One batch, copied in whole from the message (no allocation), then the scratch (spill-wire.ts RecordScratch). */
  readonly #buf = Buffer.allocUnsafe(BATCH_BYTES + SCRATCH_BYTES);
  readonly #scratch = new RecordScratch(this.#buf, BATCH_BYTES);
  #records = 0;

  constructor(port: MessagePort, onRecord: RecordHandler) {
    this.#port = port;
    port.on('message', (bytes: unknown) => {
      if (!(bytes instanceof Uint8Array) || bytes.length > BATCH_BYTES) return;
      const buf = this.#buf;
      buf.set(bytes, 0);
      const n = bytes.length;
      let at = 0;
      while (at + 4 <= n) {
        const len = buf.readUInt16LE(at + OFF_LEN);
        if (len < 4 || at + len > n) return;
        this.#records++;
        try {
          onRecord(buf, at, len, this.#scratch.copy);
        } catch {
          // A handler bug must not stop the link.
        }
        at += len;
      }
    });
  }

  get records(): number {
    return this.#records;
  }

  close(): void {
    this.#port.close();
  }
}
