import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeMediaClient } from '../../src/client/media/node-media-client.ts';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import type { ServerMessage } from '../../src/protocol/messages.ts';
import { turnCredentials } from '../../src/turn/credentials.ts';
import { powerAt } from '../codec/signal.ts';
import { participant, startTestServer, type TestServer } from '../signalling/harness.ts';
import { startCoturn, type Coturn } from './coturn.ts';
import { selectedPair, sleep, TurnRoom, waitFor } from './harness.ts';
import { allocate, TurnSession } from './stun.ts';

const SR = 48_000;
/** A 0.3-amplitude sine has power 0.045; decoded Opus keeps most of it (test/media/room-tones). */
const PRESENT = 0.01;
const ABSENT = 0.0005;
/** Clear of the RTC ranges of test/media (41000–42599) and test/rooms (46000–46399). */
const ROOM_PORTS = { rtcMinPort: 47000, rtcMaxPort: 47049 };
/** The shared-port room (this engineer's range 50000–50599; coturn relays to any port). */
const SHARED_UDP_PORT = 50400;
const SHARED_ROOM_PORTS = { rtcMinPort: 50410, rtcMaxPort: 50419 };

interface TurnBody {
  username: string;
  password: string;
  ttl: number;
  uris: string[];
  iceServers: { urls: string[]; username?: string; credential?: string }[];
}

/** Log lines of coturn naming `username` (coturn prints the username in angle brackets). */
function linesFor(coturn: Coturn, username: string): string[] {
  return coturn
    .log()
    .split('\n')
    .filter((l) => l.includes(`<${username}>`));
}

