import { describe, expect, it } from 'vitest';
import { RoomMixer } from '../../src/media/mix.ts';
import { createMixCodecs } from '../../src/media/mix-codecs.ts';
import { JitterBuffer, type PlayoutKind } from '../../src/codec/jitter-buffer.ts';
import { OpusFrameDecoder } from '../../src/codec/frame-codecs.ts';
import { OpusEncoder } from '../../src/codec/opus.ts';
import { bestDelay, snrDb, speechLikeFloat32, toneFloat32 } from '../codec/signal.ts';
import { decodeCapture, meanSquare, network, opusStream, runRoom, type SentPacket } from './harness.ts';

const SECONDS = 3;
const TICKS = SECONDS * 50;

/** A 600 Hz tone under a 4 Hz amplitude envelope: PLC cannot guess the envelope, FEC carries it. */
function amTone(): Float32Array {
  const pcm = toneFloat32(600, 48_000, 48_000 * SECONDS, { amplitude: 0.3 });
  for (let i = 0; i < pcm.length; i++) pcm[i] *= 0.5 + 0.5 * Math.sin((2 * Math.PI * 4 * i) / 48_000);
  return pcm;
}

function lossyRun(fec: boolean, alignTo?: number) {
  const ref = amTone();
  const m = new RoomMixer({ codecs: createMixCodecs(), jitter: { fec } });
  m.addInput('A');
  m.addInput('C');
  // 10 % loss and 5–45 ms of uniform delay (packets 20 ms apart, so they arrive reordered).
  const arrivals = network('A', opusStream(ref, { fec: true, lossPerc: 10 }), { lossRate: 0.1, jitterMs: 40, seed: 4 });
  const { captures } = runRoom(m, arrivals, TICKS);
  const packets = captures.get('C')!.packets;
  const heard = decodeCapture(captures.get('C')!);
  // Both runs see the same arrivals, so their playout timelines are identical: align once (on 0.5 s,
  // the delay is fixed once playing) and compare both against the reference at that delay.
  const delay = alignTo ?? bestDelay(ref.subarray(24_000, 48_000), heard.subarray(24_000), 0, 4800);
  const snr = snrDb(ref, heard, delay, 24_000, ref.length - 9600);
  const stats = m.inputStats('A')!;
  m.close();
  return { packets, snr, stats, delay };
}

describe('loss and reordering on a mixer input', () => {
  it('keeps one frame per tick and recovers lost frames with in-band FEC, measurably better than PLC', () => {
    const withFec = lossyRun(true);
    const withoutFec = lossyRun(false, withFec.delay);
    for (const run of [withFec, withoutFec]) {
      expect(run.packets).toHaveLength(TICKS);
      for (let i = 1; i < run.packets.length; i++) {
        expect(run.packets[i]!.seq).toBe((run.packets[i - 1]!.seq + 1) & 0xffff);
        expect(run.packets[i]!.ts).toBe((run.packets[i - 1]!.ts + 960) >>> 0);
      }
      expect(run.stats.lost).toBeGreaterThan(TICKS * 0.05);
    }
    expect(withFec.stats.fecRecovered).toBeGreaterThan(withFec.stats.lost * 0.6);
    expect(withoutFec.stats.fecRecovered).toBe(0);
    // Measured: 13.2 dB with FEC, 9.4 dB with PLC only (≈ 30 dB without loss).
    expect(withFec.snr).toBeGreaterThan(10);
    expect(withFec.snr - withoutFec.snr).toBeGreaterThan(2.5);
  });
});

describe('DRED (Opus 1.5) on a mixer input', () => {
  it('rebuilds lost frames from a later packet\'s deep redundancy when the sender encodes it', () => {
    const speech = speechLikeFloat32(48_000, 1.5, 5);
    const enc = new OpusEncoder({ bitrate: 32_000, dredDuration: 10, packetLossPercent: 20 });
    const sent: SentPacket[] = [];
    for (let f = 0; (f + 1) * 960 <= speech.length; f++) {
      enc.pcmIn.set(speech.subarray(f * 960, (f + 1) * 960));
      sent.push({ payload: enc.encodeFrame().slice(), seq: f, ts: f * 960, sendMs: f * 20 });
    }
    enc.close();
    const m = new RoomMixer({ codecs: createMixCodecs(), jitter: { fec: false, dred: true } });
    m.addInput('A');
    m.addInput('C');
    const { captures } = runRoom(m, network('A', sent, { lossRate: 0.15, seed: 3 }), 75);
    const stats = m.inputStats('A')!;
    m.close();
    expect(stats.lost).toBeGreaterThan(5);
    // Every loss but one at the very start (nothing later parsed yet) comes back from DRED, not PLC.
    expect(stats.dredRecovered).toBeGreaterThanOrEqual(stats.lost - 1);
    const heard = decodeCapture(captures.get('C')!);
    expect(captures.get('C')!.packets).toHaveLength(75);
    // Speech energy survives (within 6 dB of what was sent): DRED output is speech, not silence.
    const ratio = meanSquare(heard.subarray(9600)) / meanSquare(speech.subarray(9600));
    expect(10 * Math.log10(ratio)).toBeGreaterThan(-6);
  });

  it('with FEC also enabled, a next packet without LBRR does not count as FEC: DRED rebuilds the frame', () => {
    // The sender encodes DRED but no in-band FEC. Before opus_packet_has_lbrr was consulted, every
    // loss followed by its next packet went to decode_fec (which only concealed) and DRED never ran.
    const speech = speechLikeFloat32(48_000, 1.5, 5);
    const enc = new OpusEncoder({ bitrate: 32_000, dredDuration: 10, packetLossPercent: 20, inbandFec: false });
    const sent: SentPacket[] = [];
    for (let f = 0; (f + 1) * 960 <= speech.length; f++) {
      enc.pcmIn.set(speech.subarray(f * 960, (f + 1) * 960));
      sent.push({ payload: enc.encodeFrame().slice(), seq: f, ts: f * 960, sendMs: f * 20 });
    }
    enc.close();
    const m = new RoomMixer({ codecs: createMixCodecs(), jitter: { fec: true, dred: true } });
    m.addInput('A');
    m.addInput('C');
    runRoom(m, network('A', sent, { lossRate: 0.15, seed: 3 }), 75);
    const stats = m.inputStats('A')!;
    m.close();
    expect(stats.lost).toBeGreaterThan(5);
    expect(stats.fecRecovered).toBe(0);
    expect(stats.dredRecovered).toBeGreaterThanOrEqual(stats.lost - 1);
  });
});

