// Bit-exactness of two builds of opus.wasm: for random configurations (8-48 kHz, mono/stereo,
// VOIP/AUDIO, complexity 0-10, 6-128 kb/s, FEC, SILK/CELT/hybrid, 10-60 ms frames) it encodes the
// same signal with both builds and compares the packets, then decodes build A's packets with
// both builds (every 7th packet lost and recovered the way a receiver with one packet of
// lookahead does: from the next packet's in-band FEC, which libopus turns into PLC when that
// packet carries none) and compares the PCM. Any PCM difference fails. Packet differences are
// reported; with --strict-packets they fail too (use it for changes meant to be exact, like
// patches 0005 and 0006; a change of float summation order such as 0004 may alter packets).
//
//   node wasm/tools/compare-builds.mjs a.wasm b.wasm [configurations=200] [--strict-packets]
import { createHash } from 'node:crypto';
import { loadOpus } from './time-codec.mjs';

const args = process.argv.slice(2);
const strictPackets = args.includes('--strict-packets');
const [pathA, pathB, nArg] = args.filter((a) => !a.startsWith('--'));
if (!pathA || !pathB) {
  console.error('usage: node wasm/tools/compare-builds.mjs a.wasm b.wasm [configurations] [--strict-packets]');
  process.exit(2);
}
const N = Number(nArg ?? 200);
let seed = 777;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const pick = (a) => a[Math.floor(rnd() * a.length)];

function signal(fs, n, kind) {
  const out = new Float32Array(n);
  let y1 = 0;
  let y2 = 0;
  let phase = 0;
  for (let i = 0; i < n; i++) {
    const t = i / fs;
    if (kind === 'voiced') {
      // a pulse train through a resonator, pitch gliding, syllable-rate envelope
      phase += (110 + 60 * Math.sin(2 * Math.PI * 0.7 * t)) / fs;
      const x = phase >= 1 ? ((phase -= 1), 1) : 0;
      const y = x + 1.8 * Math.cos((2 * Math.PI * 700) / fs) * 0.97 * y1 - 0.94 * y2;
      y2 = y1;
      y1 = y;
      out[i] = 0.04 * y * (0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t)) ** 2;
    } else if (kind === 'noise') out[i] = (rnd() - 0.5) * 0.8;
    else out[i] = 0.5 * Math.sin(2 * Math.PI * 440 * t) + 0.2 * Math.sin(2 * Math.PI * 3300 * t);
  }
  return out;
}

const A = await loadOpus(pathA);
const B = await loadOpus(pathB);
let packetDiffs = 0;
let frames = 0;
for (let c = 0; c < N; c++) {
  const cfg = {
    fs: pick([8000, 12000, 16000, 24000, 48000]),
    channels: pick([1, 2]),
    application: pick([2048, 2049]),
    complexity: Math.floor(rnd() * 11),
    bitrate: pick([6000, 10000, 16000, 24000, 32000, 48000, 64000, 128000]),
    fec: rnd() < 0.5 ? 1 : 0,
    forceMode: pick([0, 0, 1000, 1001, 1002]),
    frameMs: pick([10, 20, 20, 40, 60]),
    kind: pick(['voiced', 'voiced', 'noise', 'tones']),
  };
  const frameSize = (cfg.fs * cfg.frameMs) / 1000;
  const sig = signal(cfg.fs, cfg.fs * 2, cfg.kind);
  const run = (x, packetsIn) => {
    const err = x.malloc(4);
    const pcm = x.malloc(frameSize * cfg.channels * 4);
    const pkt = x.malloc(4000);
    const out = x.malloc(5760 * cfg.channels * 2);
    const enc = x.opus_encoder_create(cfg.fs, cfg.channels, cfg.application, err);
    const dec = x.opus_decoder_create(cfg.fs, cfg.channels, err);
    if (!enc || !dec) throw new Error(`encoder/decoder create failed in ${JSON.stringify(cfg)}`);
    const settings = [[4002, cfg.bitrate], [4010, cfg.complexity], [4012, cfg.fec], [4014, cfg.fec ? 15 : 0]];
    if (cfg.forceMode) settings.push([11002, cfg.forceMode]); // OPUS_SET_FORCE_MODE
    for (const [req, v] of settings) {
      if (x.vx_encoder_ctl_set(enc, req, v) !== 0) throw new Error(`ctl ${req}=${v} failed`);
    }
    const packets = [];
    for (let i = 0; i + frameSize <= sig.length; i += frameSize) {
      const v = new Float32Array(x.memory.buffer, pcm, frameSize * cfg.channels);
      for (let k = 0; k < frameSize; k++) for (let ch = 0; ch < cfg.channels; ch++) v[k * cfg.channels + ch] = sig[i + k] * (ch ? 0.6 : 1);
      const n = x.opus_encode_float(enc, pcm, frameSize, pkt, 4000);
      if (n < 0) throw new Error(`encode ${n} in ${JSON.stringify(cfg)}`);
      packets.push(new Uint8Array(x.memory.buffer, pkt, n).slice());
    }
    const hash = createHash('sha256');
    const toDecode = packetsIn ?? packets;
    toDecode.forEach((p, f) => {
      let r;
      if (f % 7 === 6) {
        // lost: rebuilt from the next packet's FEC (PLC if it has none, or if there is no next)
        const next = toDecode[f + 1];
        if (next) {
          new Uint8Array(x.memory.buffer, pkt, next.length).set(next);
          r = x.opus_decode(dec, pkt, next.length, out, frameSize, 1);
        } else r = x.opus_decode(dec, 0, 0, out, frameSize, 0);
      } else {
        new Uint8Array(x.memory.buffer, pkt, p.length).set(p);
        r = x.opus_decode(dec, pkt, p.length, out, 5760, 0);
      }
      if (r < 0) throw new Error(`decode ${r} in ${JSON.stringify(cfg)}`);
      hash.update(new Uint8Array(x.memory.buffer, out, r * cfg.channels * 2));
    });
    x.opus_encoder_destroy(enc);
    x.opus_decoder_destroy(dec);
    for (const p of [err, pcm, pkt, out]) x.free(p);
    return { packets, pcm: hash.digest('hex') };
  };
  const a = run(A);
  const b = run(B, a.packets);
  frames += a.packets.length;
  const samePackets = a.packets.length === b.packets.length && a.packets.every((p, i) => Buffer.compare(p, b.packets[i]) === 0);
  if (!samePackets) {
    packetDiffs++;
    if (strictPackets) {
      console.error(`encoders differ in ${JSON.stringify(cfg)}`);
      process.exit(1);
    }
  }
  if (a.pcm !== b.pcm) {
    console.error(`decoders differ in ${JSON.stringify(cfg)}`);
    process.exit(1);
  }
}
console.log(
  `compare-builds: ${N} configurations, ${frames} frames: decoded PCM identical; encoder packets identical in ${N - packetDiffs} of ${N}`,
);
