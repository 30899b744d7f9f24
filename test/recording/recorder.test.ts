import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOggOpus } from '../../src/codec/ogg.ts';
import { OpusEncoder } from '../../src/codec/opus.ts';
import { RoomRecorder } from '../../src/recording/recorder.ts';
import { powerAt, toneFloat32 } from '../codec/signal.ts';
import { decodeRecording, seconds } from './decode.ts';

/**
 * RoomRecorder on its own, fed RTP payloads the way the room feeds it: timelines through loss,
 * pauses, reordering, a new SSRC and garbage, checked in the written files.
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
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  function read(recorder: RoomRecorder, participantId: string): ReturnType<typeof decodeRecording> {
    const file = recorder.manifest.files.find((f) => f.participantId === participantId)!;
    return decodeRecording(readFileSync(join(dir, recorder.manifest.id, file.file)));
  }

  it('keeps the RTP timeline: a lost packet is concealed, a pause is silence, late and duplicate packets are dropped', () => {
    const packets = tonePackets(440, 150);
    const recorder = new RoomRecorder({ dir, id: 'unit-timeline', roomId: 'r', startedBy: 'p' });
    const ssrc = 1234;
    let ts = 4_294_000_000; // wraps past 2^32 during the test
    const send = (i: number): void => recorder.onAudio('p', packets[i]!, ssrc, (ts + i * FRAME) >>> 0);
    for (let i = 0; i < 50; i++) if (i !== 25) send(i); // packet 25 lost
    send(49); // duplicate
    send(40); // late
    ts += 50 * FRAME; // a one-second pause (DTX / mute): timestamps jump
    for (let i = 50; i < 150; i++) send(i);
    recorder.stop('p');
    const { file, pcm } = read(recorder, 'p');
    // 149 real packets + 1 concealed + 50 silent frames, and no duplicate or late packet (plus at
    // most one frame of lead-in: the first packet is placed by wall clock after the start).
    const lead = file.packets.length - 200;
    expect(lead === 0 || lead === 1, `${file.packets.length} packets`).toBe(true);
    expect(file.granule).toBe((200 + lead) * FRAME);
    expect([...file.packets[lead + 25]!]).toEqual([packets[24]![0]! & 0xfc]); // the concealed one: TOC only
    expect(powerAt(seconds(pcm, 0.1, 0.9), 48000, 440)).toBeGreaterThan(0.01);
    // The pause (1.0–2.0 s of the file) decodes to silence, the tone comes back after it.
    expect(powerAt(seconds(pcm, 1.1, 1.9), 48000, 440)).toBeLessThan(1e-7);
    expect(powerAt(seconds(pcm, 2.1, 3.9), 48000, 440)).toBeGreaterThan(0.01);
  });

  it('skips garbage payloads and keeps the file valid; a new SSRC is placed by wall clock', () => {
    const packets = tonePackets(660, 20);
    const recorder = new RoomRecorder({ dir, id: 'unit-garbage', roomId: 'r', startedBy: 'p' });
    for (let i = 0; i < 10; i++) recorder.onAudio('p', packets[i]!, 1, i * FRAME);
    // Code 3 with zero frames, and a 2000-byte frame: RFC 6716 §3.4 R5 and R2.
    recorder.onAudio('p', Uint8Array.of(0xfb, 0x00), 1, 10 * FRAME);
    recorder.onAudio('p', new Uint8Array(2001).fill(0xf8, 0, 1), 1, 10 * FRAME);
    recorder.onAudio('p', new Uint8Array(0), 1, 10 * FRAME);
    // The client reconnected: a new SSRC and a random timestamp base.
    for (let i = 10; i < 20; i++) recorder.onAudio('p', packets[i]!, 99, 123_456_789 + i * FRAME);
    recorder.stop(null);
    const { file, pcm } = read(recorder, 'p');
    expect(file.ended).toBe(true);
    expect(file.packets.every((p) => p.length < 2000)).toBe(true);
    expect(file.packets.length).toBeGreaterThanOrEqual(20);
    expect(powerAt(seconds(pcm, 0.02, 0.18), 48000, 660)).toBeGreaterThan(0.01);
    expect(recorder.manifest.files[0]!.packets).toBe(20);
  });

  it('a participant whose file cannot be created is skipped; the rest are recorded', () => {
    const packets = tonePackets(440, 5);
    const recorder = new RoomRecorder({ dir, id: 'unit-readonly', roomId: 'r', startedBy: 'p' });
    recorder.onAudio('a', packets[0]!, 1, 0);
    chmodSync(join(dir, 'unit-readonly'), 0o500);
    const root = process.getuid?.() === 0; // root writes anyway
    for (let i = 0; i < 5; i++) recorder.onAudio('b', packets[i]!, 2, i * FRAME);
    chmodSync(join(dir, 'unit-readonly'), 0o700);
    for (let i = 1; i < 5; i++) recorder.onAudio('a', packets[i]!, 1, i * FRAME);
    const manifest = recorder.stop(null);
    expect(manifest.files.map((f) => f.participantId)).toEqual(root ? ['a', 'b'] : ['a']);
    expect(readOggOpus(readFileSync(join(dir, 'unit-readonly', manifest.files[0]!.file))).packets.length).toBe(5);
  });

  it('refuses ids that are not the recorder-made shape', () => {
    expect(() => new RoomRecorder({ dir, id: '../escape', roomId: 'r', startedBy: 'p' })).toThrow(/bad recording id/);
  });
});
