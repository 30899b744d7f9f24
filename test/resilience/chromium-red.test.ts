import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RTCRtpReceiver, type RtpPacket } from 'werift';
import { OutputResilience } from '../../src/media/red-output.ts';
import type { ClientMediaMessage } from '../../src/protocol/index.ts';
import { toInt16, toneFloat32, wavBytes } from '../codec/signal.ts';
import { openChromiumPeer, type ChromiumPeer } from '../media/chromium-peer.ts';
import { RoomHarness, portRange, waitFor } from '../media/harness.ts';

/**
 * Chromium ↔ Chromium through VoxLink with RED negotiated: Chromium A's fake microphone plays a
 * 440 Hz tone from a WAV file (`--use-file-for-fake-audio-capture`); the server's offer asks A for
 * RED upstream (`red/48000/2` first on the mic m-line) and offers RED on B's slots; the room sends
 * RED to every RED-capable subscriber (`red.always`), so B's slot carries RED. B must hear the tone.
 */

const FREQ = 440;
const OFF = 1500;
let dir: string;
let h: RoomHarness;
let a: ChromiumPeer;
let b: ChromiumPeer;
const answers = new Map<string, string>();
/** Observed in this process (the room runs here): RED packets the server's receivers got, and RED packets its outputs sent. */
let redIn = 0;
let redOut = 0;
const restore: (() => void)[] = [];

function observe(): void {
  const receiver = RTCRtpReceiver.prototype as unknown as { handleRTP(this: { codecs: Record<number, { name: string }> }, p: RtpPacket, ...rest: unknown[]): void };
  const handleRTP = receiver.handleRTP;
  receiver.handleRTP = function (p, ...rest) {
    if (this.codecs[p.header.payloadType]?.name.toLowerCase() === 'red') redIn++;
    return handleRTP.call(this, p, ...rest);
  };
  const wrap = OutputResilience.prototype.wrap;
  OutputResilience.prototype.wrap = function (payload, seq, ts) {
    const out = wrap.call(this, payload, seq, ts);
    if (out !== payload) redOut++;
    return out;
  };
  restore.push(() => {
    receiver.handleRTP = handleRTP;
    OutputResilience.prototype.wrap = wrap;
  });
}

beforeAll(async () => {
  observe();
  dir = mkdtempSync(join(tmpdir(), 'vox-red-'));
  const wav = join(dir, 'tone.wav');
  writeFileSync(wav, wavBytes(toInt16(toneFloat32(FREQ, 48_000, 48_000 * 20, { amplitude: 0.4 })), 48_000));
  h = new RoomHarness({ roomId: 'chrome-red', slots: 1, ...portRange(57500, 100), resilience: { red: { always: true, publisher: true } } });
  // Record the answers on their way to the room (the page signals through h.room.signal).
  const signal = h.room.signal.bind(h.room);
  h.room.signal = (participantId: string, m: ClientMediaMessage) => {
    if (m.kind === 'answer' && m.sdp !== undefined) answers.set(participantId, m.sdp);
    return signal(participantId, m);
  };
  a = await openChromiumPeer(h, 'a', [`--use-file-for-fake-audio-capture=${wav}`]);
  b = await openChromiumPeer(h, 'b');
  await h.room.join({ roomId: 'chrome-red', participantId: 'a', name: 'A', grants: { publish: true, subscribe: false, record: false, admin: false } });
  await h.room.join({ roomId: 'chrome-red', participantId: 'b', name: 'B', grants: { publish: false, subscribe: true, record: false, admin: false } });
}, 90_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await h?.room.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  for (const r of restore) r();
});

/** The codec of the first m-line's `a=rtpmap` lines, in the answer's order. */
function mlineCodecs(sdp: string, index: number): string[] {
  const section = sdp.split(/(?=^m=)/m).filter((s) => s.startsWith('m='))[index] ?? '';
  const order = (/^m=\S+ \d+ \S+ (.*)$/m.exec(section)?.[1] ?? '').trim().split(' ');
  const names = new Map([...section.matchAll(/^a=rtpmap:(\d+) ([^/\r\n]+)/gm)].map((m) => [m[1]!, m[2]!.toLowerCase()]));
  return order.map((pt) => names.get(pt) ?? pt);
}

describe('Chromium ↔ Chromium with RED', () => {
  it('negotiates red/48000/2 both ways, sends RED both ways, and B hears A’s tone', async () => {
    await waitFor(() => answers.has('a') && answers.has('b'), 20_000, 'both answers');
    // A's answer keeps RED first on its microphone: Chromium will send RED.
    expect(mlineCodecs(answers.get('a')!, 0)[0]).toBe('red');
    // B's answer accepts RED on its slot (m-line 1).
    expect(mlineCodecs(answers.get('b')!, 1)).toContain('red');
    expect(await b.receiving(20_000, 20_000)).toBeGreaterThanOrEqual(20_000);
    // What went over the wire, counted where the server parses and builds it (Chromium's getStats
    // names the primary codec, audio/opus, for RED streams too).
    expect(redIn, 'RED packets from Chromium A').toBeGreaterThan(100);
    expect(redOut, 'RED packets to Chromium B').toBeGreaterThan(100);
    const levels = (await b.call((api, f) => api.measure(f), [FREQ, OFF])) as number[][];
    const [tone, off] = levels[0]!;
    expect(tone, 'the tone at B').toBeGreaterThan(-50);
    expect(tone - off!, 'tone over an off frequency').toBeGreaterThan(20);
    expect(h.errors).toEqual([]);
  }, 60_000);
});
