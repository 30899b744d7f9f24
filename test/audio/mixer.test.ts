import { afterEach, describe, expect, it } from 'vitest';
import { RoomMixer } from '../../src/media/mix.ts';
import { createMixCodecs } from '../../src/media/mix-codecs.ts';
import { SoftLimiter } from '../../src/codec/limiter.ts';
import { MixClock } from '../../src/media/mix-clock.ts';
import { toneFloat32 } from '../codec/signal.ts';
import { decodeCapture, goertzel, meanSquare, network, opusStream, peak, runRoom, tailPower } from './harness.ts';

const SECONDS = 2;
const TICKS = SECONDS * 50;
const silence = new Float32Array(48_000 * SECONDS);

function thd(pcm: Float32Array, fundamental: number): number {
  const f = goertzel(pcm, 48_000, fundamental);
  let h = 0;
  for (let k = 2; k <= 8; k++) h += goertzel(pcm, 48_000, fundamental * k);
  return Math.sqrt(h / f);
}

let mixers: RoomMixer[] = [];
afterEach(() => {
  for (const m of mixers) m.close();
  mixers = [];
});
function mixer(): RoomMixer {
  const m = new RoomMixer({ codecs: createMixCodecs() });
  mixers.push(m);
  return m;
}

describe('RoomMixer: N−1 mixes with shared encodes', () => {
  it('gives each speaker everyone but themselves, and the listeners both tones from one shared encode', () => {
    const m = mixer();
    for (const id of ['A', 'B', 'C', 'D', 'E']) m.addInput(id);
    const arrivals = [
      ...network('A', opusStream(toneFloat32(440, 48_000, 48_000 * SECONDS, { amplitude: 0.3 }))),
      ...network('B', opusStream(toneFloat32(660, 48_000, 48_000 * SECONDS, { amplitude: 0.3 }))),
      ...network('C', opusStream(silence)),
      // D's client sends the RFC 6464 level: its silence is never decoded.
      ...network('D', opusStream(silence).map((p) => ({ ...p, level: 127 }))),
    ].sort((a, b) => a.arrivalMs - b.arrivalMs);
    const { captures, encodesPerTick } = runRoom(m, arrivals, TICKS);

    const heard = (id: string) => decodeCapture(captures.get(id)!);
    const c = heard('C');
    const a = heard('A');
    const b = heard('B');
    const e = heard('E'); // joined without ever sending
    // A 0.3-amplitude sine has power 0.045; the N−1 removal must leave the own tone ≥ 30 dB down.
    for (const listener of [c, e]) {
      expect(tailPower(listener, 48_000, 440)).toBeGreaterThan(0.02);
      expect(tailPower(listener, 48_000, 660)).toBeGreaterThan(0.02);
    }
    expect(tailPower(a, 48_000, 660)).toBeGreaterThan(0.02);
    expect(tailPower(a, 48_000, 440)).toBeLessThan(0.045e-3);
    expect(tailPower(b, 48_000, 440)).toBeGreaterThan(0.02);
    expect(tailPower(b, 48_000, 660)).toBeLessThan(0.045e-3);

    // O(speakers) encodes: A's mix, B's mix and one shared mix for C, D, E — not five.
    expect(Math.max(...encodesPerTick.slice(40))).toBe(3);
    const lastC = captures.get('C')!.packets.at(-1)!;
    const lastE = captures.get('E')!.packets.at(-1)!;
    expect(lastC.source).toBeNull();
    expect(lastC.payload).toEqual(lastE.payload);
    expect(captures.get('A')!.packets.at(-1)!.source).toBe('A');

    // RTP per listener: one packet per tick, seq +1 (mod 2^16), timestamp +960 (mod 2^32).
    for (const id of ['A', 'B', 'C', 'D', 'E']) {
      const packets = captures.get(id)!.packets;
      expect(packets).toHaveLength(TICKS);
      for (let i = 1; i < packets.length; i++) {
        expect(packets[i]!.seq).toBe((packets[i - 1]!.seq + 1) & 0xffff);
        expect(packets[i]!.ts).toBe((packets[i - 1]!.ts + 960) >>> 0);
      }
    }
    expect(m.inputStats('D')!.quietSkipped).toBeGreaterThan(TICKS - 10);
    expect(m.inputStats('C')!.quietSkipped).toBe(0);
    const stats = m.toJSON();
    expect(stats.ticks).toBe(TICKS);
    expect(stats.speakers).toBe(2);
  });

  it('turns silence into silence', () => {
    const m = mixer();
    for (const id of ['A', 'B', 'C']) m.addInput(id);
    const arrivals = ['A', 'B', 'C'].flatMap((id) => network(id, opusStream(silence)));
    arrivals.sort((x, y) => x.arrivalMs - y.arrivalMs);
    const { captures, encodesPerTick } = runRoom(m, arrivals, TICKS);
    for (const id of ['A', 'B', 'C']) expect(meanSquare(decodeCapture(captures.get(id)!))).toBeLessThan(1e-7);
    // Nobody speaks: one shared encode serves the whole room.
    expect(Math.max(...encodesPerTick)).toBe(1);
  });

  it('never wraps or hard-clips two loud speakers: peak ≤ 1 and low harmonic distortion', () => {
    const m = mixer();
    for (const id of ['A', 'B', 'C']) m.addInput(id);
    const loud = toneFloat32(440, 48_000, 48_000 * SECONDS, { amplitude: 0.9 });
    const arrivals = [...network('A', opusStream(loud, { bitrate: 64_000 })), ...network('B', opusStream(loud, { bitrate: 64_000 }))];
    arrivals.sort((x, y) => x.arrivalMs - y.arrivalMs);
    const { captures } = runRoom(m, arrivals, TICKS);
    const c = decodeCapture(captures.get('C')!).subarray(48_000 / 2);
    // The sum is a 1.8-amplitude sine; wrap-around or clipping would put > 10 % in the harmonics.
    expect(peak(c)).toBeLessThanOrEqual(1);
    expect(goertzel(c, 48_000, 440)).toBeGreaterThan(0.3);
    expect(thd(c, 440)).toBeLessThan(0.03);
    expect(m.toJSON().limitedFrames).toBeGreaterThan(0);
  });
});

