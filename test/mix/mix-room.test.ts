import { afterEach, describe, expect, it } from 'vitest';
import { OpusDecoder, OpusEncoder } from '../../src/codec/opus.ts';
import { OpusApplication } from '../../src/codec/opus-ctl.ts';
import { g711DecodeFloat, g711EncodeFloat, type G711Law } from '../../src/codec/g711.ts';
import { MixRoomAudio, type MixRoomMode } from '../../src/media/mix-room.ts';
import { isVoxError } from '../../src/errors.ts';
import { dominantFrequency, powerAt, toneFloat32 } from '../codec/signal.ts';

/** One participant's outgoing RTP: 20 ms frames of a tone, Opus (48 kHz clock) or G.711 (8 kHz clock). */
interface Sender {
  id: string;
  next(): { payload: Uint8Array; seq: number; ts: number };
  close(): void;
}

function opusTone(id: string, freq: number, amplitude = 0.3): Sender {
  const enc = new OpusEncoder({ sampleRate: 48_000, channels: 1, application: OpusApplication.VOIP, bitrate: 32_000 });
  const tone = toneFloat32(freq, 48_000, 48_000, { amplitude }); // 1 s, whole periods for 440/660/880
  let f = 0;
  return {
    id,
    next() {
      const start = (f % 50) * 960;
      enc.pcmIn.set(tone.subarray(start, start + 960));
      const frame = { payload: enc.encodeFrame().slice(), seq: (65_520 + f) & 0xffff, ts: (0xffff_f000 + f * 960) >>> 0 };
      f++;
      return frame;
    },
    close: () => enc.close(),
  };
}

function g711Tone(id: string, law: G711Law, freq: number, amplitude = 0.3): Sender {
  const tone = toneFloat32(freq, 8000, 8000, { amplitude });
  let f = 0;
  return {
    id,
    next() {
      const payload = new Uint8Array(160);
      g711EncodeFloat(law, tone.subarray((f % 50) * 160, (f % 50) * 160 + 160), payload);
      const frame = { payload, seq: (1000 + f) & 0xffff, ts: (f * 160) >>> 0 };
      f++;
      return frame;
    },
    close: () => undefined,
  };
}

interface Received {
  payload: Uint8Array;
  seq: number;
  ts: number;
  pt: number;
}

let rooms: MixRoomAudio[] = [];
let senders: Sender[] = [];
afterEach(() => {
  for (const r of rooms) r.close();
  for (const s of senders) s.close();
  rooms = [];
  senders = [];
});

function room(mode: MixRoomMode): { audio: MixRoomAudio; heard: Map<string, Received[]> } {
  const heard = new Map<string, Received[]>();
  const audio = new MixRoomAudio({
    mode,
    onPacket(listenerId, payload, seq, ts, pt) {
      let list = heard.get(listenerId);
      if (list === undefined) heard.set(listenerId, (list = []));
      list.push({ payload: payload.slice(), seq, ts, pt }); // the view lives only during the call
    },
  });
  rooms.push(audio);
  return { audio, heard };
}

/** Simulated time: every sender's packet arrives 5 ms into its 20 ms slot, then the room ticks. */
function run(audio: MixRoomAudio, list: Sender[], ticks: number): void {
  senders.push(...list);
  for (let t = 0; t < ticks; t++) {
    for (const s of list) {
      const p = s.next();
      audio.onAudioRtp(s.id, p.payload, p.seq, p.ts, -1, t * 20 + 5);
    }
    audio.tick();
  }
}

function decodeOpus(packets: Received[]): Float32Array {
  const dec = new OpusDecoder({ sampleRate: 48_000, channels: 1 });
  const out = new Float32Array(packets.length * 960);
  packets.forEach((p, i) => out.set(dec.decode(p.payload).subarray(0, 960), i * 960));
  dec.close();
  return out;
}

function decodeG711(law: G711Law, packets: Received[]): Float32Array {
  const out = new Float32Array(packets.length * 160);
  packets.forEach((p, i) => g711DecodeFloat(law, p.payload, out.subarray(i * 160, i * 160 + 160)));
  return out;
}

/** Power of `freq` over the last second (past jitter-buffer priming and codec start-up). */
function tail(pcm: Float32Array, rate: number, freq: number): number {
  return powerAt(pcm.subarray(pcm.length - rate), rate, freq);
}

