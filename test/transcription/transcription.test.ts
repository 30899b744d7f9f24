import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeMediaClient } from '../../src/client/media/node.ts';
import { createNodeClient, type VoxClient } from '../../src/client/node.ts';
import { recordingDirOf } from '../../src/config.ts';
import { createMediaPlane, mediaPlaneOptionsFromConfig, type PooledMediaPlane } from '../../src/rooms/media-plane.ts';
import type { RecordingManifest } from '../../src/recording/layout.ts';
import type { TranscriptReady } from '../../src/signalling/observer.ts';
import { Transcriber, type TranscriptDocument, type TranscriptWritten } from '../../src/transcription/index.ts';
import { WebhookDispatcher } from '../../src/webhooks/index.ts';
import { sleep, waitFor } from '../media/harness.ts';
import { startTestServer, type TestServer } from '../signalling/harness.ts';
import { WebhookReceiver } from '../webhooks/receiver.ts';
import { ScriptSource, speak, wordErrorRate } from './speech.ts';

/**
 * Transcription end to end, every part real: two werift clients (the SDK) speak espeak-ng
 * sentences made at test time into a recorded room on a real server and worker pool; the recording
 * stops; the Transcriber's piscina job decodes each Ogg Opus track with our Opus wasm at 16 kHz and
 * runs Debian's pocketsphinx. The transcripts' words are compared with the sentences (word error
 * rate, reported), their times must fall inside the recording and near where each speaker spoke,
 * and the room and a webhook receiver are told.
 */

const ROOM = 'asr-e2e';
const KEY = 'transcription-hook-key-0123';
const SPEECH: Record<string, { name: string; sentences: string[] }> = {
  alice: { name: 'Alice Smith', sentences: ['Hello world, this is a test.', 'The weather is nice today.', 'Please open the window.'] },
  bob: { name: 'Bob', sentences: ['We will meet at the station at seven.', 'Thank you very much for your help.', 'I would like a cup of coffee.'] },
};
/** Measured 19 % and 43 % in two runs of this test (docs/recording.md "Accuracy as measured"); the bound leaves room over the worse. */
const MAX_WER = 0.65;

interface Speaker {
  client: VoxClient;
  media: NodeMediaClient;
  source: ScriptSource;
}

