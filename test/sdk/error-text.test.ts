import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.ts';
import { SignallingError, errorSentences, type VoxClient } from '../../src/client/index.ts';
import { createNodeClient } from '../../src/client/node.ts';
import { ProtocolErrorCodes, closeCodeTable } from '../../src/protocol/index.ts';
import { SECRET, startTestServer, type TestServer } from '../signalling/harness.ts';

/**
 * What people read when something fails: `err.message` is one sentence plus what to do, never
 * the codes or the SDK's plumbing; the codes stay on the error for programs and `detail` keeps the
 * technical account. Against the real server, with real tokens.
 */

const clients: VoxClient[] = [];
function client(): VoxClient {
  const c = createNodeClient({ requestTimeoutMs: 5_000 });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<SignallingError> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(SignallingError);
    return error as SignallingError;
  }
  throw new Error('expected a rejection');
}

describe('the sentence table', () => {
  it('has a sentence for every close code and every protocol error code', () => {
    for (const { code } of closeCodeTable) expect(errorSentences).toHaveProperty([`close:${code}`]);
    for (const code of ProtocolErrorCodes) expect(errorSentences).toHaveProperty([code]);
  });

  it('says each thing in one short sentence for people: no codes, no jargon, a remedy after the dash', () => {
    for (const [key, sentence] of Object.entries(errorSentences)) {
      expect(sentence, key).toMatch(/^[A-Z][^.]*\.$/); // one sentence
      expect(sentence.length, key).toBeLessThanOrEqual(120);
      expect(sentence, key).not.toMatch(/[A-Z]{2,}_|\b\d{4}\b|signalling|websocket|session|token|grant/i);
      expect(sentence.split('—').length, key).toBeLessThanOrEqual(2);
    }
  });
});

describe('errors from the real server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    for (const c of clients) await c.disconnect();
    await t?.close();
  });

  it('an expired link: says so and what to do; code, close code and the server reason stay on the error', async () => {
    const expired = await mintToken({ key: SECRET, userId: 'late', expiresAtSec: Math.floor(Date.now() / 1000) - 3600 });
    const err = await failure(client().connect(t.wsUrl, expired));
    expect(err.message).toBe('Your link has expired — ask for a new one.');
    expect(err).toMatchObject({ code: 'CLIENT_TERMINAL_CLOSE', closeCode: 1008, closeName: 'POLICY_VIOLATION', closeReason: 'token expired' });
    expect(err.detail).toBe("signalling: closed 1008 POLICY_VIOLATION: token expired");
  });

  it('a link signed with another secret is "not valid"', async () => {
    const forged = await mintToken({ key: 'some-other-secret-0123456789abcdef', userId: 'mallory' });
    const err = await failure(client().connect(t.wsUrl, forged));
    expect(err.message).toBe('Your link is not valid — ask for a new one.');
    expect(err.closeReason).toBe('token signature invalid');
  });

  it('a link for another room: the join is refused with the room sentence, the operation named once in detail', async () => {
    const c = client();
    await c.connect(t.wsUrl, await mintToken({ key: SECRET, userId: 'visitor', room: 'lobby', grants: ['join'] }));
    const err = await failure(c.join('boardroom'));
    expect(err.message).toBe('Your link does not let you into this room — ask for a link to this room.');
    expect(err).toMatchObject({ code: 'CLIENT_TERMINAL_CLOSE', closeCode: 1008 });
    expect(err.detail).toBe('join: signalling: closed 1008 POLICY_VIOLATION: no join grant for room "boardroom"');
    expect(err.message).not.toContain('join');
  });

  it('a refused request keeps the server code and its text in detail', async () => {
    const alice = client();
    const bob = client();
    await alice.connect(t.wsUrl, await t.token('alice'));
    await bob.connect(t.wsUrl, await t.token('bob'));
    await alice.join('standup');
    const room = await bob.join('standup');
    const aliceId = [...room.participants.values()].find((p) => p.userId === 'alice')!.participantId;
    const err = await failure(bob.mute('standup', aliceId));
    expect(err.message).toBe('Your link does not allow this — ask for one that does.');
    expect(err).toMatchObject({ code: 'CLIENT_REQUEST_FAILED', serverCode: 'FORBIDDEN', closeCode: undefined });
    expect(err.detail).toMatch(/^mute: FORBIDDEN: /);

    const notIn = await failure(bob.leave('elsewhere'));
    expect(notIn.message).toBe('You are not in this room — join it first.');
    expect(notIn.serverCode).toBe('NOT_IN_ROOM');
  });

  it('joining the same room from a second device: the first one is told why it was dropped', async () => {
    const first = client();
    const second = client();
    await first.connect(t.wsUrl, await t.token('carol'));
    await first.join('desk');
    const dropped = new Promise<SignallingError>((resolve) => first.once('error', resolve));
    await second.connect(t.wsUrl, await t.token('carol'));
    await second.join('desk');
    const err = await dropped;
    expect(err.message).toBe('You joined from another tab or device, so this one was disconnected — use the other one or join again here.');
    expect(err).toMatchObject({ code: 'CLIENT_TERMINAL_CLOSE', closeCode: 4001 });
  });

  it('nothing listening: "could not reach", with the address in detail only', async () => {
    const err = await failure(client().connect('ws://127.0.0.1:1/ws', 'x'));
    expect(err.message).toBe('Could not reach the voice server — check your network and the address, then try again.');
    expect(err.code).toBe('CLIENT_CONNECT_FAILED');
    expect(err.detail).toContain('ws://127.0.0.1:1/ws');
  });
});
