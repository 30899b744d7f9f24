import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeServerMessage, encodeMessage } from '../../src/protocol/codec.ts';
import { participant, RawClient, startTestServer, type TestServer } from '../signalling/harness.ts';
import { fuzzFrames, type FrameKind } from './frames.ts';

/**
 * Generated hostile frames (test/fuzz/frames.ts) from several connections against a live server,
 * while a well-behaved participant keeps its call going. The server must answer every frame
 * without a handler throwing (no INTERNAL), send only messages that decode, and the participant
 * must see no error and no close. `FUZZ_FRAMES` sets the count (default 24 000; the soak bench
 * runs 100k / 1M).
 */
const TOTAL = Number(process.env.FUZZ_FRAMES ?? 24_000);
const FUZZERS = 4;
const BATCH = 500;

interface FuzzerReport {
  sent: number;
  byKind: Partial<Record<FrameKind, number>>;
  errorsByCode: Record<string, number>;
  closes: number[];
  invalidFromServer: number;
}

/** One fuzzing connection: hello, then batches of frames, each batch fenced by a heartbeat round trip. */
async function runFuzzer(t: TestServer, index: number, count: number): Promise<FuzzerReport> {
  const report: FuzzerReport = { sent: 0, byKind: {}, errorsByCode: {}, closes: [], invalidFromServer: 0 };
  const frames = fuzzFrames(0xf00d + index, count, ['call', `own-${index}`, 'other']);
  let done = false;
  while (!done) {
    const ws = new WebSocket(t.wsUrl, 'voxlink.v1');
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
    let fence: { ref: number; resolve: () => void } | null = null;
    let readyResolve: () => void = () => undefined;
    const ready = new Promise<void>((r) => (readyResolve = r));
    const closed = new Promise<void>((resolve) =>
      ws.once('close', (code) => {
        report.closes.push(code);
        fence?.resolve();
        readyResolve();
        resolve();
      }),
    );
    ws.on('message', (data: Buffer) => {
      const decoded = decodeServerMessage(data);
      if (!decoded.ok) {
        report.invalidFromServer++;
        return;
      }
      const m = decoded.message;
      if (m.op === 'ready') readyResolve();
      if (m.op === 'error') report.errorsByCode[m.code] = (report.errorsByCode[m.code] ?? 0) + 1;
      if (m.op === 'heartbeat_ack' && fence && m.ref === fence.ref) fence.resolve();
    });
    ws.send(encodeMessage({ op: 'hello', token: await t.token(`fuzzer-${index}`) }));
    await ready;
    let ref = 1_000_000_000;
    while (ws.readyState === ws.OPEN) {
      let n = 0;
      for (; n < BATCH; n++) {
        const next = frames.next();
        if (next.done) {
          done = true;
          break;
        }
        ws.send(next.value.bytes);
        report.sent++;
        report.byKind[next.value.kind] = (report.byKind[next.value.kind] ?? 0) + 1;
      }
      const fenceRef = ++ref;
      await new Promise<void>((resolve) => {
        fence = { ref: fenceRef, resolve };
        if (ws.readyState === ws.OPEN) ws.send(encodeMessage({ op: 'heartbeat', ack: 0, ref: fenceRef }));
        else resolve();
      });
      if (done) break;
    }
    if (ws.readyState === ws.OPEN) ws.close(1000);
    await closed;
  }
  return report;
}

describe('signalling fuzz', () => {
  let t: TestServer;
  beforeAll(async () => {
    // The rate limit is lifted so the frames reach the decoder and the handlers, not the bucket.
    t = await startTestServer({ limits: { messagesPerSecond: 1e9, messageBurst: 1e9 } });
  });
  afterAll(() => t.close());

  it(`${TOTAL} generated frames from ${FUZZERS} connections: no crash, no INTERNAL, the call goes on`, { timeout: 300_000 }, async () => {
    const caller = await participant(t, 'caller', 'call');
    const peer = await participant(t, 'peer', 'call');
    let muted = false;
    let acks = 0;
    const tick = setInterval(() => {
      caller.send({ op: 'heartbeat', ack: caller.lastSeq() });
      peer.send({ op: 'heartbeat', ack: peer.lastSeq() });
      muted = !muted;
      caller.send({ op: muted ? 'mute' : 'unmute', room: 'call', ref: caller.nextRef() });
    }, 100);
    const internalBefore = await metric(t, 'voxlink_internal_errors_total');
    let reports: FuzzerReport[];
    try {
      reports = await Promise.all(Array.from({ length: FUZZERS }, (_, i) => runFuzzer(t, i, Math.ceil(TOTAL / FUZZERS))));
      acks = caller.received.filter((m) => m.op === 'mute_ack').length;
    } finally {
      clearInterval(tick);
    }
    const sent = reports.reduce((s, r) => s + r.sent, 0);
    const errors: Record<string, number> = {};
    for (const r of reports) for (const [code, n] of Object.entries(r.errorsByCode)) errors[code] = (errors[code] ?? 0) + n;
    const closes = reports.flatMap((r) => r.closes);
    console.log(`fuzz: ${sent} frames; errors by code ${JSON.stringify(errors)}; closes ${JSON.stringify(closes)}`);

    expect(sent).toBeGreaterThanOrEqual(TOTAL);
    for (const kind of ['valid', 'boundary', 'wrongType', 'nested', 'ext', 'proto', 'garbage'] as const) {
      expect(reports.reduce((s, r) => s + (r.byKind[kind] ?? 0), 0)).toBeGreaterThan(TOTAL / 20);
    }
    expect(reports.reduce((s, r) => s + r.invalidFromServer, 0)).toBe(0);
    expect(errors.INTERNAL ?? 0).toBe(0);
    expect(await metric(t, 'voxlink_internal_errors_total')).toBe(internalBefore);
    // Every kind of rejection the protocol has was exercised, not only one.
    for (const code of ['BAD_MESSAGE', 'UNSUPPORTED_TYPE', 'INVALID_MESSAGE', 'UNKNOWN_OP', 'MISSING_OP']) expect(errors[code] ?? 0).toBeGreaterThan(0);
    // The well-behaved participants: no error, no close, mute round trips kept working throughout.
    for (const c of [caller, peer]) {
      expect(c.received.filter((m) => m.op === 'error')).toEqual([]);
      expect(c.ws.readyState).toBe(c.ws.OPEN);
    }
    expect(acks).toBeGreaterThan(0);
    expect((await caller.request({ op: 'mute', room: 'call' })).op).toBe('mute_ack');
    expect(t.server.core.registry.snapshot('call').map((p) => p.userId)).toEqual(expect.arrayContaining(['caller', 'peer']));
    // Nothing hangs around: every fuzzer's session ended with its connection.
    caller.close();
    peer.close();
    const fresh = await RawClient.connect(t.wsUrl);
    expect((await fresh.hello(await t.token('after-fuzz'))).op).toBe('ready');
    fresh.close();
  });
});