/** Median power of `freq` over 100 ms windows: robust to phase jumps from concealed or dropped frames. */
function windowedPower(pcm: Float32Array, rate: number, freq: number): number {
  const w = rate / 10;
  const powers: number[] = [];
  for (let i = 0; i + w <= pcm.length; i += w) powers.push(powerAt(pcm.subarray(i, i + w), rate, freq));
  powers.sort((x, y) => x - y);
  return powers[Math.floor(powers.length / 2)] ?? 0;
}

/** A 0.3-amplitude sine has power 0.045: "hears" = within ~4 dB, "not" = ≥ 30 dB down. */
const HEARD = 0.018;
const ABSENT = 0.045e-3;

/**
 * Sequence numbers without a gap; timestamps one frame apart, except where the clock skipped ticks
 * (a host too busy to catch up): there the timestamp moves on by the skipped frames, as RTP time
 * must. Returns the frames skipped that way.
 */
function expectContinuous(packets: Received[], tsStep: number): number {
  let skipped = 0;
  for (let i = 1; i < packets.length; i++) {
    expect(packets[i]!.seq).toBe((packets[i - 1]!.seq + 1) & 0xffff);
    const step = (packets[i]!.ts - packets[i - 1]!.ts) >>> 0;
    expect(step % tsStep).toBe(0);
    expect(step).toBeGreaterThanOrEqual(tsStep);
    skipped += step / tsStep - 1;
  }
  return skipped;
}

describe('MixRoomAudio: mix mode', () => {
  it('lets a listener hear both speakers and each speaker only the other', () => {
    const { audio, heard } = room('mix');
    for (const id of ['A', 'B']) audio.addParticipant(id, { codec: 'opus', publish: true, subscribe: true });
    audio.addParticipant('C', { codec: 'opus', publish: false, subscribe: true });
    run(audio, [opusTone('A', 440), opusTone('B', 660)], 100);

    const c = decodeOpus(heard.get('C')!);
    expect(tail(c, 48_000, 440)).toBeGreaterThan(HEARD);
    expect(tail(c, 48_000, 660)).toBeGreaterThan(HEARD);
    const a = decodeOpus(heard.get('A')!);
    expect(tail(a, 48_000, 660)).toBeGreaterThan(HEARD);
    expect(tail(a, 48_000, 440)).toBeLessThan(ABSENT);
    expect(dominantFrequency(a, 48_000)).toBeCloseTo(660, -1);
    const b = decodeOpus(heard.get('B')!);
    expect(dominantFrequency(b, 48_000)).toBeCloseTo(440, -1);
    expect(tail(b, 48_000, 660)).toBeLessThan(ABSENT);

    // One packet per listener per tick, RFC 7587 clock: seq +1, timestamp +960, Opus PT.
    for (const id of ['A', 'B', 'C']) {
      const packets = heard.get(id)!;
      expect(packets).toHaveLength(100);
      expect(expectContinuous(packets, 960)).toBe(0);
      expect(packets.every((p) => p.pt === 111)).toBe(true);
    }
    expect(audio.toJSON().mixer.speakers).toBe(2);
  });

  it('carries a PCMU speaker to an Opus listener and the Opus speaker to the PCMU peer as 8 kHz μ-law', () => {
    const { audio, heard } = room('mix');
    audio.addParticipant('phone', { codec: 'pcmu', publish: true, subscribe: true });
    audio.addParticipant('web', { codec: 'opus', publish: true, subscribe: true });
    audio.addParticipant('desk', { codec: 'pcma', publish: false, subscribe: true });
    run(audio, [g711Tone('phone', 'pcmu', 440), opusTone('web', 660)], 100);

    const web = decodeOpus(heard.get('web')!);
    expect(tail(web, 48_000, 440)).toBeGreaterThan(HEARD);
    expect(tail(web, 48_000, 660)).toBeLessThan(ABSENT);

    const phonePackets = heard.get('phone')!;
    expect(phonePackets.every((p) => p.payload.length === 160 && p.pt === 0)).toBe(true);
    expect(expectContinuous(phonePackets, 160)).toBe(0);
    const phone = decodeG711('pcmu', phonePackets);
    expect(dominantFrequency(phone, 8000)).toBeCloseTo(660, -1);
    expect(tail(phone, 8000, 660)).toBeGreaterThan(HEARD);
    expect(tail(phone, 8000, 440)).toBeLessThan(ABSENT);

    const deskPackets = heard.get('desk')!;
    expect(deskPackets.every((p) => p.payload.length === 160 && p.pt === 8)).toBe(true);
    const desk = decodeG711('pcma', deskPackets);
    expect(tail(desk, 8000, 440)).toBeGreaterThan(HEARD);
    expect(tail(desk, 8000, 660)).toBeGreaterThan(HEARD);
  });

  it('re-negotiating a participant to G.711 switches what it hears without a gap in its own stream order', () => {
    const { audio, heard } = room('mix');
    audio.addParticipant('A', { codec: 'opus', publish: true, subscribe: false });
    audio.addParticipant('L', { codec: 'opus', publish: false, subscribe: true, payloadType: 109 });
    run(audio, [opusTone('A', 440)], 10);
    // The answer came back with PCMU only: same id, new codec.
    audio.addParticipant('L', { codec: 'pcmu', publish: false, subscribe: true });
    run(audio, [opusTone('A', 440)], 80);
    const l = heard.get('L')!;
    expect(l.slice(0, 10).every((p) => p.pt === 109)).toBe(true);
    const after = l.slice(10);
    expect(after.every((p) => p.pt === 0 && p.payload.length === 160)).toBe(true);
    expect(expectContinuous(after, 160)).toBe(0);
    expect(tail(decodeG711('pcmu', after), 8000, 440)).toBeGreaterThan(HEARD);
  });
});

