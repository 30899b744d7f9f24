// Encoder sweep for a build of opus.wasm whose silk/NSQ_del_dec.c was compiled with
// -DOPUS_CHECK_ASM: every call of the wasm SIMD noise-shaping quantiser (patch 0003) then also
// runs silk_NSQ_del_dec_c() on a copy of its state and aborts (-> proc_exit -> a thrown error
// here) unless states, indices and pulses are identical. This drives it through random
// encoder configurations (8-48 kHz, mono/stereo, complexity 0-10, 6-64 kb/s, FEC, loss, SILK
// forced or not, 10-60 ms frames, CBR/VBR) on several kinds of signal. Run by
// `./emsdk-build.sh --conformance`.
//
//   node wasm/tools/nsq-check.mjs build.wasm [configurations=300]
import { loadOpus } from './time-codec.mjs';

const path = process.argv[2];
const N = Number(process.argv[3] ?? 300);
if (!path) {
  console.error('usage: node wasm/tools/nsq-check.mjs build.wasm [configurations]');
  process.exit(2);
}

let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const pick = (a) => a[Math.floor(rnd() * a.length)];

// Speech-like: voiced stretches (a glottal-ish pulse train through two formant resonators, pitch
// gliding 90-260 Hz), unvoiced noise, and pauses, 150-400 ms each.
function speechLike(fs, n) {
  const out = new Float32Array(n);
  let i = 0;
  const resonator = (f, bw) => {
    const r = Math.exp((-Math.PI * bw) / fs);
    return { a1: 2 * r * Math.cos((2 * Math.PI * f) / fs), a2: -r * r, y1: 0, y2: 0 };
  };
  while (i < n) {
    const len = Math.min(n - i, Math.floor(fs * (0.15 + 0.25 * rnd())));
    const kind = rnd();
    const gain = 0.05 + 0.6 * rnd();
    const f1 = resonator(300 + 600 * rnd(), 80);
    const f2 = resonator(900 + 1500 * rnd(), 120);
    const f0a = 90 + 170 * rnd();
    const f0b = 90 + 170 * rnd();
    let phase = 0;
    for (let k = 0; k < len; k++, i++) {
      let x = 0;
      if (kind < 0.6) {
        phase += (f0a + ((f0b - f0a) * k) / len) / fs;
        if (phase >= 1) {
          phase -= 1;
          x = 1;
        }
      } else if (kind < 0.85) {
        x = (rnd() - 0.5) * 0.3;
      }
      for (const r of [f1, f2]) {
        const y = x + r.a1 * r.y1 + r.a2 * r.y2;
        r.y2 = r.y1;
        r.y1 = y;
        x = y;
      }
      out[i] = Math.max(-1, Math.min(1, gain * x * 0.05));
    }
  }
  return out;
}

function signal(kind, fs, n) {
  if (kind === 'speech' || kind === 'loud') {
    const s = speechLike(fs, n);
    if (kind === 'loud') for (let i = 0; i < n; i++) s[i] = Math.max(-1, Math.min(1, 8 * s[i]));
    return s;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / fs;
    if (kind === 'noise') out[i] = (rnd() - 0.5) * 1.6;
    else if (kind === 'tone') out[i] = 0.7 * Math.sin(2 * Math.PI * 300 * t) * (1 + 0.3 * Math.sin(2 * Math.PI * 3 * t));
    else out[i] = (Math.floor(t * 4) % 2 ? 0.95 : 0.001) * (rnd() - 0.5) * 2; // bursts
  }
  return out;
}

const x = await loadOpus(path);
const errPtr = x.malloc(4);
const pcmPtr = x.malloc(2880 * 2 * 4);
const pktPtr = x.malloc(4000);
let frames = 0;
for (let c = 0; c < N; c++) {
  const cfg = {
    fs: pick([8000, 12000, 16000, 24000, 48000]),
    channels: pick([1, 1, 2]),
    application: pick([2048, 2048, 2049]),
    complexity: Math.floor(rnd() * 11),
    bitrate: pick([6000, 8000, 12000, 16000, 20000, 24000, 32000, 40000, 64000]),
    fec: rnd() < 0.5 ? 1 : 0,
    loss: pick([0, 5, 20, 40]),
    silkOnly: rnd() < 0.4,
    frameMs: pick([10, 20, 20, 40, 60]),
    kind: pick(['speech', 'speech', 'loud', 'noise', 'tone', 'bursts']),
    vbr: rnd() < 0.8 ? 1 : 0,
  };
  const enc = x.opus_encoder_create(cfg.fs, cfg.channels, cfg.application, errPtr);
  if (!enc) throw new Error(`opus_encoder_create failed for ${JSON.stringify(cfg)}`);
  const set = (req, v) => {
    if (x.vx_encoder_ctl_set(enc, req, v) !== 0) throw new Error(`ctl ${req}=${v} failed`);
  };
  set(4002, cfg.bitrate); // OPUS_SET_BITRATE
  set(4010, cfg.complexity); // OPUS_SET_COMPLEXITY
  set(4012, cfg.fec); // OPUS_SET_INBAND_FEC
  set(4014, cfg.loss); // OPUS_SET_PACKET_LOSS_PERC
  set(4006, cfg.vbr); // OPUS_SET_VBR
  if (cfg.silkOnly) set(11002, 1000); // OPUS_SET_FORCE_MODE(MODE_SILK_ONLY)
  const frameSize = (cfg.fs * cfg.frameMs) / 1000;
  const n = cfg.fs * 3;
  const sig = signal(cfg.kind, cfg.fs, n);
  try {
    for (let i = 0; i + frameSize <= n; i += frameSize) {
      const pcm = new Float32Array(x.memory.buffer, pcmPtr, frameSize * cfg.channels);
      for (let k = 0; k < frameSize; k++) {
        for (let ch = 0; ch < cfg.channels; ch++) pcm[k * cfg.channels + ch] = sig[i + k] * (ch ? 0.7 : 1);
      }
      const r = x.opus_encode_float(enc, pcmPtr, frameSize, pktPtr, 4000);
      if (r < 0) throw new Error(`opus_encode_float returned ${r}`);
      frames++;
    }
  } catch (e) {
    console.error(`NSQ check failed in ${JSON.stringify(cfg)}: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
  x.opus_encoder_destroy(enc);
}
console.log(`nsq-check: ${N} encoder configurations, ${frames} frames: silk_NSQ_del_dec (wasm SIMD) equal to silk_NSQ_del_dec_c on every call`);
