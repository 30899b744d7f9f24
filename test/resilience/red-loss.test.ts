import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpusEncoder } from '../../src/codec/opus.ts';
import type { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { sleep, waitFor } from '../media/harness.ts';
import { GilbertElliott } from './lossy-relay.ts';
import { capture, RelayedRoom } from './harness.ts';
import { EnvelopedTone, playout, recovery, toneSnrDb, type Recovery } from './measure.ts';

/**
 * RED per subscriber, under bursty loss, through a real media room (werift ICE/DTLS/SRTP, the
 * slot forwarder, VoxLink's fast path) with a LossyRelay the test owns in front of two listeners:
 *
 * - publishers of a 4 Hz-enveloped tone (measure.ts EnvelopedTone): `plain` (Opus, no in-band
 *   FEC, 440 Hz), `fec` (in-band FEC, 660 Hz), `dred` (Opus 1.5 DRED, no FEC, 880 Hz). Every Node client is asked for RED on its uplink (the
 *   server's offer lists `red/48000/2` first on the mic), so all three are RED publishers.
 * - `lossy` (RED-capable) and `lossyNoRed` (answers without RED) behind relays with the same
 *   seeded Gilbert–Elliott loss; `clean` (RED-capable) behind a relay without loss.
 *
 * Mechanisms compared, one listener × publisher each: none (lossyNoRed ← plain), FEC
 * (lossyNoRed ← fec), DRED (lossyNoRed ← dred), RED (lossy ← plain), RED+FEC (lossy ← fec).
 */

const PUBLISHERS = { plain: 440, fec: 660, dred: 880 } as const;
type Publisher = keyof typeof PUBLISHERS;
const ROWS: { name: string; listener: 'lossy' | 'lossyNoRed'; publisher: Publisher }[] = [
  { name: 'none', listener: 'lossyNoRed', publisher: 'plain' },
  { name: 'fec', listener: 'lossyNoRed', publisher: 'fec' },
  { name: 'dred', listener: 'lossyNoRed', publisher: 'dred' },
  { name: 'red', listener: 'lossy', publisher: 'plain' },
  { name: 'redFec', listener: 'lossy', publisher: 'fec' },
];
const PHASE_MS = 9000;

let h: RelayedRoom;
const listeners: Record<string, NodeMediaClient> = {};
const timers: NodeJS.Timeout[] = [];
const results: Record<string, Record<string, { recovery: Recovery; snrDb: number; kinds: Record<string, number> }>> = {};

/**
 * A publisher by hand, for encoder settings NodeMediaClient.publish() does not expose: libopus only
 * writes in-band FEC (LBRR) and DRED when told to expect loss (`packetLossPercent` > 0), as
 * browsers do from their receiver reports.
 */
function publishByHand(client: NodeMediaClient, publisher: Publisher, options: { inbandFec: boolean; dredDuration: number }): NodeJS.Timeout {
  const encoder = new OpusEncoder({ sampleRate: 48_000, channels: 1, bitrate: 24_000, packetLossPercent: 20, ...options });
  const tone = new EnvelopedTone(PUBLISHERS[publisher]);
  const frame = new Float32Array(960);
  const start = performance.now();
  let sent = 0;
  return setInterval(() => {
    const due = Math.floor((performance.now() - start) / 20);
    if (due - sent > 10) {
      client.skipFrames(due - sent - 1);
      sent = due - 1;
    }
    while (sent < due) {
      tone.read(frame);
      client.sendAudioFrame(encoder.encode(frame), 30);
      sent++;
    }
  }, 5);
}

beforeAll(async () => {
  h = new RelayedRoom({ rtcMinPort: 57200, rtcMaxPort: 57399, slots: 3, resilience: { red: { publisher: true } } });
  const pubs: Record<string, NodeMediaClient> = {};
  for (const name of Object.keys(PUBLISHERS)) pubs[name] = await h.join(name, { grants: { publish: true, subscribe: false, record: false, admin: false } });
  listeners.lossy = await h.join('lossy', { relay: true, grants: { publish: false, subscribe: true, record: false, admin: false } });
  listeners.lossyNoRed = await h.join('lossyNoRed', { relay: true, withoutRed: true, grants: { publish: false, subscribe: true, record: false, admin: false } });
  listeners.clean = await h.join('clean', { relay: true, grants: { publish: false, subscribe: true, record: false, admin: false } });
  await Promise.all([...h.clients.values()].map((c) => c.connected(20_000)));
  pubs.plain!.publish(new EnvelopedTone(PUBLISHERS.plain), { inbandFec: false });
  timers.push(publishByHand(pubs.fec!, 'fec', { inbandFec: true, dredDuration: 0 }));
  timers.push(publishByHand(pubs.dred!, 'dred', { inbandFec: false, dredDuration: 20 }));
  // Every listener hears all three publishers.
  await waitFor(() => Object.values(listeners).every((l) => ['plain', 'fec', 'dred'].every((p) => [0, 1, 2].some((k) => l.slotMap.occupant(k) === p))), 15_000, 'slots');
}, 60_000);

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  await h?.close();
  for (const [loss, rows] of Object.entries(results)) {
    console.log(`bursty loss ${loss} %:`);
    for (const [name, r] of Object.entries(rows)) {
      console.log(
        `  ${name.padEnd(7)} recovered ${r.recovery.recoveredPct.toFixed(1).padStart(5)} % (wire lost ${r.recovery.wireLost}, red ${r.recovery.red}, fec ${r.recovery.fec}, dred ${r.recovery.dred})  tone SNR ${r.snrDb.toFixed(1)} dB  ${JSON.stringify(r.kinds)}`,
      );
    }
  }
});

