/**
 * Records a room for a while and downloads the files (docs/sdk.md "Recording", docs/recording.md).
 *
 *   node --import tsx examples/record-room.ts ws://127.0.0.1:7880/ws <token> <room> <seconds> <out dir>
 *
 * The token needs the `join` and `record` grants for the room. Everyone in the room is told that
 * a recording runs (the `recording` event / `room.recording`), for as long as it runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeClient } from 'voxlink/client/node';

const [url, token, room, seconds = '5', outDir = 'recordings'] = process.argv.slice(2);
if (!url || !token || !room) {
  console.error('usage: node --import tsx examples/record-room.ts <ws url> <token> <room> [seconds] [out dir]');
  process.exit(2);
}

const client = createNodeClient({ clientInfo: { name: 'recorder', version: '1' } });
try {
  await client.connect(url, token);
  await client.join(room, { muted: true }); // the record op is for members of the room
  const id = await client.record(room, 'start');
  console.log(`recording ${id} of ${room} for ${seconds} s`);
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  await client.record(room, 'stop');
  await client.leave(room);

  // The files are served over HTTP to a token with the record grant for the room.
  const http = new URL(url.replace(/^ws/, 'http'));
  const get = (path: string) => fetch(new URL(path, http), { headers: { authorization: `Bearer ${token}` } });
  const listing = (await (await get(`/recordings?room=${encodeURIComponent(room)}`)).json()) as {
    recordings: { id: string; files: { file: string; participantId: string }[] }[];
  };
  const recording = listing.recordings.find((r) => r.id === id);
  if (!recording) throw new Error(`recording ${id} is not listed`);
  mkdirSync(join(outDir, recording.id), { recursive: true });
  for (const { file } of recording.files) {
    const response = await get(`/recordings/${encodeURIComponent(recording.id)}/${encodeURIComponent(file)}`);
    if (!response.ok) throw new Error(`download of ${file}: HTTP ${response.status}`);
    const path = join(outDir, recording.id, file);
    writeFileSync(path, Buffer.from(await response.arrayBuffer()));
    console.log(`wrote ${path}`);
  }
} catch (err) {
  console.error(`recorder: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await client.disconnect();
}
