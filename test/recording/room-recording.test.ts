import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { readOggOpus } from '../../src/codec/ogg.ts';
import type { RecordingState } from '../../src/media/room.ts';
import { meanPower, powerAt } from '../codec/signal.ts';
import { RoomHarness, portRange, sleep, waitFor } from '../media/harness.ts';
import { decodeRecordingFile, seconds } from './decode.ts';

/**
 * Recording inside a real media room: werift clients publish Opus tones, the room remuxes each
 * publisher's RTP into its own Ogg Opus file. The files are read back (CRCs, pages), decoded with
 * our Opus decoder and checked by ear: each holds its own publisher's tone and nobody else's, every
 * file starts at the recording's start (a late joiner's file begins with silence), a muted stretch
 * stays in the timeline as silence, and all files are as long as the recording.
 */

const TONES: Record<string, number> = { a: 440, b: 660, c: 880 };
/** Power at a 0.3-amplitude tone's frequency after Opus: ~0.045; absent: far below. */
const PRESENT = 0.01;
const ABSENT = 0.0005;
/** A silent stretch: CELT silence frames decode to zeros (allow the edges' overlap). */
const SILENT = 1e-6;

describe('recording a media room (real werift peers)', () => {
  let h: RoomHarness;
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'voxlink-rec-room-'));
    h = new RoomHarness({ roomId: 'rec-room', recordingDir: dir, ...portRange(48400) });
  });

  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one Ogg Opus file per publisher, aligned to the recording start, each with its own voice', async () => {
    for (const id of ['a', 'b']) await h.join(id);
    await Promise.all([...h.clients.values()].map((c) => c.connected()));
    for (const id of ['a', 'b']) h.clients.get(id)!.publish(new ToneSource(TONES[id]));
    await waitFor(() => h.clients.get('a')!.heard().includes('b') && h.clients.get('b')!.heard().includes('a'), 10_000, 'a and b hear each other');

    const started = (await h.room.record('start', 'a'))!;
    expect(started).toMatchObject({ roomId: 'rec-room', startedBy: 'a', stoppedAt: null });
    expect(started.id).toMatch(/^[a-z0-9]+-[0-9a-f]{12}$/);
    // Starting again returns the running recording.
    expect((await h.room.record('start', 'b'))?.id).toBe(started.id);
    expect(h.room.stats().recording?.id).toBe(started.id);

    await sleep(1000);
    await h.room.setMuted('b', true);
    await sleep(1000);
    await h.room.setMuted('b', false);
    // c joins two seconds into the recording.
    const c = await h.join('c');
    await c.connected();
    c.publish(new ToneSource(TONES.c));
    await waitFor(() => h.clients.get('a')!.heard().includes('c'), 10_000, 'a hears c');
    await sleep(1500);

    // Before the stop: what has been flushed (pages close at least every second) already parses.
    const folder = join(dir, started.id);
    const running = readdirSync(folder).filter((f) => f.endsWith('.opus'));
    expect(running.length).toBe(3);
    const partial = readOggOpus(readFileSync(join(folder, running.find((f) => f.endsWith('-a.opus'))!)));
    expect(partial.ended).toBe(false);
    expect(partial.packets.length).toBeGreaterThan(100);

    const stopped = (await h.room.record('stop', 'b')) as RecordingState;
    expect(stopped).toMatchObject({ id: started.id, stoppedBy: 'b' });
    expect(h.room.stats().recording).toBeUndefined();
    expect(JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8'))).toEqual(stopped);
    const wallSec = (stopped.stoppedAt! - stopped.startedAt) / 1000;
    expect(stopped.files.map((f) => f.participantId).sort()).toEqual(['a', 'b', 'c']);

    const decoded = Object.fromEntries(
      stopped.files.map((f) => [f.participantId, { info: f, ...decodeRecordingFile(join(folder, f.file)) }]),
    );
    for (const [id, { info, file, pcm }] of Object.entries(decoded)) {
      expect(file.ended, `${id}: EOS page`).toBe(true);
      expect(file.truncated).toBe(false);
      expect(file.granule, `${id}: manifest samples`).toBe(info.samples);
      // Every file spans the recording: from its start (filler before the first packet) to the stop.
      expect(Math.abs(file.granule / 48000 - wallSec), `${id}: ${file.granule / 48000} s vs ${wallSec} s`).toBeLessThan(0.3);
      const last = seconds(pcm, pcm.length / 48000 - 1, pcm.length / 48000);
      expect(powerAt(last, 48000, TONES[id]), `${id}: own tone`).toBeGreaterThan(PRESENT);
      for (const other of Object.keys(TONES).filter((o) => o !== id)) {
        expect(powerAt(last, 48000, TONES[other]), `${id}: no ${other}`).toBeLessThan(ABSENT);
      }
    }
    // a spoke from the first second on; b's muted second is silence on its own timeline.
    expect(powerAt(seconds(decoded.a.pcm, 0.1, 0.9), 48000, TONES.a)).toBeGreaterThan(PRESENT);
    expect(powerAt(seconds(decoded.b.pcm, 0.1, 0.9), 48000, TONES.b)).toBeGreaterThan(PRESENT);
    expect(meanPower(seconds(decoded.b.pcm, 1.3, 1.9))).toBeLessThan(SILENT);
    expect(powerAt(seconds(decoded.b.pcm, 2.4, 3.0), 48000, TONES.b)).toBeGreaterThan(PRESENT);
    // c was not there for the first two seconds.
    expect(meanPower(seconds(decoded.c.pcm, 0.1, 1.9))).toBeLessThan(SILENT);
    expect(h.errors).toEqual([]);
  }, 40_000);

  it('stop without a recording is null; closing the room ends a running one with an EOS page', async () => {
    expect(await h.room.record('stop', 'a')).toBeNull();
    const running = (await h.room.record('start', 'a'))!;
    await sleep(600);
    await h.room.close();
    const manifest = JSON.parse(readFileSync(join(dir, running.id, 'manifest.json'), 'utf8')) as RecordingState;
    expect(manifest.stoppedAt).not.toBeNull();
    expect(manifest.stoppedBy).toBeNull();
    expect(manifest.files.length).toBeGreaterThan(0);
    for (const f of manifest.files) expect(readOggOpus(readFileSync(join(dir, running.id, f.file))).ended).toBe(true);
  }, 20_000);

  it("a mix room also records the room as heard: 00-mix.opus carries every speaker", async () => {
    const mixed = new RoomHarness({ roomId: 'rec-mix', mode: 'mix', recordingDir: dir, ...portRange(48550, 50) });
    try {
      for (const id of ['a', 'b']) await mixed.join(id);
      await Promise.all([...mixed.clients.values()].map((c) => c.connected()));
      mixed.clients.get('a')!.publish(new ToneSource(TONES.a));
      mixed.clients.get('b')!.publish(new ToneSource(TONES.b));
      // Each hears the other through the mix before the recording starts (both publishers' audio
      // flows: on a loaded host one peer's first packets can come a second after the other's).
      await waitFor(() => mixed.clients.get('a')!.audioOfSlot(0, 0.5).length > 0, 10_000, 'a hears the mix');
      await waitFor(() => mixed.clients.get('b')!.audioOfSlot(0, 0.5).length > 0, 10_000, 'b hears the mix');
      const started = (await mixed.room.record('start', 'a'))!;
      await sleep(2000);
      const stopped = (await mixed.room.record('stop', 'a'))!;
      const mixFile = stopped.files.find((f) => f.participantId === '~mix');
      expect(mixFile?.file).toBe('00-mix.opus');
      const { file, pcm } = decodeRecordingFile(join(dir, started.id, mixFile!.file));
      expect(file.ended).toBe(true);
      const wallSec = (stopped.stoppedAt! - stopped.startedAt) / 1000;
      expect(Math.abs(file.granule / 48000 - wallSec)).toBeLessThan(0.3);
      const heard = seconds(pcm, 0.5, 1.8);
      expect(powerAt(heard, 48000, TONES.a), 'a in the mix').toBeGreaterThan(PRESENT);
      expect(powerAt(heard, 48000, TONES.b), 'b in the mix').toBeGreaterThan(PRESENT);
      expect(powerAt(heard, 48000, TONES.c), 'nobody else').toBeLessThan(ABSENT);
      // And each speaker's own file, as in sfu rooms.
      expect(stopped.files.map((f) => f.participantId).sort()).toEqual(['a', 'b', '~mix']);
      expect(mixed.errors).toEqual([]);
    } finally {
      await mixed.close();
    }
  }, 30_000);

  it('refuses to record without a recordings folder', async () => {
    const plain = new RoomHarness({ roomId: 'no-rec', ...portRange(48500, 50) });
    try {
      await expect(plain.room.record('start', 'x')).rejects.toMatchObject({ code: 'RECORDING_UNAVAILABLE' });
    } finally {
      await plain.close();
    }
  });
});