/** Runs one phase: captures every row for PHASE_MS, then plays each row through a jitter buffer and measures it. */
async function phase(lossPct: number | null, seed: number): Promise<Record<string, { recovery: Recovery; snrDb: number; kinds: Record<string, number> }>> {
  for (const id of ['lossy', 'lossyNoRed']) {
    const relay = h.relay(id);
    relay.loss = lossPct === null ? null : new GilbertElliott({ lossPct, burstLength: 2.5, seed });
    relay.droppedSeqs.clear();
  }
  // Let the RRs report the new loss and the RED policy react (werift clients report every 0.5–1.5 s).
  await sleep(lossPct === null ? 1000 : 4000);
  const caps = ROWS.map((row) => ({ row, cap: capture(listeners[row.listener]!, row.publisher) }));
  await sleep(PHASE_MS);
  const out: Record<string, { recovery: Recovery; snrDb: number; kinds: Record<string, number> }> = {};
  for (const { row, cap } of caps) {
    cap.stop();
    const packets = cap.packets;
    expect(packets.length, `${row.name}: packets`).toBeGreaterThan(PHASE_MS / 20 / 2);
    const ssrc = packets[packets.length - 1]!.ssrc;
    const dropped = h.relay(row.listener).droppedSeqs.get(ssrc) ?? new Set<number>();
    const played = playout(packets);
    const freq = PUBLISHERS[row.publisher];
    out[row.name] = {
      recovery: recovery(dropped, packets, played.stats),
      snrDb: toneSnrDb(played.pcm, freq),
      kinds: { ...played.kinds },
    };
  }
  return out;
}

describe('RED per subscriber under bursty loss', () => {
  it('without loss: nobody gets redundancy, and a non-RED subscriber of RED publishers hears clean tones', async () => {
    const rows = await phase(null, 0);
    for (const id of ['lossy', 'lossyNoRed', 'clean']) {
      expect(h.relay(id).stats.downByPt.get(63) ?? 0, `${id} got RED without loss`).toBe(0);
      expect(h.relay(id).stats.downByPt.get(111) ?? 0, `${id} got Opus`).toBeGreaterThan(100);
    }
    // lossyNoRed answered without RED; its three publishers all send RED upstream: it hears the primaries.
    for (const name of ['none', 'fec', 'dred']) {
      const r = rows[name]!;
      expect(r.kinds.packet, `${name}: frames from packets`).toBeGreaterThan(300);
      // No loss on the path; a frame or two per hundred may still be concealed after a stall of this shared host.
      expect(r.kinds.plc + r.kinds.fec + r.kinds.dred, `${name}: concealed frames`).toBeLessThan(r.kinds.packet * 0.05);
      expect(r.snrDb, `${name}: tone SNR`).toBeGreaterThan(12);
    }
  }, 60_000);

  for (const [lossPct, seed] of [
    [10, 11],
    [20, 22],
  ] as const) {
    it(`at ${lossPct} % bursty loss the RED listener recovers measurably more than the same loss without RED; the clean listener gets no RED`, async () => {
      const cleanRed = h.relay('clean').stats.downByPt.get(63) ?? 0;
      const lossyRed = h.relay('lossy').stats.downByPt.get(63) ?? 0;
      const rows = await phase(lossPct, seed);
      results[lossPct] = rows;
      expect(h.relay('lossy').stats.downByPt.get(63) ?? 0, 'RED toward the lossy listener').toBeGreaterThan(lossyRed + 200);
      expect(h.relay('lossyNoRed').stats.downByPt.get(63) ?? 0, 'never RED toward a subscriber without it').toBe(0);
      expect(h.relay('clean').stats.downByPt.get(63) ?? 0, 'no RED toward the clean listener').toBe(cleanRed);
      const none = rows.none!;
      const red = rows.red!;
      // The loss really happened, on both lossy paths.
      expect(none.recovery.wireLost).toBeGreaterThan((PHASE_MS / 20) * (lossPct / 100) * 0.5);
      expect(red.recovery.wireLost).toBeGreaterThan((PHASE_MS / 20) * (lossPct / 100) * 0.5);
      // Without FEC or RED nothing comes back; RED (distance 2) brings back most of it.
      expect(none.recovery.recoveredPct).toBeLessThan(10);
      expect(red.recovery.recoveredPct).toBeGreaterThan(none.recovery.recoveredPct + 35);
      expect(red.snrDb).toBeGreaterThan(none.snrDb + 2);
      expect(rows.fec!.recovery.fec, 'in-band FEC rebuilt frames').toBeGreaterThan(0);
      expect(rows.redFec!.recovery.recoveredPct).toBeGreaterThan(rows.fec!.recovery.recoveredPct);
    }, 60_000);
  }
});