describe('VoxLink TURN REST credentials against a real coturn (use-auth-secret)', () => {
  let coturn: Coturn;
  let t: TestServer;

  beforeAll(async () => {
    coturn = await startCoturn();
    t = await startTestServer({ turn: { urls: [coturn.url], secret: coturn.secret, ttlSec: 600 } });
  });

  afterAll(async () => {
    await t?.close();
    await coturn?.close();
  });

  async function turnFromHttp(userId: string): Promise<TurnBody> {
    const res = await fetch(`${t.server.url}/turn`, { headers: { authorization: `Bearer ${await t.token(userId)}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as TurnBody;
  }

  it('coturn grants an allocation for credentials from turnCredentials() and from GET /turn (401 challenge, then success)', async () => {
    const direct = turnCredentials(coturn.secret, 'dora', 600, [coturn.url]);
    const http = await turnFromHttp('hank');
    expect(http.uris).toEqual([coturn.url]);
    for (const [username, password] of [
      [direct.username, direct.credential],
      [http.username, http.password],
    ]) {
      const outcome = await allocate(coturn.host, coturn.port, username, password);
      // RFC 5389 §10.2: the first, unauthenticated Allocate is challenged with REALM and NONCE.
      expect(outcome.challenge.errorCode).toBe(401);
      expect(outcome.challenge.realm).toBe(coturn.realm);
      if (!outcome.ok) throw new Error(`allocation refused for ${username}: ${outcome.errorCode} ${outcome.reason}`);
      const [relayIp, relayPort] = outcome.relayed;
      expect(relayIp).toBe('127.0.0.1');
      expect(relayPort).toBeGreaterThanOrEqual(coturn.relayPorts[0]);
      expect(relayPort).toBeLessThanOrEqual(coturn.relayPorts[1]);
      expect(outcome.lifetime).toBeGreaterThan(0);
      // coturn signed its success with the key derived from our credential: both ends agree on it.
      expect(outcome.integrityOk).toBe(true);
      await coturn.waitForLog(new RegExp(`user <${username}>: incoming packet ALLOCATE processed, success`));
    }
  });

  it('coturn refuses expired, forged and re-labelled credentials with 401', async () => {
    const valid = turnCredentials(coturn.secret, 'erin', 600, [coturn.url]);
    const cases: Record<string, { username: string; password: string }> = {
      // Minted with a 60 s TTL 10 minutes ago: the expiry in the username is 9 minutes in the past
      // (one second in the past raced coturn's own clock reading and flaked).
      expired: (() => {
        const c = turnCredentials(coturn.secret, 'erin', 60, [coturn.url], Date.now() - 600_000);
        return { username: c.username, password: c.credential };
      })(),
      // HMAC under a secret that is not coturn's.
      forged: (() => {
        const c = turnCredentials('not-the-static-auth-secret', 'erin', 600, [coturn.url]);
        return { username: c.username, password: c.credential };
      })(),
      // A genuine credential reused for a later expiry: the HMAC no longer matches the username.
      extended: { username: `${Number(valid.username.split(':')[0]) + 86_400}:erin`, password: valid.credential },
      // A genuine credential reused under another user's name.
      relabelled: { username: valid.username.replace(':erin', ':mallory'), password: valid.credential },
    };
    for (const [name, creds] of Object.entries(cases)) {
      const outcome = await allocate(coturn.host, coturn.port, creds.username, creds.password);
      expect(outcome.ok, name).toBe(false);
      if (outcome.ok) continue;
      expect(outcome.errorCode, name).toBe(401);
      await coturn.waitForLog(new RegExp(`user <${creds.username}>: incoming packet message processed, error 401`));
      expect(linesFor(coturn, creds.username).some((l) => l.includes('ALLOCATE processed, success')), name).toBe(false);
    }
    // The genuine one still works (the refusals were about the credentials, not the server).
    expect((await allocate(coturn.host, coturn.port, valid.username, valid.credential)).ok).toBe(true);
  });

  it('expiry bounds new allocations only: an allocation made in time keeps its permissions and refreshes after it', async () => {
    const creds = turnCredentials(coturn.secret, 'kim', 2, [coturn.url]);
    const expiryMs = Number(creds.username.split(':')[0]) * 1000;
    const session = await TurnSession.open(coturn.host, coturn.port);
    try {
      expect((await session.allocate(creds.username, creds.credential)).kind).toBe('success');
      // coturn compares whole seconds (expired when expiry < now): wait until the next second.
      await sleep(expiryMs + 1_050 - Date.now());
      const late = await allocate(coturn.host, coturn.port, creds.username, creds.credential);
      expect(late.ok ? 0 : late.errorCode, 'a new allocation with the expired credentials').toBe(401);
      // The running allocation is unaffected: a call outlives its credentials (docs/turn.md).
      expect((await session.createPermission('127.0.0.1')).kind).toBe('success');
      const refreshed = await session.refresh(600);
      expect(refreshed.kind).toBe('success');
      expect(refreshed.lifetime).toBe(600);
      await session.refresh(0);
    } finally {
      session.close();
    }
  });

  it("the template's peer policy: the relay reaches the media server but not private or link-local networks (403)", async () => {
    const creds = turnCredentials(coturn.secret, 'gina', 600, [coturn.url]);
    // 127.0.0.1 stands for VoxLink's media address (allowed here only by the test's allow-loopback-peers);
    // 198.51.100.7 is any public peer; the rest are denied-peer-ip ranges of deploy/coturn.conf.
    const peers = ['127.0.0.1', '198.51.100.7', '10.1.2.3', '172.16.0.9', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.1'];
    const outcome = await allocate(coturn.host, coturn.port, creds.username, creds.credential, peers);
    if (!outcome.ok) throw new Error(`allocation refused: ${outcome.errorCode} ${outcome.reason}`);
    expect(outcome.permissions).toEqual({
      '127.0.0.1': 0,
      '198.51.100.7': 0,
      '10.1.2.3': 403,
      '172.16.0.9': 403,
      '192.168.1.1': 403,
      '169.254.169.254': 403,
      '100.64.0.1': 403,
      '0.0.0.1': 403,
    });
  });

  describe('relay-only werift clients in a media room', () => {
    let room: TurnRoom;

    afterAll(async () => {
      await room?.close();
    });

    it('connect through coturn with minted credentials, and audio flows both ways through the relay', async () => {
      room = new TurnRoom('turn-room', ROOM_PORTS);
      // alice asks GET /turn; bob takes the iceServers of his signalling session's `ready`.
      const aliceTurn = await turnFromHttp('alice');
      const bobSession = await participant(t, 'bob');
      const ready = bobSession.received.find((m): m is Extract<ServerMessage, { op: 'ready' }> => m.op === 'ready');
      bobSession.close();
      const bobTurn = ready?.iceServers.find((s) => s.username !== undefined);
      expect(bobTurn?.urls).toEqual([coturn.url]);

      const alice = await room.join('alice', { iceServers: aliceTurn.iceServers, iceTransportPolicy: 'relay' });
      const bob = await room.join('bob', { iceServers: [bobTurn!], iceTransportPolicy: 'relay' });
      await Promise.all([alice.connected(15_000), bob.connected(15_000)]);

      for (const [client, username] of [
        [alice, aliceTurn.username],
        [bob, bobTurn!.username!],
      ] as [NodeMediaClient, string][]) {
        // Connected on the first peer as a rule. On a starved host (CI on 2 cores next to Chromium)
        // a first relay-only ICE attempt can time out; the client then asks for a fresh peer, which
        // uses the same credentials and must relay too (checked below on whichever peer connected).
        expect(client.restartOffers, 'media reconnects before connecting').toBeLessThanOrEqual(1);
        const pair = selectedPair(client);
        expect(pair?.local.type).toBe('relay');
        expect(pair!.local.port).toBeGreaterThanOrEqual(coturn.relayPorts[0]);
        expect(pair!.local.port).toBeLessThanOrEqual(coturn.relayPorts[1]);
        expect(pair!.remote.port).toBeGreaterThanOrEqual(ROOM_PORTS.rtcMinPort);
        expect(pair!.remote.port).toBeLessThanOrEqual(ROOM_PORTS.rtcMaxPort);
        // coturn's own account: the allocation for this user, and a channel to the room's port.
        await coturn.waitForLog(new RegExp(`user <${username}>: incoming packet ALLOCATE processed, success`));
        await coturn.waitForLog(new RegExp(`user <${username}>: incoming packet CHANNEL_BIND processed, success`));
      }

      alice.publish(new ToneSource(440));
      bob.publish(new ToneSource(660));
      await waitFor(
        () => alice.audioFrom('bob', 1).length >= SR && bob.audioFrom('alice', 1).length >= SR,
        15_000,
        'a second of relayed audio in each direction',
      );
      const atAlice = alice.audioFrom('bob', 1);
      const atBob = bob.audioFrom('alice', 1);
      expect(powerAt(atAlice, SR, 660)).toBeGreaterThan(PRESENT);
      expect(powerAt(atAlice, SR, 440)).toBeLessThan(ABSENT);
      expect(powerAt(atBob, SR, 440)).toBeGreaterThan(PRESENT);
      expect(powerAt(atBob, SR, 660)).toBeLessThan(ABSENT);
      expect(room.errors).toEqual([]);
    }, 40_000);

    it('a media reconnect keeps the rtcConfiguration: the fresh peer relays too, with credentials from setIceServers()', async () => {
      const alice = room.clients.get('alice')!;
      const bob = room.clients.get('bob')!;
      // What a `resumed` hands out: credentials minted later (another expiry, so another username).
      const fresh = turnCredentials(coturn.secret, 'alice', 900, [coturn.url]);
      alice.setIceServers([{ urls: fresh.urls, username: fresh.username, credential: fresh.credential }]);
      const firstPeer = alice.pc;
      const offersBefore = alice.restartOffers;
      // What NodeMediaClient sends when its peer fails; the server answers with a restart offer.
      await room.room.signal('alice', { op: 'media', room: room.roomId, kind: 'ice_restart' });
      await waitFor(() => alice.restartOffers === offersBefore + 1, 10_000, 'the restart offer');
      expect(alice.pc).not.toBe(firstPeer);
      await alice.connected(15_000);
      const pair = selectedPair(alice);
      expect(pair?.local.type, 'the new peer gathered relay candidates only').toBe('relay');
      expect(pair!.local.port).toBeGreaterThanOrEqual(coturn.relayPorts[0]);
      expect(pair!.local.port).toBeLessThanOrEqual(coturn.relayPorts[1]);
      await coturn.waitForLog(new RegExp(`user <${fresh.username}>: incoming packet ALLOCATE processed, success`));
      // Audio still flows through the new relay.
      bob.clearRecordings();
      await waitFor(() => bob.audioFrom('alice', 1).length >= SR, 15_000, 'a second of alice over the new peer');
      expect(powerAt(bob.audioFrom('alice', 1), SR, 440)).toBeGreaterThan(PRESENT);
      expect(room.errors).toEqual([]);
    }, 40_000);

    it('relay-only clients reach a room on one shared UDP port (media.udpPort): the relay pairs end on that port, audio flows both ways', async () => {
      const shared = new TurnRoom('turn-shared', { ...SHARED_ROOM_PORTS, udpPort: { base: SHARED_UDP_PORT, count: 1 } });
      try {
        const creds = await turnFromHttp('carol');
        const carol = await shared.join('carol', { iceServers: creds.iceServers, iceTransportPolicy: 'relay' });
        const dave = await shared.join('dave', { iceServers: creds.iceServers, iceTransportPolicy: 'relay' });
        await Promise.all([carol.connected(15_000), dave.connected(15_000)]);
        for (const client of [carol, dave]) {
          const pair = selectedPair(client);
          expect(pair?.local.type).toBe('relay');
          expect(pair!.remote.port, 'the server side of the pair is the shared port').toBe(SHARED_UDP_PORT);
        }
        carol.publish(new ToneSource(440));
        dave.publish(new ToneSource(660));
        await waitFor(() => carol.audioFrom('dave', 1).length >= SR && dave.audioFrom('carol', 1).length >= SR, 15_000, 'a second of relayed audio each way');
        expect(powerAt(carol.audioFrom('dave', 1), SR, 660)).toBeGreaterThan(PRESENT);
        expect(powerAt(dave.audioFrom('carol', 1), SR, 440)).toBeGreaterThan(PRESENT);
        expect(powerAt(dave.audioFrom('carol', 1), SR, 660)).toBeLessThan(ABSENT);
        const s = shared.room.stats();
        expect(s.packetsInFast ?? 0).toBeGreaterThanOrEqual(s.packetsIn);
        expect(shared.errors).toEqual([]);
      } finally {
        await shared.close();
      }
    }, 40_000);

    it('ICE fails for relay-only clients holding expired or forged credentials', async () => {
      const bad = {
        expired: turnCredentials(coturn.secret, 'ivan', 60, [coturn.url], Date.now() - 61_000),
        forged: turnCredentials('not-the-static-auth-secret', 'judy', 600, [coturn.url]),
      };
      const outcomes = await Promise.all(
        Object.entries(bad).map(async ([name, creds]) => {
          const c = await room.join(name, {
            iceServers: [{ urls: creds.urls, username: creds.username, credential: creds.credential }],
            iceTransportPolicy: 'relay',
          });
          // NodeMediaClient reports a failed ICE/DTLS attempt by asking for a media reconnect.
          const failed = new Promise<string>((resolve) => c.once('reconnect', (reason) => resolve(reason)));
          const states: string[] = [];
          const firstPeer = c.pc;
          firstPeer.connectionStateChange.subscribe((s) => states.push(s));
          // werift ignores coturn's final 401 (it carries no MESSAGE-INTEGRITY, see docs/turn.md) and
          // times the Allocate out, over UDP and then TCP, before it gives up gathering (~13 s).
          const reason = await failed;
          const candidates = firstPeer.iceTransports[0]?.getLocalCandidates().length ?? 0;
          await c.close();
          return { name, creds, reason, states, candidates };
        }),
      );
      for (const { name, creds, reason, states, candidates } of outcomes) {
        expect(reason, name).toBe('failed');
        expect(states, name).not.toContain('connected');
        expect(candidates, `${name}: relay candidates`).toBe(0);
        const lines = linesFor(coturn, creds.username);
        expect(lines.some((l) => l.includes('error 401')), `${name}: coturn answered 401`).toBe(true);
        expect(lines.some((l) => l.includes('ALLOCATE processed, success')), `${name}: coturn allocated`).toBe(false);
      }
    }, 40_000);
  });
});
