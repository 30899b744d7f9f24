import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVoxError } from '../../src/errors.ts';
import {
  OGG_OPUS_MAX_GAP_SAMPLES,
  OggOpusWriter,
  OpusApplication,
  OpusDecoder,
  OpusEncoder,
  getOpusPacketInfo,
  opusPacketSamples,
  readOggOpus,
  type OggOpusWriterOptions,
} from '../../src/codec/index.ts';
import { bestDelay, channelOf, dominantFrequency, meanPower, powerAt, snrDb, toneFloat32 } from './signal.ts';
import { decodeAll, encodeAll } from './stream.ts';
import { thrown } from './thrown.ts';

// Ogg Opus files are checked three ways: our reader (structure, CRCs, packets byte for byte), an
// independent page splitter and bit-by-bit CRC below (so a bug shared by writer and reader cannot
// hide), and Debian's opus-tools (opusinfo validates, opusdec decodes with libopus + libogg).

const RATE = 48000;
const tmp = mkdtempSync(join(tmpdir(), 'voxlink-ogg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---- helpers ----

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  const error = thrown(fn);
  expect(isVoxError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  if (message) expect((error as Error).message).toMatch(message);
}

/** Same packets byte for byte (compared as Buffers: toEqual is slow on 100 kB arrays). */
function expectSamePackets(actual: Uint8Array[], expected: Uint8Array[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((packet, i) => expect(Buffer.compare(packet, expected[i]), `packet ${i}`).toBe(0));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

/** A writer whose pages land in an array. */
function record(options: OggOpusWriterOptions): { writer: OggOpusWriter; pages: Uint8Array[]; bytes: () => Uint8Array } {
  const pages: Uint8Array[] = [];
  const writer = new OggOpusWriter((page) => pages.push(page), options);
  return { writer, pages, bytes: () => concat(pages) };
}

function encodeTone(
  seconds: number,
  options: { channels?: 1 | 2; bitrate?: number; application?: OpusApplication; vbr?: boolean } = {},
): { packets: Uint8Array[]; input: Float32Array; lookahead: number } {
  const { channels = 1, bitrate = 32000, application = OpusApplication.VOIP, vbr } = options;
  const encoder = new OpusEncoder({ sampleRate: RATE, channels, bitrate, application, vbr });
  try {
    // Left 440 Hz, right 660 Hz: a swapped or collapsed channel shows up as the wrong pitch.
    const input = toneFloat32(440, RATE, RATE * seconds, { channels, rightFreq: 660 });
    return { packets: encodeAll(encoder, input), input, lookahead: encoder.lookahead };
  } finally {
    encoder.close();
  }
}

function decode(packets: Uint8Array[], channels: 1 | 2 = 1): Float32Array {
  const decoder = new OpusDecoder({ sampleRate: RATE, channels });
  try {
    return decodeAll(decoder, packets);
  } finally {
    decoder.close();
  }
}

/** Ogg CRC computed bit by bit (RFC 3533 §6), independent of the writer's table. */
function bitwiseCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

interface Page {
  offset: number;
  flags: number;
  granule: bigint;
  serial: number;
  sequence: number;
  lacing: number[];
  length: number;
}

/** Splits an Ogg stream into pages by the header fields alone, checking each CRC bit by bit. */
function splitPages(bytes: Uint8Array): Page[] {
  const pages: Page[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset < bytes.length; ) {
    expect(Buffer.from(bytes.subarray(offset, offset + 4)).toString('latin1')).toBe('OggS');
    expect(bytes[offset + 4]).toBe(0);
    const lacing = Array.from(bytes.subarray(offset + 27, offset + 27 + bytes[offset + 26]));
    const length = 27 + lacing.length + lacing.reduce((a, b) => a + b, 0);
    const page = bytes.slice(offset, offset + length);
    const stored = view.getUint32(offset + 22, true);
    page.fill(0, 22, 26);
    expect(bitwiseCrc(page), `CRC of page at byte ${offset}`).toBe(stored);
    pages.push({
      offset,
      flags: bytes[offset + 5],
      granule: view.getBigInt64(offset + 6, true),
      serial: view.getUint32(offset + 14, true),
      sequence: view.getUint32(offset + 18, true),
      lacing,
      length,
    });
    offset += length;
  }
  return pages;
}

/**
 * The page structure RFC 3533 §6 and RFC 7845 §3 ask for: one serial, consecutive sequence
 * numbers, BOS only on the first page and EOS only on the last, OpusHead alone on page 0 and both
 * header pages at granule 0, granule -1 exactly where no packet finishes.
 */
function expectStreamStructure(pages: Page[]): void {
  expect(pages.length).toBeGreaterThanOrEqual(3);
  pages.forEach((page, i) => {
    expect(page.sequence).toBe(i);
    expect(page.serial).toBe(pages[0].serial);
    expect(page.flags & 0x02, `BOS on page ${i}`).toBe(i === 0 ? 0x02 : 0);
    expect(page.flags & 0x04, `EOS on page ${i}`).toBe(i === pages.length - 1 ? 0x04 : 0);
    const finishes = page.lacing.some((lace) => lace < 255);
    if (i < 2) expect(page.granule).toBe(0n);
    else if (!finishes) expect(page.granule).toBe(-1n);
    else expect(page.granule).toBeGreaterThan(0n);
  });
  // RFC 7845 §3: each header packet alone on its page.
  expect(pages[0].lacing).toEqual([19]);
  expect(pages[1].lacing.filter((lace) => lace < 255)).toHaveLength(1);
}

function requireTool(name: string): void {
  const probe = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(`${name} (Debian's opus-tools) is not installed: run scripts/install-system-deps.sh`);
  }
}

/** Runs opusinfo on `bytes`; it must exit 0 and print no warning or error. Returns its report. */
function opusinfo(bytes: Uint8Array, name: string): string {
  requireTool('opusinfo');
  const file = join(tmp, `${name}.opus`);
  writeFileSync(file, bytes);
  const run = spawnSync('opusinfo', [file], { encoding: 'utf8' });
  const output = `${run.stdout}${run.stderr}`;
  expect(run.status, output).toBe(0);
  expect(output).not.toMatch(/warning|error|invalid|corrupt|hole/i);
  return output;
}

/** Decodes `bytes` with opusdec at 48 kHz to float PCM (interleaved), pre-skip and end trimming applied. */
function opusdec(bytes: Uint8Array, name: string): Float32Array {
  requireTool('opusdec');
  const file = join(tmp, `${name}.opus`);
  const out = join(tmp, `${name}.f32`);
  writeFileSync(file, bytes);
  const run = spawnSync('opusdec', ['--quiet', '--rate', '48000', '--float', file, out], { encoding: 'utf8' });
  expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
  const raw = readFileSync(out);
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/**
 * `packet` as a code-3 packet of the same single frame plus `padding` bytes of padding
 * (RFC 6716 §3.2.5): as valid as the original and decodes identically, but as large as we like.
 */
function padded(packet: Uint8Array, padding: number): Uint8Array {
  expect(packet[0] & 3).toBe(0);
  const lengthBytes: number[] = [];
  let left = padding;
  while (left >= 255) {
    lengthBytes.push(255); // "255" = 254 bytes of padding and another length byte follows
    left -= 254;
  }
  lengthBytes.push(left);
  return concat([
    Uint8Array.of((packet[0] & 0xfc) | 3, 0x40 | 1),
    Uint8Array.from(lengthBytes),
    packet.subarray(1),
    new Uint8Array(padding),
  ]);
}

/** First sample at or after `from` where the 2.5 ms RMS rises above `threshold`. */
function onset(pcm: Float32Array, from: number, threshold: number): number {
  for (let i = from; i + 120 <= pcm.length; i += 24) {
    if (Math.sqrt(meanPower(pcm, i, i + 120)) > threshold) return i;
  }
  return -1;
}

// ---- tests ----

describe('Ogg Opus round trip', () => {
  const cases = [
    { channels: 1 as const, bitrate: 32000, application: OpusApplication.VOIP, minSnr: 12 },
    { channels: 2 as const, bitrate: 64000, application: OpusApplication.AUDIO, minSnr: 15 },
  ];
  for (const { channels, bitrate, application, minSnr } of cases) {
    it(`3 s of ${channels === 1 ? 'mono' : 'stereo'} 440 Hz comes back packet for packet and decodes to the tone`, () => {
      const { packets, input, lookahead } = encodeTone(3, { channels, bitrate, application });
      expect(packets).toHaveLength(150);
      const { writer, pages, bytes } = record({
        channels,
        inputSampleRate: 16000,
        preSkip: 312,
        outputGain: -256,
        serial: 0xdeadbeef,
        tags: { TITLE: 'Standup — café', ENCODER: 'VoxLink test' },
      });
      for (const packet of packets) writer.write(packet);
      writer.end();

      expect(writer.granule).toBe(RATE * 3);
      expect(writer.packetsWritten).toBe(150);
      expect(writer.pagesWritten).toBe(pages.length);
      const split = splitPages(bytes());
      expectStreamStructure(split);
      expect(split[0].serial).toBe(0xdeadbeef);

      const file = readOggOpus(bytes());
      expect(file.head).toEqual({ channels, preSkip: 312, inputSampleRate: 16000, outputGain: -256, mappingFamily: 0 });
      expect(file.tags).toEqual({ vendor: 'VoxLink', comments: ['TITLE=Standup — café', 'ENCODER=VoxLink test'] });
      expect(file.packets).toEqual(packets);
      expect(file.granule).toBe(RATE * 3);
      expect(file.pages).toBe(pages.length);
      expect(file.ended).toBe(true);
      expect(file.truncated).toBe(false);

      const output = decode(file.packets, channels);
      expect(output.length).toBe(input.length);
      const left = channelOf(input, channels, 0);
      const outLeft = channelOf(output, channels, 0);
      expect(dominantFrequency(outLeft, RATE)).toBeCloseTo(440, -1);
      expect(snrDb(left, outLeft, bestDelay(left, outLeft, 0, lookahead + 8), RATE / 10)).toBeGreaterThan(minSnr);
      if (channels === 2) expect(dominantFrequency(channelOf(output, 2, 1), RATE)).toBeCloseTo(660, -1);
    });
  }

  it('the CRC is Ogg\'s (CRC-32, polynomial 0x04c11db7, init 0, unreflected): check value of "123456789"', () => {
    // The test's own CRC is what validates the writer's pages, so pin it to the known check value.
    expect(bitwiseCrc(new TextEncoder().encode('123456789'))).toBe(0x89a1897f);
  });
});

describe('Ogg Opus files checked by opus-tools (opusinfo, opusdec)', () => {
  for (const channels of [1, 2] as const) {
    it(`${channels === 1 ? 'mono' : 'stereo'}: opusinfo reports no problem and opusdec decodes the tone at the right length`, () => {
      const { packets, input } = encodeTone(3, { channels, bitrate: channels * 32000 });
      const { writer, bytes } = record({ channels, preSkip: 312, tags: { TITLE: 'tone' } });
      for (const packet of packets) writer.write(packet);
      writer.end();

      const report = opusinfo(bytes(), `tone-${channels}`);
      expect(report).toMatch(/Pre-skip: 312/);
      expect(report).toMatch(new RegExp(`Channels: ${channels}`));
      expect(report).toMatch(/TITLE=tone/);
      expect(report).toMatch(/Playback length: 0m:02\.993s/); // (144000 - 312) / 48000

      const pcm = opusdec(bytes(), `tone-${channels}`);
      // opusdec drops the pre-skip and stops at the last granule position (RFC 7845 §4.2, §4.4).
      expect(pcm.length).toBe((RATE * 3 - 312) * channels);
      const left = channelOf(input, channels, 0);
      const out = channelOf(pcm, channels, 0);
      expect(dominantFrequency(out, RATE)).toBeCloseTo(440, -1);
      // Pre-skip 312 = the encoder's lookahead, so output lines up with input within a few samples.
      const delay = bestDelay(left, out, -8, 8);
      expect(snrDb(left, out, delay, RATE / 10)).toBeGreaterThan(12);
      if (channels === 2) expect(dominantFrequency(channelOf(pcm, 2, 1), RATE)).toBeCloseTo(660, -1);
    });
  }

  it('with the default pre-skip 0 opusinfo only objects to the pre-skip ("implausibly low")', () => {
    const { packets } = encodeTone(1);
    const { writer, bytes } = record({ channels: 1 });
    for (const packet of packets) writer.write(packet);
    writer.end();
    requireTool('opusinfo');
    const file = join(tmp, 'preskip0.opus');
    writeFileSync(file, bytes());
    const run = spawnSync('opusinfo', [file], { encoding: 'utf8' });
    const problems = `${run.stdout}${run.stderr}`.split('\n').filter((line) => /warning|error/i.test(line));
    expect(problems).toEqual(['WARNING: Implausibly low preskip in Opus stream (1)']);
    expect(opusdec(bytes(), 'preskip0').length).toBe(RATE);
  });
});

describe('Ogg pages', () => {
  it('1 s pages: 3 s of audio is 3 audio pages at 1, 2, 3 s, then an empty end-of-stream page', () => {
    const { packets } = encodeTone(3);
    const { writer, pages, bytes } = record({ channels: 1, preSkip: 312, maxPageSamples: RATE });
    for (let i = 0; i < packets.length; i++) {
      writer.write(packets[i]);
      // A page leaves as soon as it holds 1 s: the recorder loses at most that on a crash.
      expect(pages.length).toBe(2 + Math.floor(((i + 1) * 960) / RATE));
    }
    writer.end();
    const split = splitPages(bytes());
    expectStreamStructure(split);
    expect(split.slice(2).map((p) => p.granule)).toEqual([48000n, 96000n, 144000n, -1n]);
    expect(split.slice(2).map((p) => p.lacing.length)).toEqual([50, 50, 50, 0]);
    expect(readOggOpus(bytes()).granule).toBe(144000);
    opusinfo(bytes(), 'pages-1s');
  });

  it('flush() emits the pending page at once; end() puts the end-of-stream flag on a pending page', () => {
    const { packets } = encodeTone(1);
    const { writer, pages, bytes } = record({ channels: 1 });
    for (const packet of packets.slice(0, 10)) writer.write(packet);
    expect(pages).toHaveLength(2);
    writer.flush();
    expect(pages).toHaveLength(3);
    writer.flush(); // nothing pending: no empty page
    expect(pages).toHaveLength(3);
    for (const packet of packets.slice(10, 15)) writer.write(packet);
    writer.end();
    expect(pages).toHaveLength(4);
    const split = splitPages(bytes());
    expectStreamStructure(split);
    expect(split.slice(2).map((p) => [p.granule, p.lacing.length, p.flags])).toEqual([
      [9600n, 10, 0],
      [14400n, 5, 0x04],
    ]);
    expect(readOggOpus(bytes()).packets).toEqual(packets.slice(0, 15));
  });

  it('510 kb/s CELT packets overflow 255 segments: a packet continues on the next page and is reassembled', () => {
    // Stereo, because libopus caps mono at 300 kb/s; CBR, so every packet is the 1275-byte maximum.
    const { packets, input, lookahead } = encodeTone(1, { channels: 2, bitrate: 510000, application: OpusApplication.AUDIO, vbr: false });
    expect(packets.every((p) => p.length === 1275)).toBe(true); // 6 lacing values each (5 × 255 + 0)
    const { writer, bytes } = record({ channels: 2, preSkip: 312 });
    for (const packet of packets) writer.write(packet);
    writer.end();

    const split = splitPages(bytes());
    expectStreamStructure(split);
    const audio = split.slice(2);
    // 42 packets use 252 segments; the 43rd puts 3 × 255 bytes on the page and continues.
    expect(audio[0].lacing).toHaveLength(255);
    expect(audio[0].lacing.slice(-3)).toEqual([255, 255, 255]);
    expect(audio[0].granule).toBe(42n * 960n);
    expect(audio[1].flags & 0x01).toBe(0x01);
    expect(audio[1].lacing.slice(0, 3)).toEqual([255, 255, 0]);

    const file = readOggOpus(bytes());
    expect(file.packets).toEqual(packets);
    expect(file.granule).toBe(RATE);
    const out = decode(file.packets, 2);
    const [left, outLeft] = [channelOf(input, 2, 0), channelOf(out, 2, 0)];
    expect(dominantFrequency(outLeft, RATE)).toBeCloseTo(440, -1);
    expect(dominantFrequency(channelOf(out, 2, 1), RATE)).toBeCloseTo(660, -1);
    expect(snrDb(left, outLeft, bestDelay(left, outLeft, 0, lookahead + 8), RATE / 10)).toBeGreaterThan(25);
    opusinfo(bytes(), 'celt-510k');
    expect(opusdec(bytes(), 'celt-510k').length).toBe((RATE - 312) * 2);
  });

  it('a padded 140 kB packet spans three pages; the middle one has granule -1; decoders play it', () => {
    const { packets, input } = encodeTone(1, { bitrate: 64000, application: OpusApplication.AUDIO });
    // 245 segments free on the first page, 255 on the next, the rest (~49) on the third.
    const big = padded(packets[10], 140000);
    expect(opusPacketSamples(big)).toBe(960);
    expect(getOpusPacketInfo(big).samples).toBe(960);
    const withBig = packets.map((p, i) => (i === 10 ? big : p));
    const { writer, bytes } = record({ channels: 1, preSkip: 312 });
    for (const packet of withBig) writer.write(packet);
    writer.end();

    const split = splitPages(bytes());
    expectStreamStructure(split);
    const spanned = split.filter((p) => p.granule === -1n && p.lacing.length > 0);
    expect(spanned).toHaveLength(1);
    expect(spanned[0].flags & 0x01).toBe(0x01);
    expect(spanned[0].lacing.every((lace) => lace === 255)).toBe(true);

    const file = readOggOpus(bytes());
    expectSamePackets(file.packets, withBig);
    // Padding changes nothing a decoder outputs.
    const [fromFile, original] = [decode(file.packets), decode(packets)];
    expect(Buffer.compare(new Uint8Array(fromFile.buffer), new Uint8Array(original.buffer))).toBe(0);
    opusinfo(bytes(), 'padded');
    const pcm = opusdec(bytes(), 'padded');
    expect(pcm.length).toBe(RATE - 312);
    expect(snrDb(input, pcm, bestDelay(input, pcm, -8, 8), RATE / 10)).toBeGreaterThan(12);
  });
});

describe('OggOpusWriter.gap()', () => {
  it('1 s of gap between two tone bursts: the timeline holds, the gap is quiet, the tone resumes on time', () => {
    const encoder = new OpusEncoder({ sampleRate: RATE, channels: 1, bitrate: 32000 });
    // 440 Hz fits 440 whole periods in 1 s, so the second burst continues the first one's phase.
    const tone = toneFloat32(440, RATE, RATE);
    const first = encodeAll(encoder, tone);
    const second = encodeAll(encoder, tone);
    const lookahead = encoder.lookahead;
    encoder.close();

    const { writer, bytes } = record({ channels: 1, preSkip: 312 });
    for (const packet of first) writer.write(packet);
    expect(writer.gap(RATE)).toBe(RATE);
    for (const packet of second) writer.write(packet);
    writer.end();
    expect(writer.granule).toBe(3 * RATE);
    expect(writer.packetsWritten).toBe(150);

    const file = readOggOpus(bytes());
    expect(file.granule).toBe(3 * RATE);
    const fillers = file.packets.slice(50, 100);
    expect(fillers.every((p) => p.length === 1 && p[0] === (first[49][0] & 0xfc))).toBe(true);

    const out = decode(file.packets);
    expect(out.length).toBe(3 * RATE);
    const tonePower = meanPower(tone);
    // The decoder conceals the first lost frames, then libopus's SILK comfort noise (silk_CNG, as
    // for DTX) holds a floor: measured 23 dB below the tone over the gap after its first 200 ms.
    // The tone comes back at 2 s + 240 samples (measured), within a frame of where it belongs.
    expect(meanPower(out, RATE + 9600, 2 * RATE)).toBeLessThan(tonePower / 100);
    expect(powerAt(out.subarray(RATE + 9600, 2 * RATE), RATE, 440)).toBeLessThan(tonePower / 1000);
    const resumed = onset(out, RATE + 9600, Math.sqrt(tonePower) / 2);
    expect(Math.abs(resumed - 2 * RATE)).toBeLessThanOrEqual(960);
    const last = out.subarray(2 * RATE);
    expect(dominantFrequency(last, RATE)).toBeCloseTo(440, -1);
    expect(snrDb(tone, last, bestDelay(tone, last, 0, lookahead + 8), RATE / 10)).toBeGreaterThan(12);

    opusinfo(bytes(), 'gap');
    const pcm = opusdec(bytes(), 'gap');
    expect(pcm.length).toBe(3 * RATE - 312);
    expect(meanPower(pcm, RATE + 9600, 2 * RATE - 960)).toBeLessThan(tonePower / 100);
  });

  it('rounds down to whole frames of the last packet, 20 ms before any packet, and caps one call', () => {
    const { writer, bytes } = record({ channels: 2 });
    expect(writer.gap(1000)).toBe(960);
    expect(writer.gap(959)).toBe(0);
    // A 10 ms CELT fullband stereo packet (config 30, code 0): fillers become 10 ms frames.
    writer.write(Uint8Array.of((30 << 3) | 0x04, 0xaa, 0x55));
    expect(writer.gap(1000)).toBe(960);
    expect(writer.granule).toBe(960 + 480 + 960);
    expect(writer.gap(Number.MAX_SAFE_INTEGER)).toBe(OGG_OPUS_MAX_GAP_SAMPLES);
    expect(writer.granule).toBe(2400 + OGG_OPUS_MAX_GAP_SAMPLES);
    expectCode(() => writer.gap(-1), 'CODEC_BAD_ARGUMENT');
    expectCode(() => writer.gap(Number.NaN), 'CODEC_BAD_ARGUMENT');
    expectCode(() => writer.gap(Infinity), 'CODEC_BAD_ARGUMENT');
    writer.end();
    const file = readOggOpus(bytes());
    expect(file.granule).toBe(2400 + OGG_OPUS_MAX_GAP_SAMPLES);
    expect(Array.from(file.packets[0])).toEqual([(31 << 3) | 0x04]); // 20 ms CELT, stereo flag
    expect(Array.from(file.packets[2])).toEqual([(30 << 3) | 0x04]);
    expect(file.packets).toHaveLength(1 + 1 + 2 + OGG_OPUS_MAX_GAP_SAMPLES / 480);
  });
});

describe('crash safety', () => {
  const { packets } = encodeTone(3);

  /** A 3 s file with 1 s pages, and the byte offsets of its pages. */
  function fullFile(): { bytes: Uint8Array; pages: Page[] } {
    const { writer, bytes } = record({ channels: 1 });
    for (const packet of packets) writer.write(packet);
    writer.end();
    return { bytes: bytes(), pages: splitPages(bytes()) };
  }

  it('what was flushed reads back without end(): every flushed packet, not ended, not truncated', () => {
    const { writer, pages } = record({ channels: 1 });
    for (const packet of packets.slice(0, 80)) writer.write(packet);
    writer.flush();
    const onDisk = concat(pages);
    for (const packet of packets.slice(80, 110)) writer.write(packet); // pending when the process dies
    const file = readOggOpus(onDisk);
    expect(file.ended).toBe(false);
    expect(file.truncated).toBe(false);
    expect(file.packets).toEqual(packets.slice(0, 80));
    expect(file.granule).toBe(80 * 960);
  });

  it('a file cut inside a page keeps its complete pages and says truncated', () => {
    const { bytes, pages } = fullFile();
    for (const cut of [pages[3].offset + 100, pages[3].offset + 10, pages[3].offset + 2]) {
      const file = readOggOpus(bytes.subarray(0, cut));
      expect(file.truncated).toBe(true);
      expect(file.ended).toBe(false);
      expect(file.pages).toBe(3);
      expect(file.packets).toEqual(packets.slice(0, 50));
      expect(file.granule).toBe(RATE);
    }
  });

  it('a file cut between the pages of a continued packet drops that packet and says truncated', () => {
    const big = encodeTone(1, { channels: 2, bitrate: 510000, application: OpusApplication.AUDIO, vbr: false }).packets;
    const { writer, bytes } = record({ channels: 2 });
    for (const packet of big) writer.write(packet);
    writer.end();
    const pages = splitPages(bytes());
    const file = readOggOpus(bytes().subarray(0, pages[3].offset));
    expect(file.truncated).toBe(true);
    expect(file.packets).toEqual(big.slice(0, 42));
  });

  it('one corrupt byte is a CRC error naming the page and its byte offset', () => {
    const { bytes, pages } = fullFile();
    const corrupt = bytes.slice();
    corrupt[pages[3].offset + 200] ^= 0x10;
    expectCode(() => readOggOpus(corrupt), 'CODEC_BAD_ARGUMENT', new RegExp(`page 3 at byte ${pages[3].offset}: CRC mismatch`));
  });

  it('a missing page is a sequence error; garbage between pages is an error', () => {
    const { bytes, pages } = fullFile();
    const dropped = concat([bytes.subarray(0, pages[3].offset), bytes.subarray(pages[4].offset)]);
    expectCode(() => readOggOpus(dropped), 'CODEC_BAD_ARGUMENT', /page sequence number 4, expected 3/);
    const garbage = concat([bytes.subarray(0, pages[3].offset), Uint8Array.of(1, 2, 3, 4, 5), bytes.subarray(pages[3].offset)]);
    expectCode(() => readOggOpus(garbage), 'CODEC_BAD_ARGUMENT', new RegExp(`at byte ${pages[3].offset}: no "OggS"`));
  });

  it('a file cut inside its headers is not an Ogg Opus stream', () => {
    const { bytes, pages } = fullFile();
    expectCode(() => readOggOpus(bytes.subarray(0, pages[1].offset + 5)), 'CODEC_BAD_ARGUMENT', /before the OpusTags header/);
    expectCode(() => readOggOpus(new Uint8Array(0)), 'CODEC_BAD_ARGUMENT', /no data/);
  });
});

describe('bad input', () => {
  const CELT_20MS = 31 << 3; // TOC config 31: CELT fullband 20 ms, mono

  it('malformed packets are rejected with CODEC_BAD_ARGUMENT, nothing is written, and the writer goes on', () => {
    const { packets } = encodeTone(0.2);
    const { writer, pages, bytes } = record({ channels: 1 });
    writer.write(packets[0]);
    writer.flush();
    const bad: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /empty packet.*R1/],
      [Uint8Array.of(CELT_20MS | 3), /without a frame count.*R5/],
      [Uint8Array.of(CELT_20MS | 3, 0), /frame count of 0.*R5/],
      [Uint8Array.of(CELT_20MS | 3, 7), /7 frames of 20 ms is over 120 ms.*R5/],
      [Uint8Array.of((3 << 3) | 3, 3), /3 frames of 60 ms is over 120 ms/], // SILK 60 ms × 3
      [Uint8Array.of(CELT_20MS | 1, 0xaa), /odd.*R3/],
      [Uint8Array.of(CELT_20MS | 2, 10, 1, 2), /first frame of 10 bytes.*R4/],
      [Uint8Array.of(CELT_20MS | 3, 0x40 | 1, 200, 1), /padding.*longer than the packet/],
      [Uint8Array.of(CELT_20MS | 3, 2, 1, 2, 3), /do not split into 2 equal frames.*R6/],
      [Uint8Array.of(CELT_20MS | 3, 0x80 | 3, 5, 1, 1), /frame lengths exceed the packet.*R7/],
      [new Uint8Array(1277).fill(CELT_20MS, 0, 1), /frame of 1276 bytes.*R2/],
    ];
    for (const [packet, message] of bad) {
      expectCode(() => writer.write(packet), 'CODEC_BAD_ARGUMENT', message);
      expect(writer.packetsWritten).toBe(1);
      expect(writer.granule).toBe(960);
    }
    writer.flush();
    expect(pages).toHaveLength(3); // nothing was pending, so no page
    for (const packet of packets.slice(1)) writer.write(packet);
    writer.end();
    const file = readOggOpus(bytes());
    expect(file.packets).toEqual(packets);
    expect(file.granule).toBe(packets.length * 960);
  });

  it('packet durations match libopus (opus_packet_get_nb_samples) for every TOC configuration and code', () => {
    for (let config = 0; config < 32; config++) {
      const toc = config << 3;
      const frame = getOpusPacketInfo(Uint8Array.of(toc, 1)).samples;
      const shapes = [
        Uint8Array.of(toc, 1, 2, 3),
        Uint8Array.of(toc | 1, 1, 2),
        Uint8Array.of(toc | 2, 1, 7, 8, 9),
        Uint8Array.of(toc | 2, 252, 0, ...new Array<number>(252).fill(1)),
        Uint8Array.of(toc | 3, 1, 5),
        Uint8Array.of(toc | 3, 0x80 | Math.floor(5760 / frame), ...new Array<number>(Math.floor(5760 / frame)).fill(0)),
        Uint8Array.of(toc | 3, 0x40 | 2, 3, 1, 1, 0, 0, 0),
      ];
      for (const packet of shapes) {
        expect(opusPacketSamples(packet), `TOC 0x${packet[0].toString(16)}`).toBe(getOpusPacketInfo(packet).samples);
      }
    }
    // The TOC-only packet gap() writes is valid: one frame, no data.
    expect(opusPacketSamples(Uint8Array.of(CELT_20MS))).toBe(960);
  });

  it('after end(): write, gap and flush throw CODEC_CLOSED; end() again emits nothing', () => {
    const { writer, pages } = record({ channels: 1 });
    writer.end();
    const count = pages.length;
    expectCode(() => writer.write(Uint8Array.of(CELT_20MS)), 'CODEC_CLOSED');
    expectCode(() => writer.gap(960), 'CODEC_CLOSED');
    expectCode(() => writer.flush(), 'CODEC_CLOSED');
    writer.end();
    expect(pages).toHaveLength(count);
    const file = readOggOpus(concat(pages));
    expect(file.ended).toBe(true);
    expect(file.packets).toHaveLength(0);
  });

  it('bad options throw CODEC_BAD_ARGUMENT before any page is emitted', () => {
    const options: Partial<OggOpusWriterOptions>[] = [
      { channels: 3 as 1 },
      { channels: 1, preSkip: 65536 },
      { channels: 1, preSkip: -1 },
      { channels: 1, preSkip: 1.5 },
      { channels: 1, outputGain: 40000 },
      { channels: 1, inputSampleRate: -1 },
      { channels: 1, serial: 2 ** 32 },
      { channels: 1, maxPageSamples: 0 },
      { channels: 1, maxPageSamples: 48000 * 5 },
      { channels: 1, tags: { 'A=B': 'x' } },
      { channels: 1, tags: { '': 'x' } },
      { channels: 1, tags: { 'CAFÉ': 'x' } },
    ];
    for (const option of options) {
      let called = false;
      expectCode(() => new OggOpusWriter(() => (called = true), option as OggOpusWriterOptions), 'CODEC_BAD_ARGUMENT');
      expect(called).toBe(false);
    }
  });
});