describe('JitterBuffer', () => {
  function drive(jitterMs: number, order?: (i: number) => number) {
    const tone = toneFloat32(600, 48_000, 48_000 * 2, { amplitude: 0.3 });
    const packets = opusStream(tone);
    const jb = new JitterBuffer(new OpusFrameDecoder(), {});
    const arrivals = network('A', packets, { jitterMs, seed: 9 });
    if (order) arrivals.forEach((a, i) => (a.arrivalMs = order(i)));
    arrivals.sort((a, b) => a.arrivalMs - b.arrivalMs);
    const kinds: PlayoutKind[] = [];
    const pcm = new Float32Array(960);
    let next = 0;
    for (let t = 0; t < 100; t++) {
      while (next < arrivals.length && arrivals[next]!.arrivalMs <= t * 20) {
        const a = arrivals[next++]!;
        jb.push(a.payload, a.seq, a.ts, a.arrivalMs);
      }
      kinds.push(jb.pull(pcm));
    }
    return { kinds, stats: jb.toJSON() };
  }

  it('follows the RFC 3550 jitter estimate with its target delay', () => {
    const calm = drive(2);
    const rough = drive(80);
    expect(calm.stats.jitterMs).toBeLessThan(3);
    expect(rough.stats.jitterMs).toBeGreaterThan(15);
    expect(rough.stats.targetDelayMs).toBeGreaterThan(calm.stats.targetDelayMs + 30);
    // Once playing, a calm stream plays every packet it was sent.
    expect(calm.kinds.filter((k) => k === 'packet').length).toBeGreaterThanOrEqual(96);
    expect(calm.stats.lost + calm.stats.late + calm.stats.concealed).toBe(0);
  });

  it('plays a pair of swapped packets in order and drops a packet that comes after its turn', () => {
    // Packets 10 and 11 swap; packet 30 arrives 200 ms late.
    const swapped = drive(0, (i) => (i === 10 ? 11 * 20 + 6 : i === 11 ? 10 * 20 + 6 : i === 30 ? 30 * 20 + 205 : i * 20 + 5));
    expect(swapped.stats.late).toBe(1);
    expect(swapped.stats.lost).toBe(1);
    // The late packet's turn was filled from the next one (decode_fec; libopus conceals when it has no LBRR).
    expect(swapped.stats.concealed + swapped.stats.fecRecovered).toBe(1);
    expect(swapped.stats.played).toBeGreaterThanOrEqual(95);
  });

  it('grows the delay through a stall and then works it back down', () => {
    // Packets 20–29 are held up 180 ms by the network and arrive in one burst with packet 29.
    const stalled = drive(0, (i) => (i >= 20 && i < 29 ? 29 * 20 + 5 : i * 20 + 5));
    expect(stalled.stats.underruns).toBeGreaterThan(3);
    expect(stalled.stats.late).toBe(0); // held, not dropped
    expect(stalled.stats.accelerated).toBeGreaterThan(2);
    expect(stalled.stats.depthFrames).toBeLessThanOrEqual(Math.ceil(stalled.stats.targetDelayMs / 20) + 5);
  });

  it('treats a DTX pause (timestamps jump, sequence numbers do not) as silence, not loss', () => {
    const pcm = new Float32Array(48_000 * 2);
    pcm.set(toneFloat32(600, 48_000, 24_000, { amplitude: 0.3 }), 0);
    pcm.set(toneFloat32(600, 48_000, 24_000, { amplitude: 0.3 }), 72_000);
    const sent = opusStream(pcm, { dtx: true });
    // DTX as libwebrtc sends it: the encoder's 1-byte "nothing to send" frames never go on air, only
    // speech and a comfort-noise refresh every 400 ms; sequence numbers stay contiguous.
    const onAir = sent.filter((p) => p.payload.length > 2);
    onAir.forEach((p, i) => (p.seq = (sent[0]!.seq + i) & 0xffff));
    const jb = new JitterBuffer(new OpusFrameDecoder());
    const out = new Float32Array(960);
    let next = 0;
    const kinds = new Map<PlayoutKind, number>();
    for (let t = 0; t < 100; t++) {
      while (next < onAir.length && onAir[next]!.sendMs + 5 <= t * 20) {
        const p = onAir[next++]!;
        jb.push(p.payload, p.seq, p.ts, p.sendMs + 5);
      }
      const kind = jb.pull(out);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    expect(onAir.length).toBeLessThan(sent.length - 10);
    expect(kinds.get('dtx') ?? 0).toBeGreaterThan(10);
    expect(jb.toJSON().lost).toBe(0);
    expect(jb.toJSON().concealed).toBe(0);
    expect(kinds.get('packet') ?? 0).toBeGreaterThan(45);
  });
});