describe('offline transcription of a recorded room (espeak-ng → werift → recording → pocketsphinx)', () => {
  let dataDir: string;
  let plane: PooledMediaPlane;
  let t: TestServer;
  let transcriber: Transcriber;
  let receiver: WebhookReceiver;
  let hooks: WebhookDispatcher;
  const speakers = new Map<string, Speaker>();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'voxlink-asr-'));
    const recordingDir = recordingDirOf({ dataDir, recording: { enabled: true } })!;
    plane = createMediaPlane(
      mediaPlaneOptionsFromConfig({ workers: 1, announcedIp: '127.0.0.1', rtcMinPort: 52000, rtcMaxPort: 52099, slots: 3, recordingDir }),
    );
    await plane.pool.ready();
    t = await startTestServer({ dataDir }, { mediaPlane: plane });
    transcriber = new Transcriber({
      recordingDir,
      engine: { engine: 'pocketsphinx', binary: 'pocketsphinx_continuous', modelDir: '/usr/share/pocketsphinx/model/en-us' },
    }).attach(t.server.observer, (e) =>
      t.server.core.admin.announceTranscript(e.roomId, e.recordingId, { tracks: e.tracks.length, words: e.tracks.reduce((n, x) => n + x.words, 0), failed: e.failed }),
    );
    receiver = await WebhookReceiver.start(KEY);
    hooks = new WebhookDispatcher({ urls: [receiver.url], key: KEY, events: ['recording_started', 'recording_finished', 'transcript_ready'] }).attach(t.server.observer);
  });

  afterAll(async () => {
    for (const s of speakers.values()) {
      await s.media.close();
      await s.client.disconnect();
    }
    await hooks?.close();
    await receiver?.close();
    await transcriber?.close();
    await t?.close();
    await plane?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('transcribes each participant track: words close to what was said, times inside the recording, room and webhook told', async () => {
    for (const [userId, { name, sentences }] of Object.entries(SPEECH)) {
      const client = createNodeClient();
      const media = new NodeMediaClient({ room: ROOM, signal: { send: (m) => client.sendMedia(m) } });
      client.on('media', (m) => void media.handle(m));
      await client.connect(t.wsUrl, await t.token(userId, { name, grants: ['join', 'publish', 'subscribe', 'record'] }));
      await client.join(ROOM);
      await media.connected(15_000);
      // Alice speaks first; Bob waits for her to finish (a second of lead silence per clip).
      const source = new ScriptSource(sentences.map(speak), 1);
      media.publish(source);
      speakers.set(userId, { client, media, source });
    }
    const alice = speakers.get('alice')!;
    const bob = speakers.get('bob')!;
    const told: Array<{ recordingId: string; tracks: number; words: number; failed: number }> = [];
    bob.client.on('transcript', (e) => told.push(e));
    const written: TranscriptWritten[] = [];
    transcriber.onTranscript((w) => void written.push(w));

    const recordingId = (await alice.client.record(ROOM, 'start'))!;
    const recordStart = Date.now();
    await sleep(500);
    alice.source.start();
    const aliceAt = (Date.now() - recordStart) / 1000;
    await waitFor(() => alice.source.done, 30_000, 'alice done');
    bob.source.start();
    const bobAt = (Date.now() - recordStart) / 1000;
    await waitFor(() => bob.source.done, 30_000, 'bob done');
    await sleep(500);
    expect(await alice.client.record(ROOM, 'stop')).toBeNull();

    await waitFor(() => told.length === 1, 180_000, 'the room is told the transcript is ready');
    expect(told[0]).toMatchObject({ recordingId, tracks: 2, failed: 0 });

    const folder = join(dataDir, 'recordings', recordingId);
    const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8')) as RecordingManifest;
    const lengthSec = (manifest.stoppedAt! - manifest.startedAt) / 1000;
    const report: string[] = [];
    let errors = 0;
    let words = 0;
    for (const [userId, { name, sentences }] of Object.entries(SPEECH)) {
      const track = manifest.files.find((f) => f.userId === userId)!;
      const base = track.file.replace(/\.opus$/, '');
      const doc = JSON.parse(readFileSync(join(folder, `${base}.transcript.json`), 'utf8')) as TranscriptDocument;
      expect(doc).toMatchObject({ version: 1, recordingId, roomId: ROOM, userId, speaker: name, file: track.file, engine: 'pocketsphinx', offset: 0 });
      const hypothesis = doc.segments.map((s) => s.text).join(' ');
      const measured = wordErrorRate(sentences.join(' '), hypothesis);
      report.push(`${userId}: WER ${(measured.wer * 100).toFixed(0)}% (${measured.errors}/${measured.words}) heard "${hypothesis}"`);
      errors += measured.errors;
      words += measured.words;

      // Times: in the recording, in order, and where this speaker spoke (not the other's turn).
      const all = doc.segments.flatMap((s) => s.words);
      expect(all.length).toBeGreaterThan(0);
      for (const s of doc.segments) {
        expect(s.speaker).toBe(name);
        expect(s.start).toBeLessThanOrEqual(s.end);
        for (const w of s.words) {
          expect(w.start).toBeGreaterThanOrEqual(s.start);
          expect(w.end).toBeLessThanOrEqual(s.end);
        }
      }
      for (const w of all) {
        expect(w.start).toBeGreaterThanOrEqual(0);
        expect(w.end).toBeLessThanOrEqual(lengthSec + 0.1);
      }
      const turnStart = userId === 'alice' ? aliceAt : bobAt;
      const turnEnd = turnStart + (userId === 'alice' ? alice : bob).source.durationSec;
      expect(all[0]!.start).toBeGreaterThan(turnStart + 1 - 0.5); // 1 s of lead silence
      expect(all.at(-1)!.end).toBeLessThan(turnEnd + 0.8);

      const vtt = readFileSync(join(folder, `${base}.vtt`), 'utf8');
      expect(vtt.startsWith('WEBVTT\n\n1\n')).toBe(true);
      expect(vtt).toContain(`<v ${name}>`);
      expect(vtt).toMatch(/\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}/);
    }
    const wer = errors / words;
    console.log(`transcription (pocketsphinx en-us, espeak-ng klatt through Opus 24 kb/s): ${report.join('; ')}; overall WER ${(wer * 100).toFixed(1)}%`);
    expect(wer).toBeLessThanOrEqual(MAX_WER);

    // The hook for a storage uploader saw the four files; the webhook receiver got the three events in order.
    expect(written).toHaveLength(1);
    expect(written[0]!.paths.map((p) => p.slice(folder.length + 1)).sort()).toEqual(
      manifest.files.flatMap((f) => [f.file.replace(/\.opus$/, '.transcript.json'), f.file.replace(/\.opus$/, '.vtt')]).sort(),
    );
    expect(await hooks.idle(5000)).toBe(true);
    const events = receiver.events(ROOM);
    expect(events.map((e) => e.event)).toEqual(['recording_started', 'recording_finished', 'transcript_ready']);
    expect(receiver.received.every((r) => r.signature.ok)).toBe(true);
    const ready = events[2]!.data as TranscriptReady;
    expect(ready).toMatchObject({ roomId: ROOM, recordingId, failed: 0 });
    expect(ready.tracks.map((x) => x.name).sort()).toEqual(['Alice Smith', 'Bob']);
  }, 300_000);
});