describe('MixRoomAudio: hybrid mode', () => {
  it('keeps the forwarded top K out of the mix and mixes everyone else', () => {
    const { audio, heard } = room('hybrid');
    for (const id of ['A', 'B', 'C']) audio.addParticipant(id, { codec: 'opus', publish: true, subscribe: true });
    audio.addParticipant('D', { codec: 'opus', publish: false, subscribe: true });
    audio.setForwarded(['A']); // A is in the slots: everyone hears A there, not in the mix
    run(audio, [opusTone('A', 440), opusTone('B', 660), opusTone('C', 880)], 100);

    const d = decodeOpus(heard.get('D')!);
    expect(tail(d, 48_000, 440)).toBeLessThan(ABSENT);
    expect(tail(d, 48_000, 660)).toBeGreaterThan(HEARD);
    expect(tail(d, 48_000, 880)).toBeGreaterThan(HEARD);
    const a = decodeOpus(heard.get('A')!);
    expect(tail(a, 48_000, 660)).toBeGreaterThan(HEARD);
    expect(tail(a, 48_000, 880)).toBeGreaterThan(HEARD);
    const b = decodeOpus(heard.get('B')!);
    expect(tail(b, 48_000, 880)).toBeGreaterThan(HEARD);
    expect(tail(b, 48_000, 660)).toBeLessThan(ABSENT);
    expect(audio.activeSpeakers().sort()).toEqual(['B', 'C']);
  });
});

describe('MixRoomAudio: on its clock', () => {
  it('sends every listener one packet per 20 ms tick, with no gaps, until stopped', async () => {
    const { audio, heard } = room('mix');
    audio.addParticipant('A', { codec: 'opus', publish: true, subscribe: true });
    audio.addParticipant('C', { codec: 'opus', publish: false, subscribe: true });
    const a = opusTone('A', 440);
    senders.push(a);
    const t0 = performance.now();
    // The sender paces itself on wall time (as a browser's audio clock does), not on setInterval's drift.
    let sent = 0;
    const feed = setInterval(() => {
      const now = performance.now();
      for (; sent * 20 <= now - t0; sent++) {
        const p = a.next();
        audio.onAudioRtp('A', p.payload, p.seq, p.ts, -1, now);
      }
    }, 5);
    audio.start();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    audio.stop();
    clearInterval(feed);
    const elapsed = performance.now() - t0;
    const stats = audio.toJSON();
    const c = heard.get('C')!;
    expect(c.length).toBe(stats.clock.ticks);
    expect(stats.clock.ticks + stats.clock.skippedTicks).toBeGreaterThanOrEqual(Math.floor(elapsed / 20) - 2);
    expect(expectContinuous(c, 960)).toBeLessThanOrEqual(stats.clock.skippedTicks);
    // A loaded host makes the clock skip ticks, so the jitter buffer drops frames: the tone's phase
    // jumps. Measure it in 100 ms windows (whole periods of 440 Hz), not coherently over a second.
    expect(windowedPower(decodeOpus(c).subarray(48_000 / 2), 48_000, 440)).toBeGreaterThan(HEARD);
    const count = c.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard.get('C')!.length).toBe(count);
  });

  it('stops sending to a participant who left, and refuses use after close', () => {
    const { audio, heard } = room('mix');
    audio.addParticipant('A', { codec: 'opus', publish: true, subscribe: true });
    audio.addParticipant('C', { codec: 'opus', publish: false, subscribe: true });
    run(audio, [opusTone('A', 440)], 5);
    audio.removeParticipant('C');
    run(audio, [opusTone('A', 440)], 5);
    expect(heard.get('C')).toHaveLength(5);
    expect(heard.get('A')).toHaveLength(10);
    audio.close();
    let error: unknown;
    try {
      audio.addParticipant('D', { codec: 'opus', publish: true, subscribe: true });
    } catch (e) {
      error = e;
    }
    expect(isVoxError(error, 'CLOSED')).toBe(true);
  });
});

