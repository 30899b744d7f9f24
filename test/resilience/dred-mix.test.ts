import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import type { PlayoutStats } from '../../src/client/media/slot-playout.ts';
import { sleep, waitFor } from '../media/harness.ts';
import { GilbertElliott } from './lossy-relay.ts';
import { RelayedRoom } from './harness.ts';
import { EnvelopedTone, toneSnrDb } from './measure.ts';

/**
 * DRED from the server's mix encode, end to end: a `mix` room (real werift ICE/DTLS/SRTP, the
 * RoomMixer's shared encode), one Node SDK publisher of a 4 Hz-enveloped 440 Hz tone, and two Node
 * SDK listeners behind LossyRelays with the same seeded bursty loss (Gilbert–Elliott, 17 %, bursts
 * of 2.5 packets):
 *
 * - `dred`: says in its answer that it decodes DRED (`x-voxlink-dred=1`, the SDK's default); its
 *   DredPolicy turns on from its RTCP receiver reports, and it gets the DRED variant of the mix.
 * - `plain`: the same client with `dred: false`: the plain mix (the `normal` profile's in-band FEC).
 *
 * RED and NACK are off in this room so the only repair is in the Opus packets. Each listener's SDK
 * plays what it receives through its JitterBuffer (FEC → DRED → PLC); the test compares the frames
 * rebuilt (not merely concealed) per frame lost, and checks the rebuilt audio carries the tone.
 */

const LOSS_PCT = 17;
const MEASURE_MS = 8000;

let h: RelayedRoom;
const listeners: Record<'dred' | 'plain', NodeMediaClient> = {} as never;

beforeAll(async () => {
  h = new RelayedRoom({
    rtcMinPort: 57600,
    rtcMaxPort: 57699,
    mode: 'mix',
    resilience: { red: { enabled: false }, nack: { enabled: false } },
  });
  const pub = await h.join('pub', { grants: { publish: true, subscribe: false, record: false, admin: false } });
  const listen = { publish: false, subscribe: true, record: false, admin: false };
  listeners.dred = await h.join('dred', { relay: true, decode: true, grants: listen });
  listeners.plain = await h.join('plain', { relay: true, decode: true, dred: false, grants: listen });
  await Promise.all([...h.clients.values()].map((c) => c.connected(20_000)));
  pub.publish(new EnvelopedTone(440));
  for (const [i, id] of ['dred', 'plain'].entries()) h.relay(id).loss = new GilbertElliott({ lossPct: LOSS_PCT, burstLength: 2.5, seed: 19 + i });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

function diff(a: PlayoutStats, b: PlayoutStats): { lost: number; fec: number; dred: number; plc: number; packet: number } {
  const fec = b.recoveredFrames.fec - a.recoveredFrames.fec;
  const dred = b.recoveredFrames.dred - a.recoveredFrames.dred;
  const plc = b.recoveredFrames.plc - a.recoveredFrames.plc;
  // Silence after a long concealment is a lost frame too (the jitter buffer fades PLC out after 100 ms).
  const silence = b.frames.silence - a.frames.silence;
  return { lost: fec + dred + plc + silence, fec, dred, plc, packet: b.frames.packet - a.frames.packet };
}

describe('DRED from the server mix encode to the Node SDK', () => {
  it('a DRED-capable listener at ~17 % bursty loss gets DRED and rebuilds far more lost frames than one without; the rebuilt audio carries the tone', async () => {
    const mixStats = () => h.room.stats().mix!.mixer;
    // werift clients send RRs every ~1 s: the policy sees the loss, and the mixer starts the DRED variant.
    await waitFor(() => mixStats().dredListeners === 1, 20_000, 'DRED toward the DRED-capable listener');
    const slot = listeners.dred.mixSlot!;
    expect(slot).not.toBeNull();
    const dredEncodes0 = mixStats().dredEncodes;
    const before = { dred: listeners.dred.playoutStats(slot)!, plain: listeners.plain.playoutStats(listeners.plain.mixSlot!)! };
    listeners.dred.clearRecordings();
    listeners.plain.clearRecordings();
    await sleep(MEASURE_MS);
    const after = { dred: listeners.dred.playoutStats(slot)!, plain: listeners.plain.playoutStats(listeners.plain.mixSlot!)! };
    const d = diff(before.dred, after.dred);
    const p = diff(before.plain, after.plain);
    const dredPct = (100 * (d.fec + d.dred)) / d.lost;
    const plainPct = (100 * (p.fec + p.dred)) / p.lost;
    const snr = { dred: toneSnrDb(listeners.dred.audioOfSlot(slot, MEASURE_MS / 1000), 440), plain: toneSnrDb(listeners.plain.audioOfSlot(listeners.plain.mixSlot!, MEASURE_MS / 1000), 440) };
    console.log(
      `DRED listener: ${d.lost} frames lost, rebuilt ${dredPct.toFixed(1)} % (dred ${d.dred}, fec ${d.fec}, plc ${d.plc}), tone SNR ${snr.dred.toFixed(1)} dB; ` +
        `plain listener: ${p.lost} lost, rebuilt ${plainPct.toFixed(1)} % (fec ${p.fec}, dred ${p.dred}, plc ${p.plc}), tone SNR ${snr.plain.toFixed(1)} dB; ` +
        `mixer: ${mixStats().dredEncodes - dredEncodes0} DRED encodes, ${mixStats().dredEncodeMs} ms in them so far`,
    );
    // The loss really happened on both paths (17 % of 400 frames ≈ 68).
    expect(d.lost).toBeGreaterThan(30);
    expect(p.lost).toBeGreaterThan(30);
    // Still DRED toward one listener only, and one DRED encode per tick for the room, not per listener.
    expect(mixStats().dredListeners).toBe(1);
    expect(mixStats().dredEncodes - dredEncodes0).toBeGreaterThan(MEASURE_MS / 20 / 2);
    // The plain listener got no DRED; the DRED one rebuilt most of its losses from it.
    expect(p.dred).toBe(0);
    expect(d.dred).toBeGreaterThan(d.lost * 0.5);
    expect(dredPct).toBeGreaterThan(plainPct + 25);
    // What the DRED listener kept is the tone at its level (silence would have no noise either, so
    // the level is checked too). SNR against the plain listener is not compared: PLC of a slow
    // envelope is close in SNR, and the two differ by ±1 dB from run to run on a loaded host.
    const heard = listeners.dred.audioOfSlot(slot, MEASURE_MS / 1000);
    let sum = 0;
    for (const x of heard) sum += x * x;
    expect(Math.sqrt(sum / heard.length)).toBeGreaterThan(0.03);
    expect(snr.dred).toBeGreaterThan(4);
  }, 60_000);
});
