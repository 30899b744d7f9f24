import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOggOpus } from '../../src/codec/ogg.ts';
import { OpusEncoder } from '../../src/codec/opus.ts';
import { RoomRecorder } from '../../src/recording/recorder.ts';
import { RecordingTap } from '../../src/media/recording-tap.ts';
import { RECORDING_FILE_SHAPE } from '../../src/recording/layout.ts';
import { powerAt, toneFloat32 } from '../codec/signal.ts';
import { decodeRecording, seconds } from './decode.ts';

/**
 * RoomRecorder on its own, fed RTP payloads the way the room feeds it: timelines through loss,
 * pauses, reordering, a new SSRC, garbage and segment rolls, checked in the written files.
 */

const FRAME = 960;

/** 20 ms Opus packets of a tone, as a sender would produce them. */
function tonePackets(freq: number, count: number): Uint8Array[] {
  const enc = new OpusEncoder({ sampleRate: 48000, channels: 1, bitrate: 32000 });
  try {
    const pcm = toneFloat32(freq, 48000, FRAME * count);
    return Array.from({ length: count }, (_, i) => enc.encode(pcm.subarray(i * FRAME, (i + 1) * FRAME)).slice());
  } finally {
    enc.close();
  }
}

describe('RoomRecorder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'voxlink-recorder-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function read(recorder: RoomRecorder, participantId: string): ReturnType<typeof decodeRecording> {
    const file = recorder.manifest.files.find((f) => f.participantId === participantId)!;
    return decodeRecording(readFileSync(join(dir, recorder.manifest.id, file.file)));
  }

  /** A recorder on a clock the test moves. */
  function recorderAt(id: string): { recorder: RoomRecorder; clock: { ms: number } } {
    const clock = { ms: 0 };
    return { recorder: new RoomRecorder({ dir, id, roomId: 'r', startedBy: 'p', now: () => clock.ms }), clock };
  }

  it('keeps the RTP timeline: a lost packet is concealed, a pause is silence, late and duplicate packets are dropped', () => {
    const packets = tonePackets(440, 150);
    const { recorder, clock } = recorderAt('unit-timeline');
    const ssrc = 1234;
    let ts = 4_294_000_000; // wraps past 2^32 during the test
    const send = (i: number): void => recorder.onAudio('p', packets[i]!, ssrc, (ts + i * FRAME) >>> 0);
    for (let i = 0; i < 50; i++) {
      clock.ms = i * 20;
      if (i !== 25) send(i); // packet 25 lost
    }
    send(49); // duplicate
    send(40); // late
    ts += 50 * FRAME; // a one-second pause (DTX / mute): timestamps jump with real time
    for (let i = 50; i < 150; i++) {
      clock.ms = (i + 50) * 20;
      send(i);
    }
    clock.ms = 200 * 20;
    recorder.stop('p');
    const { file, pcm } = read(recorder, 'p');
    // 149 real packets, 1 concealed, 1 s of silence (8 × 120 ms + 2 × 20 ms), no duplicate or late one.
    expect(file.granule).toBe(200 * FRAME);
    expect(file.packets.length).toBe(149 + 1 + 10);
    expect([...file.packets[25]!]).toEqual([packets[24]![0]! & 0xfc]); // the concealed one: TOC only
    expect(powerAt(seconds(pcm, 0.1, 0.9), 48000, 440)).toBeGreaterThan(0.01);
    // The pause (1.0–2.0 s of the file) decodes to silence, the tone comes back after it.
    expect(powerAt(seconds(pcm, 1.1, 1.9), 48000, 440)).toBeLessThan(1e-7);
    expect(powerAt(seconds(pcm, 2.1, 3.9), 48000, 440)).toBeGreaterThan(0.01);
  });

  it('never writes more than real time, whatever the sender puts in its timestamps', () => {
    const packets = tonePackets(440, 40);
    const { recorder, clock } = recorderAt('unit-wild');
    for (let i = 0; i < 40; i++) {
      clock.ms = i * 20;
      // Every packet claims to come 9 minutes after the previous one.
      recorder.onAudio('p', packets[i]!, 7, (i * 9 * 60 * 48000) >>> 0);
    }
    recorder.stop(null);
    const { file } = read(recorder, 'p');
    // 40 packets in 0.8 s: the file is as long as the recording, not 6 hours.
    expect(file.granule / 48000).toBeLessThan(0.8 + 0.2 + 0.02);
    expect(file.packets.length).toBeLessThan(60);
  });

  it('places a new SSRC by wall clock, pads every file to the stop, and skips garbage payloads', () => {
    const packets = tonePackets(660, 20);
    const { recorder, clock } = recorderAt('unit-ssrc');
    for (let i = 0; i < 10; i++) {
      clock.ms = i * 20;
      recorder.onAudio('p', packets[i]!, 1, i * FRAME);
    }
    // Code 3 with zero frames, a 2000-byte frame, an empty payload (RFC 6716 §3.4 R5, R2, R1).
    recorder.onAudio('p', Uint8Array.of(0xfb, 0x00), 1, 10 * FRAME);
    recorder.onAudio('p', new Uint8Array(2001).fill(0xf8, 0, 1), 1, 10 * FRAME);
    recorder.onAudio('p', new Uint8Array(0), 1, 10 * FRAME);
    // Two seconds later the client reconnected: a new SSRC and a random timestamp base.
    for (let i = 10; i < 20; i++) {
      clock.ms = 2000 + (i - 10) * 20;
      recorder.onAudio('p', packets[i]!, 99, 123_456_789 + i * FRAME);
    }
    // b is heard only at 1 s, for 60 ms.
    for (let i = 0; i < 3; i++) {
      clock.ms = 1000 + i * 20;
      recorder.onAudio('b', packets[i]!, 5, 777 + i * FRAME);
    }
    clock.ms = 3000;
    recorder.stop(null);
    const p = read(recorder, 'p');
    expect(p.file.ended).toBe(true);
    expect(p.file.packets.every((packet) => packet.length < 2000)).toBe(true);
    expect(recorder.manifest.files[0]!.packets).toBe(20);
    // The second stream starts at 2.0 s of the file, where wall clock put it; both files end at 3 s.
    expect(powerAt(seconds(p.pcm, 0.02, 0.18), 48000, 660)).toBeGreaterThan(0.01);
    expect(powerAt(seconds(p.pcm, 1.0, 1.9), 48000, 660)).toBeLessThan(1e-7);
    expect(powerAt(seconds(p.pcm, 2.02, 2.18), 48000, 660)).toBeGreaterThan(0.01);
    const b = read(recorder, 'b');
    expect(p.file.granule).toBe(3 * 48000);
    expect(b.file.granule).toBe(3 * 48000);
    expect(powerAt(seconds(b.pcm, 0.1, 0.9), 48000, 660)).toBeLessThan(1e-7);
    expect(powerAt(seconds(b.pcm, 1.0, 1.06), 48000, 660)).toBeGreaterThan(0.005);
  });

  it('a participant whose file cannot be created is skipped; the rest are recorded', () => {
    const packets = tonePackets(440, 5);
    const { recorder } = recorderAt('unit-blocked');
    recorder.onAudio('a', packets[0]!, 1, 0);
    // b's file name is taken (open with O_EXCL fails, root or not).
    writeFileSync(join(dir, 'unit-blocked', '02-b.opus'), 'not ours');
    for (let i = 0; i < 5; i++) recorder.onAudio('b', packets[i]!, 2, i * FRAME);
    for (let i = 1; i < 5; i++) recorder.onAudio('a', packets[i]!, 1, i * FRAME);
    const manifest = recorder.stop(null);
    expect(manifest.files.map((f) => f.participantId)).toEqual(['a']);
    expect(readOggOpus(readFileSync(join(dir, 'unit-blocked', manifest.files[0]!.file))).packets.length).toBeGreaterThanOrEqual(5);
    expect(readFileSync(join(dir, 'unit-blocked', '02-b.opus'), 'utf8')).toBe('not ours');
  });

  it('names each file by whose voice it is: manifest, OpusTags and a safe, unique file name', () => {
    const people: Record<string, { userId: string | null; name: string }> = {
      pa: { userId: 'u-alice', name: 'Alice Smith' },
      pb: { userId: 'u-evil', name: '../../etc/passwd' },
      pc: { userId: 'u-emoji', name: '🎤🎧' },
      pd: { userId: 'u-jose', name: 'José Ñúñez' },
      pe: { userId: 'u-long', name: 'x'.repeat(300) },
      pf: { userId: 'u-alice-2', name: 'Alice Smith' },
    };
    const clock = { ms: 0 };
    const recorder = new RoomRecorder({ dir, id: 'unit-names', roomId: 'standup', startedBy: 'pa', now: () => clock.ms, identify: (id) => people[id] });
    const packets = tonePackets(440, 3);
    for (const id of [...Object.keys(people), 'stranger']) recorder.onAudio(id, packets[0]!, 1, 0);
    const manifest = recorder.stop('pa');
    expect(manifest.files.map((f) => [f.participantId, f.userId, f.name, f.file])).toEqual([
      ['pa', 'u-alice', 'Alice Smith', '01-alice-smith.opus'],
      ['pb', 'u-evil', '../../etc/passwd', '02-etc-passwd.opus'],
      ['pc', 'u-emoji', '🎤🎧', '03-pc.opus'],
      ['pd', 'u-jose', 'José Ñúñez', '04-jose-nunez.opus'],
      ['pe', 'u-long', 'x'.repeat(300), `05-${'x'.repeat(40)}.opus`],
      ['pf', 'u-alice-2', 'Alice Smith', '06-alice-smith.opus'],
      // Not (or no longer) known to the room: named by its participant id.
      ['stranger', null, null, '07-stranger.opus'],
    ]);
    // Every file is inside the recording's folder, in the layout's shape; the manifest on disk says the same.
    const onDisk = readdirSync(join(dir, 'unit-names')).filter((f) => f.endsWith('.opus')).sort();
    expect(onDisk).toEqual(manifest.files.map((f) => f.file).sort());
    for (const f of onDisk) expect(f).toMatch(RECORDING_FILE_SHAPE);
    const written = JSON.parse(readFileSync(join(dir, 'unit-names', 'manifest.json'), 'utf8')) as typeof manifest;
    expect(written.files[1]).toMatchObject({ userId: 'u-evil', name: '../../etc/passwd' });

    const tags = (file: string): string[] => readOggOpus(readFileSync(join(dir, 'unit-names', file))).tags.comments;
    const day = new Date(manifest.startedAt).toISOString().slice(0, 10);
    expect(tags('01-alice-smith.opus')).toEqual(
      expect.arrayContaining([
        'ARTIST=Alice Smith',
        expect.stringMatching(new RegExp(`^TITLE=standup ${day} \\d\\d:\\d\\d UTC$`)),
        `DATE=${day}`,
        'VOXLINK_USER_ID=u-alice',
        'VOXLINK_PARTICIPANT_ID=pa',
        'VOXLINK_ROOM=standup',
        'VOXLINK_RECORDING_ID=unit-names',
      ]),
    );
    expect(tags('03-pc.opus')).toContain('ARTIST=🎤🎧');
    expect(tags('07-stranger.opus')).toContain('ARTIST=stranger');
    expect(tags('07-stranger.opus').some((c) => c.startsWith('VOXLINK_USER_ID='))).toBe(false);
  });

  it('rolls into segments: each file of a segment spans exactly that segment, ends and is marked complete', () => {
    const packets = tonePackets(440, 250);
    const clock = { ms: 0 };
    const recorder = new RoomRecorder({
      dir,
      id: 'unit-segments',
      roomId: 'r',
      startedBy: 'a',
      segmentMs: 2000,
      now: () => clock.ms,
      identify: (id) => ({ userId: `u-${id}`, name: id === 'a' ? 'Alice' : 'Bob' }),
    });
    // a talks for 5 s (flushes every second, as the recorder tap does); b only from 2.5 s to 3 s.
    for (let i = 0; i < 250; i++) {
      clock.ms = i * 20;
      recorder.onAudio('a', packets[i]!, 7, 1000 + i * FRAME);
      if (clock.ms >= 2500 && clock.ms < 3000) recorder.onAudio('b', packets[i]!, 8, 50 + i * FRAME);
      if (clock.ms % 1000 === 0 && clock.ms > 0) recorder.flush();
      // Between flushes: segment 0 is ended and complete before segment 1 is.
      if (clock.ms === 2100) expect(recorder.manifest.files.map((f) => [f.file, f.complete])).toEqual([['01-alice.opus', true], ['01-alice.s1.opus', false]]);
    }
    clock.ms = 5000;
    const manifest = recorder.stop('a');
    expect(manifest.segmentMs).toBe(2000);
    expect(manifest.segments).toEqual([
      { index: 0, startSample: 0, endSample: 96_000 },
      { index: 1, startSample: 96_000, endSample: 192_000 },
      { index: 2, startSample: 192_000, endSample: 240_000 },
    ]);
    expect(manifest.participants).toEqual([
      { participantId: 'a', userId: 'u-a', name: 'Alice', index: 1 },
      { participantId: 'b', userId: 'u-b', name: 'Bob', index: 2 },
    ]);
    expect(manifest.files.map((f) => [f.file, f.segment, f.offsetSamples, f.complete])).toEqual([
      ['01-alice.opus', 0, 0, true],
      ['01-alice.s1.opus', 1, 96_000, true],
      ['02-bob.s1.opus', 1, 96_000, true],
      ['01-alice.s2.opus', 2, 192_000, true],
    ]);
    for (const f of manifest.files) expect(f.file).toMatch(RECORDING_FILE_SHAPE);
    const decoded = (file: string): ReturnType<typeof decodeRecording> => decodeRecording(readFileSync(join(dir, 'unit-segments', file)));
    // Each file is a complete Ogg Opus stream as long as its segment; played one after another they are a's 5 s.
    const lengths = ['01-alice.opus', '01-alice.s1.opus', '01-alice.s2.opus'].map((f) => {
      const d = decoded(f);
      expect(d.file.ended).toBe(true);
      expect(powerAt(seconds(d.pcm, 0.1, 0.9), 48000, 440)).toBeGreaterThan(0.01);
      return d.pcm.length / 48;
    });
    // Within a frame: a packet written just before the roll may end up to 20 ms past the segment's end.
    const near = (ms: number, expected: number): void => expect(Math.abs(ms - expected), `${ms} ms vs ${expected}`).toBeLessThanOrEqual(21);
    near(lengths[0]!, 2000 - 6.5);
    near(lengths[1]!, 2000);
    near(lengths[2]!, 1000);
    // b's file starts at the segment's start: silent until 0.5 s into it, the tone after.
    const b = decoded('02-bob.s1.opus');
    near(b.pcm.length / 48, 2000);
    expect(powerAt(seconds(b.pcm, 0.05, 0.45), 48000, 440)).toBeLessThan(1e-6);
    expect(powerAt(seconds(b.pcm, 0.55, 0.95), 48000, 440)).toBeGreaterThan(0.01);
    expect(powerAt(seconds(b.pcm, 1.1, 1.9), 48000, 440)).toBeLessThan(1e-6);
  });

  it('refuses ids that are not the recorder-made shape', () => {
    expect(() => new RoomRecorder({ dir, id: '../escape', roomId: 'r', startedBy: 'p' })).toThrow(/bad recording id/);
  });
});