describe('RoomMixer robustness', () => {
  it('conceals a corrupt packet from one participant and keeps the room ticking', () => {
    const m = mixer();
    m.addInput('A');
    m.addInput('C');
    const sent = opusStream(toneFloat32(440, 48_000, 48_000, { amplitude: 0.3 }));
    // Code-3 TOC with a frame count of 0: libopus rejects it (OPUS_INVALID_PACKET).
    sent[25]!.payload = Uint8Array.from([0xfb, 0x00, 0x00]);
    const { captures } = runRoom(m, network('A', sent), 50);
    expect(captures.get('C')!.packets).toHaveLength(50);
    expect(m.inputStats('A')!.decodeErrors).toBe(1);
    expect(tailPower(decodeCapture(captures.get('C')!), 48_000, 440)).toBeGreaterThan(0.02);
  });
});

describe('RoomMixer in a hybrid room', () => {
  it('leaves the forwarded speakers out of every mix, and no other voice', () => {
    const m = mixer();
    for (const id of ['A', 'B', 'C', 'D']) m.addInput(id);
    const tone = (f: number) => opusStream(toneFloat32(f, 48_000, 48_000 * SECONDS, { amplitude: 0.3 }));
    const arrivals = [...network('A', tone(440)), ...network('B', tone(660)), ...network('D', tone(880))];
    arrivals.sort((x, y) => x.arrivalMs - y.arrivalMs);
    // A is forwarded as a slot this whole time (top K = 1): the mix carries everyone else.
    const { captures } = runRoom(m, arrivals, TICKS, () => new Set(['A']));
    const power = (id: string, f: number) => tailPower(decodeCapture(captures.get(id)!), 48_000, f);
    expect(power('C', 440)).toBeLessThan(0.045e-3);
    expect(power('C', 660)).toBeGreaterThan(0.02);
    expect(power('C', 880)).toBeGreaterThan(0.02);
    expect(power('A', 660)).toBeGreaterThan(0.02); // A hears the mix of the others
    expect(power('B', 880)).toBeGreaterThan(0.02);
    expect(power('B', 660)).toBeLessThan(0.045e-3);
    expect(power('B', 440)).toBeLessThan(0.045e-3); // B hears A through A's slot, not the mix
    expect(m.activeSpeakers().sort()).toEqual(['B', 'D']);
  });
});

