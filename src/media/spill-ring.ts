import { copyPrefix } from './bytes.ts';
import { KIND_PAD, OFF_KIND, OFF_LEN, RecordScratch, SCRATCH_BYTES, type RecordHandler, type SpillReceiver, type SpillSender } from './spill-wire.ts';

/**
 * A single-producer single-consumer byte ring on a SharedArrayBuffer between two worker threads,
 * one direction of a spill link (docs/media.md "Rooms over several workers"). The producer copies
 * each record in and publishes it with one atomic store; the consumer sleeps on
 * `Atomics.waitAsync` and is woken by the producer only when it said it is going to sleep (one
 * `Atomics.notify` per wake-up, not per packet). No allocation per record on either side.
 *
 * Layout: 64 bytes of Int32 control words, then `capacity` bytes of records (a power of two), then
 * the consumer's scratch (SCRATCH_BYTES, spill-wire.ts RecordScratch: a payload is handed on as a
 * Buffer of its own length by `copyWithin` inside the one SharedArrayBuffer, allocating nothing).
 * HEAD and TAIL are free-running byte counters (int32, wrapping): used = HEAD − TAIL. A record
 * never straddles the end: the rest of the ring is filled with a pad record and the record starts
 * at offset 0.
 */

const HEAD = 0;
const TAIL = 1;
const SEQ = 2;
const SLEEPING = 3;
const CLOSED = 4;
const CONTROL_BYTES = 64;
/** The consumer wakes at least this often on its own, so a closed ring is noticed even without a notify. */
const IDLE_WAKE_MS = 1000;

/** `Atomics.waitAsync` (V8, Node ≥ 16), which TypeScript's ES2022 lib does not declare yet. */
type WaitAsync = (
  view: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** A ring of `capacity` bytes (rounded up to a power of two, at least 4 KiB). */
export function createSpillRing(capacity = 256 * 1024): SharedArrayBuffer {
  let size = 4096;
  while (size < capacity) size *= 2;
  return new SharedArrayBuffer(CONTROL_BYTES + size + SCRATCH_BYTES);
}

/** `data` spans the records and, after them (at `mask + 1`), the consumer's scratch. */
function views(sab: SharedArrayBuffer): { ctrl: Int32Array; data: Buffer; mask: number } {
  const size = sab.byteLength - CONTROL_BYTES - SCRATCH_BYTES;
  if (size < 4096 || (size & (size - 1)) !== 0) throw new RangeError(`not a spill ring: ${sab.byteLength} bytes`);
  return { ctrl: new Int32Array(sab, 0, CONTROL_BYTES / 4), data: Buffer.from(sab, CONTROL_BYTES, size + SCRATCH_BYTES), mask: size - 1 };
}

export class RingSender implements SpillSender {
  readonly #ctrl: Int32Array;
  readonly #data: Buffer;
  readonly #mask: number;
  #dropped = 0;
  #closed = false;

  constructor(sab: SharedArrayBuffer) {
    const v = views(sab);
    this.#ctrl = v.ctrl;
    this.#data = v.data;
    this.#mask = v.mask;
  }

  get dropped(): number {
    return this.#dropped;
  }

  write(record: Buffer, len: number): boolean {
    const ctrl = this.#ctrl;
    if (this.#closed) return false;
    const head = Atomics.load(ctrl, HEAD);
    const free = this.#mask + 1 - ((head - Atomics.load(ctrl, TAIL)) | 0);
    const pos = head & this.#mask;
    const toEnd = this.#mask + 1 - pos;
    const pad = toEnd < len ? toEnd : 0;
    if (pad + len > free) {
      this.#dropped++;
      return false;
    }
    const data = this.#data;
    let at = pos;
    if (pad > 0) {
      data.writeUInt16LE(pad, at + OFF_LEN);
      data[at + OFF_KIND] = KIND_PAD;
      at = 0;
    }
    copyPrefix(record, len, data, at);
    Atomics.store(ctrl, HEAD, (head + pad + len) | 0);
    // Dekker with the consumer (it sets SLEEPING, then re-reads HEAD): one of us sees the other.
    if (Atomics.compareExchange(ctrl, SLEEPING, 1, 0) === 1) {
      Atomics.add(ctrl, SEQ, 1);
      Atomics.notify(ctrl, SEQ, 1);
    }
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#ctrl, CLOSED, 1);
    Atomics.add(this.#ctrl, SEQ, 1);
    Atomics.notify(this.#ctrl, SEQ);
  }
}

export class RingReceiver implements SpillReceiver {
  readonly #ctrl: Int32Array;
  readonly #data: Buffer;
  readonly #mask: number;
  readonly #onRecord: RecordHandler;
  readonly #scratch: RecordScratch;
  #records = 0;
  #closed = false;

  constructor(sab: SharedArrayBuffer, onRecord: RecordHandler) {
    const v = views(sab);
    this.#ctrl = v.ctrl;
    this.#data = v.data;
    this.#mask = v.mask;
    this.#onRecord = onRecord;
    this.#scratch = new RecordScratch(v.data, v.mask + 1);
    void this.#run();
  }

  get records(): number {
    return this.#records;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.add(this.#ctrl, SEQ, 1);
    Atomics.notify(this.#ctrl, SEQ);
  }

  async #run(): Promise<void> {
    const ctrl = this.#ctrl;
    while (!this.#closed && Atomics.load(ctrl, CLOSED) === 0) {
      this.#drain();
      const seq = Atomics.load(ctrl, SEQ);
      Atomics.store(ctrl, SLEEPING, 1);
      if (Atomics.load(ctrl, HEAD) !== Atomics.load(ctrl, TAIL)) {
        // More arrived while draining: take it on the next turn, so I/O of this thread still runs.
        Atomics.store(ctrl, SLEEPING, 0);
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const wait = waitAsync(ctrl, SEQ, seq, IDLE_WAKE_MS);
      if (wait.async) await wait.value;
      Atomics.store(ctrl, SLEEPING, 0);
    }
  }

  /** Takes what the ring holds now, synchronously (the receiver also drains on its own when woken). */
  drain(): void {
    this.#drain();
  }

  #drain(): void {
    const ctrl = this.#ctrl;
    const data = this.#data;
    const head = Atomics.load(ctrl, HEAD);
    let tail = Atomics.load(ctrl, TAIL);
    while (tail !== head && !this.#closed) {
      const at = tail & this.#mask;
      const len = data.readUInt16LE(at + OFF_LEN);
      if (len < 4) {
        // A corrupt ring (cannot happen with our producer): drop everything rather than loop.
        Atomics.store(ctrl, TAIL, head);
        return;
      }
      if (data[at + OFF_KIND] !== KIND_PAD) {
        this.#records++;
        try {
          this.#onRecord(data, at, len, this.#scratch.copy);
        } catch {
          // A handler bug must not stop the link; the room counts what it could not use.
        }
      }
      tail = (tail + len) | 0;
      Atomics.store(ctrl, TAIL, tail);
    }
  }
}