/**
 * Before hello: connections that never authenticate send generated frames in batches of 50, each
 * fenced by a heartbeat (answered NOT_AUTHENTICATED with its ref); a closed connection (a bad
 * `hello` is 1008, too much queued behind a pending one is 4006) is replaced by a new one.
 */
async function runUnauthenticated(t: TestServer, count: number): Promise<FuzzerReport> {
  const report: FuzzerReport = { sent: 0, byKind: {}, errorsByCode: {}, closes: [], invalidFromServer: 0 };
  const frames = fuzzFrames(0xbad, count, ['call', 'other']);
  let ref = 1;
  for (let done = false; !done; ) {
    const ws = new WebSocket(t.wsUrl, 'voxlink.v1');
    ws.on('error', () => undefined);
    let fence: { ref: number; resolve: () => void } | null = null;
    const closed = new Promise<void>((resolve) =>
      ws.once('close', (code) => {
        report.closes.push(code);
        fence?.resolve();
        resolve();
      }),
    );
    ws.on('message', (data: Buffer) => {
      const decoded = decodeServerMessage(data);
      if (!decoded.ok) {
        report.invalidFromServer++;
        return;
      }
      const m = decoded.message;
      if (m.op === 'error') report.errorsByCode[m.code] = (report.errorsByCode[m.code] ?? 0) + 1;
      if (m.op === 'error' && fence && m.ref === fence.ref) fence.resolve();
    });
    await new Promise<void>((resolve) => ws.once('open', () => resolve()).once('close', () => resolve()));
    while (ws.readyState === ws.OPEN && !done) {
      for (let n = 0; n < 50 && ws.readyState === ws.OPEN; n++) {
        const next = frames.next();
        if (next.done) {
          done = true;
          break;
        }
        ws.send(next.value.bytes);
        report.sent++;
      }
      const fenceRef = ref++;
      await new Promise<void>((resolve) => {
        fence = { ref: fenceRef, resolve };
        if (ws.readyState === ws.OPEN) ws.send(encodeMessage({ op: 'heartbeat', ack: 0, ref: fenceRef }));
        else resolve();
      });
    }
    if (ws.readyState === ws.OPEN) ws.close(1000);
    await closed;
  }
  return report;
}

describe('signalling fuzz before hello', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { messagesPerSecond: 1e9, messageBurst: 1e9 } });
  });
  afterAll(() => t.close());

  it('unauthenticated connections: only auth closes and errors, no session, no INTERNAL; a call meanwhile sees nothing', { timeout: 120_000 }, async () => {
    const caller = await participant(t, 'caller', 'call');
    const internalBefore = await metric(t, 'voxlink_internal_errors_total');
    const report = await runUnauthenticated(t, Math.ceil(TOTAL / 4));
    console.log(`fuzz before hello: ${report.sent} frames; errors ${JSON.stringify(report.errorsByCode)}; ${report.closes.length} connections`);
    expect(report.sent).toBeGreaterThanOrEqual(TOTAL / 4);
    expect(report.invalidFromServer).toBe(0);
    expect(report.errorsByCode.INTERNAL ?? 0).toBe(0);
    expect(report.errorsByCode.NOT_AUTHENTICATED ?? 0).toBeGreaterThan(0);
    expect(await metric(t, 'voxlink_internal_errors_total')).toBe(internalBefore);
    // Closed only for what a stranger did wrong: a bad hello (1008), a flood behind a pending hello
    // (4006), a resume that failed, or our own goodbye.
    expect(report.closes.filter((c) => ![1000, 1008, 4006, 4005].includes(c))).toEqual([]);
    // Nobody got in: the room holds the caller only, and the caller saw no error.
    expect(t.server.core.registry.snapshot('call').map((p) => p.userId)).toEqual(['caller']);
    expect(caller.received.filter((m) => m.op === 'error')).toEqual([]);
    expect((await caller.request({ op: 'mute', room: 'call' })).op).toBe('mute_ack');
    caller.close();
  });
});

async function metric(t: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${t.server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.slice(name.length + 1)) : 0;
}