describe('MixRoomAudio: the room mix as an output', () => {
  it('gives a subscriber every speaker, continuous on the Opus clock, at no extra encode while the shared mix is heard', () => {
    const { audio, heard } = room('mix');
    for (const id of ['A', 'B']) audio.addParticipant(id, { codec: 'opus', publish: true, subscribe: true });
    audio.addParticipant('C', { codec: 'opus', publish: false, subscribe: true });
    const roomMix: Received[] = [];
    const unsubscribe = audio.subscribeRoomMix((payload, ts) => roomMix.push({ payload: payload.slice(), seq: 0, ts, pt: 111 }));
    run(audio, [opusTone('A', 440), opusTone('B', 660)], 100);

    expect(roomMix).toHaveLength(100);
    for (let i = 1; i < roomMix.length; i++) expect(roomMix[i]!.ts).toBe((roomMix[i - 1]!.ts + 960) >>> 0);
    const mix = decodeOpus(roomMix);
    expect(tail(mix, 48_000, 440)).toBeGreaterThan(HEARD);
    expect(tail(mix, 48_000, 660)).toBeGreaterThan(HEARD);
    // The room output is C's shared stream: the same bytes, not an encode of its own.
    const c = heard.get('C')!;
    expect(Buffer.from(roomMix.at(-1)!.payload).equals(Buffer.from(c.at(-1)!.payload))).toBe(true);
    expect(audio.toJSON().mixer.encodesLastTick).toBe(3); // A's N−1, B's N−1, the shared mix
    expect(audio.toJSON().participants).toBe(3); // no pretend listener

    unsubscribe();
    run(audio, [opusTone('A', 440)], 5);
    expect(roomMix).toHaveLength(100);
  });

  it('in a hybrid room, rank() keeps the top K eligible speakers out of the mix', () => {
    const heard = new Map<string, Received[]>();
    const audio = new MixRoomAudio({
      mode: 'hybrid',
      forwardSlots: 1,
      onPacket(listenerId, payload, seq, ts, pt) {
        let list = heard.get(listenerId);
        if (list === undefined) heard.set(listenerId, (list = []));
        list.push({ payload: payload.slice(), seq, ts, pt });
      },
    });
    rooms.push(audio);
    for (const id of ['A', 'B', 'C']) audio.addParticipant(id, { codec: 'opus', publish: true, subscribe: true });
    audio.addParticipant('D', { codec: 'opus', publish: false, subscribe: true });
    // X ranks first but may not be forwarded (muted, say): A is the one slot speaker.
    audio.rank(['X', 'A', 'B', 'C'], (id) => id !== 'X');
    expect([...audio.forwarded]).toEqual(['A']);
    run(audio, [opusTone('A', 440), opusTone('B', 660), opusTone('C', 880)], 100);
    const d = decodeOpus(heard.get('D')!);
    expect(tail(d, 48_000, 440)).toBeLessThan(ABSENT);
    expect(tail(d, 48_000, 660)).toBeGreaterThan(HEARD);
    expect(tail(d, 48_000, 880)).toBeGreaterThan(HEARD);
  });
});