describe('RecordingTap', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'voxlink-recording-tap-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const packet = (payload: Uint8Array, payloadType: number, i: number) => ({
    payload: Buffer.from(payload),
    ssrc: 77,
    sequenceNumber: i,
    timestamp: i * FRAME,
    marker: false,
    payloadType,
    level: 30,
    now: performance.now(),
  });

  it('flushes on its own timer (no room tick), leaves G.711 packets out, and stops once', async () => {
    const tap = new RecordingTap({ dir, roomId: 'r', startedBy: 'p', flushMs: 50 });
    const packets = tonePackets(440, 10);
    packets.forEach((p, i) => tap.onAudio('opus-peer', packet(p, 111, i)));
    tap.onAudio('phone', packet(new Uint8Array(160).fill(0xff), 0, 0)); // PCMU: not recorded
    const manifestPath = join(dir, tap.manifest.id, 'manifest.json');
    // Nothing but the timer makes the manifest report the samples written.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const flushed = JSON.parse(readFileSync(manifestPath, 'utf8')) as { files: { participantId: string; samples: number; packets: number }[] };
    expect(flushed.files.map((f) => f.participantId)).toEqual(['opus-peer']);
    expect(flushed.files[0]!.packets).toBe(10);
    expect(flushed.files[0]!.samples).toBeGreaterThanOrEqual(10 * FRAME);
    const stopped = tap.stop('p');
    expect(stopped.stoppedBy).toBe('p');
    expect(tap.stop('q').stoppedBy).toBe('p');
    tap.close();
  });
});
