import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { inboundAudio, type InboundAudio } from '../../src/media/audio-tap.ts';
import { SpillFabric, type SpillLinkEnd } from '../../src/media/spill.ts';
import { createSpillRing, RingReceiver, RingSender } from '../../src/media/spill-ring.ts';
import { BatchReceiver, BatchSender } from '../../src/media/spill-batch.ts';

/**
 * The spill links on their own (docs/media.md "Rooms over several workers"): records of varying
 * size cross both transports in order and intact, a ring wraps around many times, a full ring
 * refuses and counts instead of overwriting, and two SpillFabrics pass audio and the home's
 * ranking between them by participant number.
 */

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A record of `len` bytes (multiple of 4) whose body is derived from `n`. */
function record(n: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  b.writeUInt16LE(len, 0);
  b[2] = 1;
  b.writeUInt32LE(n, 4);
  for (let i = 8; i < len; i++) b[i] = (n + i) & 0xff;
  return b;
}

function checkRecord(buf: Buffer, at: number, len: number): number {
  const n = buf.readUInt32LE(at + 4);
  for (let i = 8; i < len; i++) if (buf[at + i] !== ((n + i) & 0xff)) throw new Error(`record ${n} corrupt at byte ${i}`);
  return n;
}

describe('spill link transports', () => {
  for (const transport of ['ring', 'batch'] as const) {
    it(`${transport}: 20000 records of 8…1200 bytes arrive in order and intact`, async () => {
      const got: number[] = [];
      const onRecord = (buf: Buffer, at: number, len: number): void => void got.push(checkRecord(buf, at, len));
      let sender: RingSender | BatchSender;
      let receiver: RingReceiver | BatchReceiver;
      if (transport === 'ring') {
        const sab = createSpillRing(4096);
        sender = new RingSender(sab);
        receiver = new RingReceiver(sab, onRecord);
      } else {
        const { port1, port2 } = new MessageChannel();
        sender = new BatchSender(port1);
        receiver = new BatchReceiver(port2, onRecord);
      }
      let sent = 0;
      for (let n = 0; n < 20_000; n++) {
        const len = 8 + ((n * 68) % 1196) - (((n * 68) % 1196) % 4);
        // A 4 KiB ring holds a few records: wait for the consumer rather than drop.
        while (!sender.write(record(n, len), len)) await sleep(1);
        sent++;
        if (n % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => got.length === sent, 10_000, 'all records');
      expect(got).toEqual([...Array(sent).keys()]);
      expect(receiver.records).toBe(sent);
      sender.close();
      receiver.close();
    });
  }

  it('a full ring refuses records and counts them instead of overwriting unread ones', async () => {
    const sab = createSpillRing(4096);
    const sender = new RingSender(sab);
    let accepted = 0;
    for (let n = 0; n < 100; n++) if (sender.write(record(n, 400), 400)) accepted++;
    expect(accepted).toBe(10); // 10 × 400 bytes fit 4096
    expect(sender.dropped).toBe(90);
    const got: number[] = [];
    const receiver = new RingReceiver(sab, (buf, at, len) => void got.push(checkRecord(buf, at, len)));
    await waitFor(() => got.length === 10, 5000, 'the accepted records');
    expect(got).toEqual([...Array(10).keys()]);
    // Drained: there is room again.
    expect(sender.write(record(100, 400), 400)).toBe(true);
    await waitFor(() => got.length === 11, 5000, 'the next record');
    sender.close();
    receiver.close();
  });

  it('two fabrics pass audio by participant number and the home’s ranking; unknown numbers are counted, not delivered', async () => {
    const heardAtHome: [string, number, number, number][] = [];
    const heardAtSpill: string[] = [];
    let ranking: string[] = [];
    const home = new SpillFabric({
      shard: 0,
      home: true,
      onAudio: (id, a) => void heardAtHome.push([id, a.sequenceNumber, a.level, a.payload.length]),
      onRanking: () => {
        throw new Error('the home never takes a ranking');
      },
    });
    const spill = new SpillFabric({
      shard: 1,
      home: false,
      onAudio: (id) => void heardAtSpill.push(id),
      onRanking: (r) => void (ranking = [...r]),
    });
    const ab = createSpillRing();
    const ba = createSpillRing();
    home.link({ peer: 1, transport: 'ring', send: ab, receive: ba } satisfies SpillLinkEnd);
    spill.link({ peer: 0, transport: 'ring', send: ba, receive: ab } satisfies SpillLinkEnd);
    home.addLocal('alice', 1);
    spill.addLocal('erin', 5);
    home.setRemote({ participantId: 'erin', number: 5, name: 'Erin', publish: true, muted: false });
    spill.setRemote({ participantId: 'alice', number: 1, name: 'Alice', publish: true, muted: false });

    const a: InboundAudio = inboundAudio();
    a.payload = Buffer.from('opus-frame-bytes');
    a.level = 30;
    for (let seq = 0; seq < 3; seq++) {
      a.sequenceNumber = seq;
      spill.forward('erin', a);
    }
    home.forward('alice', a);
    home.sendRanking(['erin', 'alice', 'nobody']);
    await waitFor(() => heardAtHome.length === 3 && heardAtSpill.length === 1 && ranking.length === 2, 5000, 'records');
    expect(heardAtHome).toEqual([
      ['erin', 0, 30, 16],
      ['erin', 1, 30, 16],
      ['erin', 2, 30, 16],
    ]);
    expect(heardAtSpill).toEqual(['alice']);
    expect(ranking).toEqual(['erin', 'alice']);

    // Erin left: a packet still in flight under her number is counted, not delivered.
    home.removeRemote('erin');
    spill.forward('erin', a);
    await waitFor(() => home.stats().unknownMember === 1, 5000, 'the unknown record');
    expect(heardAtHome).toHaveLength(3);
    expect(() => home.setRemote({ participantId: 'x', number: 0, name: 'x', publish: true, muted: false })).toThrow(/1…65535/);
    home.close();
    spill.close();
  });
});
