import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';
import {
  OpusDecoder,
  OpusEncoder,
  getOpusModule,
  getOpusRuntime,
  loadOpus,
  warmUpOpus,
} from '../../src/codec/index.ts';
import { dominantFrequency, toneFloat32 } from './signal.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

describe('Opus lifecycle', () => {
  it('thousands of encoders and decoders created and closed leave wasm memory flat', async () => {
    const rt = await loadOpus();
    const cycle = (): void => {
      for (let batch = 0; batch < 10; batch++) {
        const live: (OpusEncoder | OpusDecoder)[] = [];
        for (let i = 0; i < 50; i++) {
          const encoder = new OpusEncoder({ sampleRate: 48000, channels: 2, dredDuration: i % 2 ? 20 : 0 });
          const decoder = new OpusDecoder({ sampleRate: 48000, channels: 2 });
          decoder.decode(encoder.encode(new Float32Array(1920)));
          if (i % 5 === 0) decoder.parseDred(encoder.encode(new Float32Array(1920)));
          live.push(encoder, decoder);
        }
        for (const codec of live) codec.close();
      }
    };
    cycle();
    const size = rt.memory.buffer.byteLength;
    // Where a fresh block lands: a leak pushes later allocations ever higher.
    const probe = (): number => {
      const ptr = rt.malloc(64 * 1024);
      rt.free(ptr);
      return ptr;
    };
    const firstProbe = probe();
    for (let round = 0; round < 3; round++) cycle(); // 1500 more of each
    expect(rt.memory.buffer.byteLength).toBe(size);
    expect(probe()).toBeLessThanOrEqual(firstProbe);
  });

  it('views follow wasm memory growth', () => {
    const rt = getOpusRuntime();
    const encoder = new OpusEncoder({ sampleRate: 48000, bitrate: 64000 });
    const decoder = new OpusDecoder({ sampleRate: 48000 });
    const before = encoder.pcmIn;
    const size = rt.memory.buffer.byteLength;
    const big = rt.malloc(size); // forces memory.grow, detaching every old view
    expect(rt.memory.buffer.byteLength).toBeGreaterThan(size);
    expect(before.length).toBe(0);
    const tone = toneFloat32(1200, 48000, 960 * 30);
    const out = new Float32Array(tone.length);
    for (let i = 0; i < 30; i++) {
      // The zero-copy path: fill the encoder's input view, hand the packet view to the decoder's input view.
      encoder.pcmIn.set(tone.subarray(i * 960, (i + 1) * 960));
      const packet = encoder.encodeFrame();
      decoder.packetIn.set(packet);
      out.set(decoder.decodeFrame(packet.length), i * 960);
    }
    expect(dominantFrequency(out, 48000)).toBeCloseTo(1200, -1);
    rt.free(big);
    encoder.close();
    decoder.close();
  });

  it('a worker instantiates the module compiled by the main thread', async () => {
    const module = getOpusModule();
    const worker = new Worker(join(here, 'fixtures', 'ts-entry.mjs'), {
      workerData: { entry: pathToFileURL(join(here, 'fixtures', 'opus-worker.ts')).href, module, freq: 880 },
    });
    const reply = await new Promise<{ packets: Uint8Array[]; sameModule: boolean }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(reply.sameModule).toBe(true);
    const decoder = new OpusDecoder({ sampleRate: 48000 });
    const out = new Float32Array(reply.packets.length * 960);
    reply.packets.forEach((packet, i) => out.set(decoder.decode(packet), i * 960));
    expect(dominantFrequency(out, 48000)).toBeCloseTo(880, -1);
    decoder.close();
  });

  it('forgotten encoders and decoders are freed by the FinalizationRegistry', () => {
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', join(here, 'fixtures', 'opus-forgotten.ts')],
      { cwd: root, encoding: 'utf8', timeout: 60_000 },
    );
    expect(child.status, child.stderr).toBe(0);
    const { finalized, sizes } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { finalized: number; sizes: number[] };
    expect(finalized).toBe(1200);
    expect(sizes[3]).toBe(sizes[1]);
  });

  it('loads dist/wasm/opus.wasm from an esbuild bundle in dist/src/', async () => {
    mkdirSync(join(root, '.cache'), { recursive: true });
    const tmp = mkdtempSync(join(root, '.cache', 'codec-dist-'));
    try {
      await build({
        entryPoints: [join(here, 'fixtures', 'opus-bundle-entry.ts')],
        outfile: join(tmp, 'dist', 'src', 'entry.js'),
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
        logLevel: 'silent',
      });
      mkdirSync(join(tmp, 'dist', 'wasm'));
      copyFileSync(join(root, 'wasm', 'opus.wasm'), join(tmp, 'dist', 'wasm', 'opus.wasm'));
      const env = { ...process.env };
      delete env.VOXLINK_OPUS_WASM;
      const child = spawnSync(process.execPath, [join(tmp, 'dist', 'src', 'entry.js')], { encoding: 'utf8', env, timeout: 30_000 });
      expect(child.status, child.stderr).toBe(0);
      const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as { path: string; samples: number };
      expect(result).toEqual({ path: join(tmp, 'dist', 'wasm', 'opus.wasm'), samples: 960 });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('the zero-copy hot path allocates nothing per frame', async () => {
    const encoder = new OpusEncoder({ sampleRate: 48000, bitrate: 32000, complexity: 0 });
    const decoder = new OpusDecoder({ sampleRate: 48000 });
    const source = toneFloat32(440, 48000, 960);
    const run = (frames: number): void => {
      for (let i = 0; i < frames; i++) {
        encoder.pcmIn.set(source);
        const packet = encoder.encodeFrame();
        decoder.packetIn.set(packet);
        decoder.decodeFrame(packet.length);
        decoder.decode(packet);
      }
    };
    run(2000); // fills the per-length view caches and lets V8 settle its optimised code
    let collections = 0;
    const observer = new PerformanceObserver((list) => {
      collections += list.getEntries().length;
    });
    observer.observe({ entryTypes: ['gc'] });
    // Young-generation bytes only: optimised code V8 installs meanwhile lands in code space.
    const young = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
    const before = young();
    run(2500);
    const grown = young() - before;
    await new Promise((resolve) => setTimeout(resolve, 50)); // let gc entries be delivered
    observer.disconnect();
    // Even 16 bytes per frame would be 40 KB here (or force a scavenge).
    expect(collections).toBe(0);
    expect(grown).toBeLessThan(20_000);
    encoder.close();
    decoder.close();
  });

  it('warmUpOpus runs once per thread', () => {
    const first = warmUpOpus({ frames: 200 });
    expect(first.frames).toBe(200);
    expect(warmUpOpus()).toBe(first);
  });
});
