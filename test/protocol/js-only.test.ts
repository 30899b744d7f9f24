import { describe, expect, it } from 'vitest';
import { decodeClientMessage } from '../../src/protocol/codec.ts';

describe('untrusted frames are parsed by JavaScript only', () => {
  it('msgpackr runs without its native extractor and ws without bufferutil/utf-8-validate', async () => {
    expect(typeof decodeClientMessage).toBe('function');
    const msgpackr = await import('msgpackr');
    expect(msgpackr.isNativeAccelerationEnabled).toBe(false);
    expect(process.env.WS_NO_BUFFER_UTIL).toBe('1');
    expect(process.env.WS_NO_UTF_8_VALIDATE).toBe('1');
  });
});
