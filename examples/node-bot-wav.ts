/**
 * A Node bot that joins a room, says a WAV file and leaves (docs/sdk.md "A Node bot").
 *
 *   espeak-ng -w hello.wav "Hello from the bot"
 *   node --import tsx examples/node-bot-wav.ts ws://127.0.0.1:7880/ws <token> <room> hello.wav
 *
 * The token needs the `join` and `publish` grants for the room (examples/mint-token.ts).
 */
import { readFileSync } from 'node:fs';
import { createNodeClient } from 'voxlink/client/node';
import { NodeMediaClient, type PcmSource } from 'voxlink/media/node';
import { readWav } from './wav.ts';

const [url, token, room, file] = process.argv.slice(2);
if (!url || !token || !room || !file) {
  console.error('usage: node --import tsx examples/node-bot-wav.ts <ws url> <token> <room> <file.wav>');
  process.exit(2);
}

/** The file's samples, one 20 ms frame per `read`, then silence. */
class WavSource implements PcmSource {
  #at = 0;
  constructor(readonly samples: Float32Array) {}
  get done(): boolean {
    return this.#at >= this.samples.length;
  }
  read(out: Float32Array): void {
    const n = Math.max(0, Math.min(out.length, this.samples.length - this.#at));
    out.set(this.samples.subarray(this.#at, this.#at + n));
    out.fill(0, n);
    this.#at += out.length;
  }
}

const speech = new WavSource(readWav(readFileSync(file)));
const client = createNodeClient({ clientInfo: { name: 'wav-bot', version: '1' } });
// The media part: a werift peer publishing our audio; it only sends, so skip decoding.
const media = new NodeMediaClient({ room, signal: { send: (m) => client.sendMedia(m) }, decode: false });
client.on('media', (m) => void media.handle(m));
client.on('ice_servers', (servers) => media.setIceServers(servers));
client.on('error', (err) => console.error(`bot: ${err.message} (${err.detail})`));

try {
  await client.connect(url, token);
  media.setIceServers(client.iceServers); // TURN, when the server hands it out
  await client.join(room);
  await media.connected();
  console.log(`bot: speaking ${file} (${(speech.samples.length / 48_000).toFixed(1)} s) in ${room}`);
  media.publish(speech);
  while (!speech.done) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300)); // the last packets
  console.log('bot: done');
} catch (err) {
  // SDK errors say what happened in one sentence; the codes stay on the error for programs.
  console.error(`bot: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await media.close();
  await client.disconnect();
}
