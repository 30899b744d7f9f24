/**
 * The per-packet forwarding path in isolation, no sockets: what VoxLink's own code costs
 * (speaker detector + route lookup + SlotStream rewrite for K slots) next to what werift's
 * SRTP protect costs for the same K packets (header serialise + cipher per packet). GC counts
 * during each loop show who allocates. Runs in-process in a couple of seconds.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { RtpHeader, SrtpSession } from 'werift';
import { SlotRouter, type SlotBinding } from '../../src/media/slot-router.ts';
import { SlotStream } from '../../src/media/slot-stream.ts';
import { SpeakerDetector } from '../../src/media/speaker-detector.ts';

export interface HotPathResult {
  /** ns per inbound packet for detector + routing + K rewrites. */
  voxlinkNsPerPacket: number;
  voxlinkGcs: number;
  /** ns per inbound packet for K werift SRTP protects (AES-128-GCM and AES-CM-HMAC-SHA1-80). */
  weriftGcmNsPerPacket: number;
  weriftCmNsPerPacket: number;
  weriftGcs: number;
  slots: number;
}

let gcs = 0;
const observer = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});

async function time(iterations: number, fn: (i: number) => void): Promise<{ ns: number; gcs: number }> {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) fn(i); // warm up the JIT
  await settle();
  const gc0 = gcs;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  await settle(); // GC entries reach the observer asynchronously
  return { ns, gcs: gcs - gc0 };
}

function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 20));
}

export async function measureHotPath(quick: boolean): Promise<HotPathResult> {
  observer.observe({ entryTypes: ['gc'] });
  const K = 3;
  const subscribers = 30;
  const router = new SlotRouter(K);
  for (let s = 0; s < subscribers; s++) {
    const bindings: SlotBinding[] = [];
    for (let k = 0; k < K; k++) bindings.push({ subscriberId: `s${s}`, slot: k, stream: new SlotStream({ ssrc: s * 10 + k }) });
    router.addSubscriber(`s${s}`, bindings);
  }
  const detector = new SpeakerDetector();
  router.update(['p0', 'p1', 'p2'], () => true);
  const routes = router.routes('p0'); // p0 is in every subscriber's slots: 30 outputs per packet
  const n = quick ? 100_000 : 400_000;
  let seq = 0;
  let ts = 0;
  const ours = await time(n, (i) => {
    seq = (seq + 1) & 0xffff;
    ts = (ts + 960) >>> 0;
    detector.process('p0', 30, i * 20);
    for (let r = 0; r < K; r++) routes[r].stream.rewriteFields(1234, seq, ts, false, i * 20);
  });

  const key = Buffer.alloc(16, 7);
  const salt = (len: number): Buffer => Buffer.alloc(len, 3);
  const payload = Buffer.alloc(60, 0x55);
  const header = new RtpHeader({ payloadType: 111, ssrc: 42, extensions: [{ id: 1, payload: Buffer.from('1') }] });
  const werift = (profile: number, saltLen: number): Promise<{ ns: number; gcs: number }> => {
    const session = new SrtpSession({
      keys: { localMasterKey: key, localMasterSalt: salt(saltLen), remoteMasterKey: key, remoteMasterSalt: salt(saltLen) },
      profile: profile as never,
    });
    return time(quick ? 20_000 : 80_000, (i) => {
      for (let r = 0; r < K; r++) {
        header.sequenceNumber = (i * K + r) & 0xffff;
        header.timestamp = i * 960;
        session.encrypt(payload, header);
      }
    });
  };
  const gcm = await werift(7, 12); // SRTP_AEAD_AES_128_GCM (RFC 7714)
  const cm = await werift(1, 14); // SRTP_AES128_CM_HMAC_SHA1_80 (RFC 3711)
  observer.disconnect();
  return {
    voxlinkNsPerPacket: Math.round(ours.ns),
    voxlinkGcs: ours.gcs,
    weriftGcmNsPerPacket: Math.round(gcm.ns),
    weriftCmNsPerPacket: Math.round(cm.ns),
    weriftGcs: gcm.gcs + cm.gcs,
    slots: K,
  };
}