describe('RoomMixer.skip: ticks the clock jumped over', () => {
  it("advance every listener's timestamp by the skipped frames, sequence numbers stay gapless", () => {
    const m = mixer();
    m.addInput('A');
    m.addInput('T', { format: 'pcmu' });
    const first = new Map(m.tick().map((p) => [p.listenerId, { seq: p.sequenceNumber, ts: p.timestamp }]));
    m.skip(7);
    const next = new Map(m.tick().map((p) => [p.listenerId, { seq: p.sequenceNumber, ts: p.timestamp }]));
    for (const [id, step] of [['A', 960], ['T', 160]] as const) {
      expect((next.get(id)!.seq - first.get(id)!.seq) & 0xffff).toBe(1);
      expect((next.get(id)!.ts - first.get(id)!.ts) >>> 0).toBe(8 * step);
    }
  });
});

describe('MixClock', () => {
  it('reports the ticks it skips after a stall, before it runs the next one', async () => {
    let offset = 0;
    const ran: number[] = [];
    const skips: number[] = [];
    let clock!: MixClock;
    await new Promise<void>((resolve) => {
      clock = new MixClock(
        (n) => {
          ran.push(n);
          if (n === 2) offset += 300; // the event loop "stalls" for 300 ms after tick 2
          if (ran.length === 6) {
            clock.stop();
            resolve();
          }
        },
        { now: () => performance.now() + offset, onSkip: (ticks) => skips.push(ticks) },
      );
      clock.start();
    });
    const stats = clock.toJSON();
    expect(skips.reduce((a, b) => a + b, 0)).toBe(stats.skippedTicks);
    expect(stats.skippedTicks).toBeGreaterThanOrEqual(9); // ≥ 300 ms late, minus the 5 ticks it may catch up
    // the tick numbers jump by exactly the skipped count
    expect(ran[3]! - ran[2]! - 1).toBe(skips[0]);
  });

  it('schedules against start + n·20 ms: after a slow tick the overdue ones run at once, counted late', async () => {
    const starts: number[] = [];
    let clock!: MixClock;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      clock = new MixClock(
        (n) => {
          starts[n] = performance.now();
          if (n === 5) {
            const until = performance.now() + 45;
            while (performance.now() < until);
          }
          if (n === 30) {
            clock.stop();
            resolve();
          }
        },
        { lateToleranceMs: 10 },
      );
      clock.start();
    });
    const stats = clock.toJSON();
    // Every slot 0..30 either ran or was skipped (a starved host skips stale ticks, counting them).
    expect(stats.ticks + stats.skippedTicks).toBe(31);
    expect(stats.lateTicks).toBeGreaterThanOrEqual(1);
    // Ticks 6 and 7 were both due when the slow tick 5 ended: they run back to back, catching up
    // with the timeline, where a setInterval-style clock would run them 20 ms apart and drift.
    if (starts[6] !== undefined && starts[7] !== undefined) expect(starts[7] - starts[6]).toBeLessThan(5);
    // Never early: tick 30 does not start before its slot.
    expect(starts[30]! - t0).toBeGreaterThanOrEqual(600 - 1);
  });
});

describe('SoftLimiter', () => {
  it('bounds every sample below the ceiling on the same sample a peak arrives (no look-ahead)', () => {
    const limiter = new SoftLimiter();
    const pcm = toneFloat32(440, 48_000, 48_000, { amplitude: 3 });
    pcm[1234] = 40; // a single-sample spike
    for (let f = 0; f < 50; f++) limiter.process(pcm.subarray(f * 960, f * 960 + 960));
    expect(peak(pcm)).toBeLessThanOrEqual(Math.fround(0.98));
    // A steady loud tone is turned down, not waveshaped: harmonics stay under 1 %.
    expect(thd(pcm.subarray(24_000), 440)).toBeLessThan(0.01);
    // A hard clipper at the same ceiling, for contrast, distorts by more than 20 %.
    const clipped = toneFloat32(440, 48_000, 24_000, { amplitude: 3 }).map((x) => Math.max(-0.98, Math.min(0.98, x)));
    expect(thd(clipped, 440)).toBeGreaterThan(0.2);
  });

  it('leaves signals below the knee untouched', () => {
    const limiter = new SoftLimiter();
    const pcm = toneFloat32(440, 48_000, 960, { amplitude: 0.5 });
    const copy = pcm.slice();
    limiter.process(pcm);
    expect(pcm).toEqual(copy);
    expect(limiter.toJSON().limitedFrames).toBe(0);
  });
});
