import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVoxError } from '../../src/errors.ts';
import { ChannelClient } from '../../src/rooms/channel.ts';
import type { EchoEvents, EchoRequests } from './fixtures/echo-worker.ts';

const MAX_BYTES = 1024;

let pool: Piscina;

beforeAll(async () => {
  pool = new Piscina({
    filename: new URL('./fixtures/echo-worker.ts', import.meta.url).pathname,
    execArgv: ['--import', 'tsx'],
    minThreads: 1,
    maxThreads: 1,
    atomics: 'disabled',
    idleTimeout: Infinity,
    concurrentTasksPerWorker: 100,
  });
  // Start the thread (tsx compiles the fixture) before any test times anything.
  const { channel, task } = open(30_000);
  await channel.request('end', null);
  await task;
});

afterAll(async () => {
  await pool.destroy();
});

function open(timeoutMs = 10_000): { channel: ChannelClient<EchoRequests, EchoEvents>; task: Promise<string> } {
  const { port1, port2 } = new MessageChannel();
  const task = pool.run({ port: port2, maxMessageBytes: MAX_BYTES }, { transferList: [port2] }) as Promise<string>;
  return { channel: new ChannelClient<EchoRequests, EchoEvents>(port1, { maxMessageBytes: MAX_BYTES, timeoutMs, name: 'echo' }), task };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isVoxError(error) ? error.code : `not a VoxError: ${String(error)}`;
  }
}

describe('room channel (main ↔ worker)', () => {
  it('matches each reply to its numbered request, even when replies come back out of order', async () => {
    const { channel, task } = open();
    // Slow requests first, so the fast ones overtake them on the worker.
    const slow = [0, 1, 2].map((i) => channel.request('sleep', { ms: 60 - i * 20 }).then(() => `slow${i}`));
    const fast = Array.from({ length: 40 }, (_, i) => channel.request('echo', { text: `m${i}` }).then((r) => r.text));
    expect(await Promise.all(fast)).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`));
    expect(await Promise.all(slow)).toEqual(['slow0', 'slow1', 'slow2']);
    expect(channel.pendingCount).toBe(0);
    await channel.request('end', null);
    expect(await task).toBe('closed');
  });

  it('carries the VoxError code a worker handler threw, and rejects unknown methods', async () => {
    const { channel, task } = open();
    expect(await codeOf(channel.request('fail', { code: 'ROOM_NOT_FOUND' }))).toBe('ROOM_NOT_FOUND');
    const untyped = channel as unknown as ChannelClient<{ nope: { data: null; result: null } }, EchoEvents>;
    expect(await codeOf(untyped.request('nope', null))).toBe('CHANNEL_UNKNOWN_METHOD');
    channel.close();
    expect(await task).toBe('closed');
  });

  it('times a request out with CHANNEL_TIMEOUT and keeps working; the late reply is dropped', async () => {
    const { channel, task } = open(100);
    const started = performance.now();
    expect(await codeOf(channel.request('sleep', { ms: 400 }))).toBe('CHANNEL_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(350);
    expect(channel.pendingCount).toBe(0);
    expect(await channel.request('echo', { text: 'still here' })).toEqual({ text: 'still here' });
    await new Promise((resolve) => setTimeout(resolve, 400)); // the late reply arrives and is ignored
    expect(await channel.request('echo', { text: 'after' })).toEqual({ text: 'after' });
    channel.close();
    expect(await task).toBe('closed');
  });

  it('close() rejects every pending request with CHANNEL_CLOSED and ends the worker task', async () => {
    const { channel, task } = open(10_000);
    const pending = [channel.request('sleep', { ms: 5000 }), channel.request('sleep', { ms: 5000 })];
    await new Promise((resolve) => setTimeout(resolve, 20));
    channel.close();
    channel.close(); // idempotent
    expect(await Promise.all(pending.map(codeOf))).toEqual(['CHANNEL_CLOSED', 'CHANNEL_CLOSED']);
    expect(await codeOf(channel.request('echo', { text: 'late' }))).toBe('CHANNEL_CLOSED');
    expect(await task).toBe('closed');
  });

  it('rejects oversize requests before sending and oversize replies in the worker', async () => {
    const { channel, task } = open();
    expect(await codeOf(channel.request('echo', { text: 'x'.repeat(MAX_BYTES) }))).toBe('CHANNEL_MESSAGE_TOO_LARGE');
    expect(await codeOf(channel.request('big', { bytes: MAX_BYTES * 2 }))).toBe('CHANNEL_MESSAGE_TOO_LARGE');
    expect((await channel.request('big', { bytes: 100 })).blob).toHaveLength(100);
    channel.close();
    expect(await task).toBe('closed');
  });

  it('delivers worker events in order', async () => {
    const { channel, task } = open();
    const seen: number[] = [];
    channel.onEvent((name, data) => {
      if (name === 'shouted') seen.push((data as EchoEvents['shouted']).n);
    });
    await channel.request('shout', { times: 25 });
    // Events sent before the reply arrive before it: one port, ordered delivery.
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i));
    channel.close();
    expect(await task).toBe('closed');
  });
});
