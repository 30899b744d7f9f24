import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToneSource } from '../../src/client/media/pcm-source.ts';
import { metricsText } from '../../src/metrics/registry.ts';
import { stopTurn } from '../../src/turn/service.ts';
import { selfSignedCertificate } from '../../src/signalling/tls.ts';
import { meanPower, powerAt } from '../codec/signal.ts';
import { openChromiumPeer, type ChromiumPeer } from '../media/chromium-peer.ts';
import { FULL_GRANTS, RoomHarness } from '../media/harness.ts';
import { startTestServer, type TestServer } from '../signalling/harness.ts';
import { startCoturn, type Coturn } from './coturn.ts';
import { selectedPair, sleep, TurnRoom, waitFor } from './harness.ts';
import { startRedis, type RedisService } from './services.ts';
import { sample } from './metrics-text.ts';

const SR = 48_000;
const REALM = 'voxlink.test';
const STATS_DB = 3;
/** Clear of coturn.test.ts (47000–47049) and coturn's relay search range (47500–47999). */
const WERIFT_PORTS = { rtcMinPort: 47050, rtcMaxPort: 47099 };
const CHROME_PORTS = { rtcMinPort: 47100, rtcMaxPort: 47149 };
const WERIFT_TLS_PORTS = { rtcMinPort: 47150, rtcMaxPort: 47199 };

interface TurnBody {
  username: string;
  password: string;
  uris: string[];
  iceServers: { urls: string[]; username?: string; credential?: string }[];
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

/**
 * coturn listening for TURN over UDP and TCP on one port and over TLS on another (a self-signed
 * certificate), VoxLink handing out all three URLs; relay-only clients that may use only TCP or
 * only TLS hear a tone through it, and /metrics follows the allocations by transport.
 */
describe('TURN over TCP and TLS: relay-only werift and Chromium clients hear a tone through coturn', () => {
  let redis: RedisService;
  let coturn: Coturn;
  let t: TestServer;
  let certDir: string;
  let urls: { udp: string; tcp: string; tls: string };

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'voxlink-turn-tls-'));
    const cert = await selfSignedCertificate(certDir, ['localhost', '127.0.0.1']);
    redis = await startRedis();
    coturn = await startCoturn({ realm: REALM, relayCount: 40, tls: { certFile: cert.certFile, keyFile: cert.keyFile }, values: { 'redis-statsdb': `"${redis.coturnConn(STATS_DB)}"` } });
    urls = {
      udp: `turn:${coturn.host}:${coturn.port}?transport=udp`,
      tcp: `turn:${coturn.host}:${coturn.port}?transport=tcp`,
      tls: `turns:${coturn.host}:${coturn.tlsPort}?transport=tcp`,
    };
    t = await startTestServer({ turn: { urls: [urls.udp, urls.tcp, urls.tls], secret: coturn.secret, ttlSec: 600, stats: { redisUrl: redis.url(STATS_DB) } } });
    await until(async () => sample(await metricsText(), 'voxlink_turn_stats_up') === 1, 5_000, 'the statistics reader');
  }, 30_000);

  afterAll(async () => {
    await t?.close();
    await stopTurn();
    await coturn?.close();
    await redis?.close();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  async function turnFromHttp(userId: string): Promise<TurnBody> {
    const res = await fetch(`${t.server.url}/turn`, { headers: { authorization: `Bearer ${await t.token(userId)}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as TurnBody;
  }

  /** One transport's URL with the credentials of a GET /turn answer. */
  function only(body: TurnBody, url: string): RTCIceServer[] {
    expect(body.uris).toContain(url);
    return [{ urls: [url], username: body.username, credential: body.password }];
  }

  it('GET /turn and ready hand out the turn: (UDP), turn:?transport=tcp and turns: URLs as configured', async () => {
    const body = await turnFromHttp('ida');
    expect(body.uris).toEqual([urls.udp, urls.tcp, urls.tls]);
    expect(body.iceServers).toEqual([{ urls: [urls.udp, urls.tcp, urls.tls], username: body.username, credential: body.password }]);
  });

  for (const transport of ['tcp', 'tls'] as const) {
  const TYPE = transport.toUpperCase();
  it(`a relay-only werift client over ${TYPE}: nominated relay pair, tones both ways, allocation and traffic in /metrics`, async () => {
    const room = new TurnRoom(`turn-${transport}`, transport === 'tcp' ? WERIFT_PORTS : WERIFT_TLS_PORTS);
    try {
      const user = `tess-${transport}`;
      const creds = await turnFromHttp(user);
      // turns: with coturn's self-signed certificate: trust exactly that certificate.
      const turnTlsOptions = transport === 'tls' ? { ca: readFileSync(join(certDir, 'tls', 'self-signed-cert.pem')) } : undefined;
      const tess = await room.join(user, { iceServers: only(creds, urls[transport]), iceTransportPolicy: 'relay', turnTlsOptions });
      const dan = await room.join('dan');
      await Promise.all([tess.connected(20_000), dan.connected(20_000)]);
      const pair = selectedPair(tess);
      expect(pair?.local.type).toBe('relay');
      expect(pair!.local.port).toBeGreaterThanOrEqual(coturn.relayPorts[0]);
      expect(pair!.local.port).toBeLessThanOrEqual(coturn.relayPorts[1]);
      await coturn.waitForLog(new RegExp(`session \\d+: new, realm=<${REALM}>, username=<${creds.username}>, lifetime=\\d+`));
      expect(sample(await metricsText(), 'turn_total_allocations', { type: TYPE })).toBe(1);

      tess.publish(new ToneSource(440));
      dan.publish(new ToneSource(660));
      await waitFor(() => tess.audioFrom('dan', 1).length >= SR && dan.audioFrom(user, 1).length >= SR, 15_000, 'a second of audio each way');
      expect(powerAt(tess.audioFrom('dan', 1), SR, 660)).toBeGreaterThan(0.01);
      expect(powerAt(dan.audioFrom(user, 1), SR, 440)).toBeGreaterThan(0.01);
      // coturn reports a session's traffic every 4096 packets (~15 s of this call): the counters
      // grow while the call runs, before the allocation ends.
      await until(async () => sample(await metricsText(), 'turn_traffic_peer_sentb', { realm: REALM, user }) > 0, 40_000, 'relayed bytes counted during the call');
      const during = await metricsText();
      expect(sample(during, 'turn_total_allocations', { type: TYPE }), 'the call is still up').toBe(1);
      expect(sample(during, 'turn_traffic_rcvb', { realm: REALM, user })).toBeGreaterThan(10_000);
      expect(room.errors).toEqual([]);
    } finally {
      await room.close();
    }
    await until(async () => sample(await metricsText(), 'turn_total_allocations', { type: TYPE }) === 0, 15_000, 'the allocation gone');
  }, 90_000);
  }

  for (const transport of ['tcp', 'tls'] as const) {
    it(`a relay-only Chromium page over ${transport.toUpperCase()} hears a werift tone through coturn, and is heard`, async () => {
      const h = new RoomHarness({ roomId: `chrome-${transport}`, slots: 1, ...CHROME_PORTS });
      let chrome: ChromiumPeer | undefined;
      try {
        const creds = await turnFromHttp(`chrome-${transport}`);
        // Chromium checks a turns: server's certificate; this one is self-signed.
        chrome = await openChromiumPeer(h, 'chrome', transport === 'tls' ? ['--ignore-certificate-errors'] : [], { iceServers: only(creds, urls[transport]), iceTransportPolicy: 'relay' });
        const tone = await h.join('tone');
        await h.room.join({ roomId: h.roomId, participantId: 'chrome', name: 'Chromium', grants: FULL_GRANTS });
        await tone.connected(20_000);
        tone.publish(new ToneSource(440));
        const received = await chrome.receiving(15_000, 30_000);
        if (received < 15_000) throw new Error(`page received ${received} bytes; coturn log:\n${coturn.log().split('\n').filter((l) => /TLS|SSL|tls|ssl|chrome/.test(l)).slice(-30).join('\n')}`);
        const local = await chrome.call((api) => api.selectedLocal(), null);
        expect(local).toMatchObject({ type: 'relay', relayProtocol: transport });
        expect(local!.port).toBeGreaterThanOrEqual(coturn.relayPorts[0]);
        expect(local!.port).toBeLessThanOrEqual(coturn.relayPorts[1]);
        const [levels] = (await chrome.call((api, f) => api.measure(f), [440, 1000])) as number[][];
        expect(levels[0], 'the 440 Hz tone at the page (dB)').toBeGreaterThan(-60);
        expect(levels[0] - levels[1]).toBeGreaterThan(20);
        // The other way: the page's fake microphone reaches the werift client through the relay.
        await waitFor(() => tone.heard().includes('chrome'), 15_000, 'chrome audio at the werift client');
        await sleep(1500);
        expect(meanPower(tone.audioFrom('chrome', 1))).toBeGreaterThan(1e-4);
        expect(sample(await metricsText(), 'turn_total_allocations', { type: transport.toUpperCase() })).toBeGreaterThanOrEqual(1);
        expect(h.errors).toEqual([]);
      } finally {
        await chrome?.close();
        await h.close();
      }
      // Chromium closed its TURN connection: coturn deletes the allocation.
      await until(async () => sample(await metricsText(), 'turn_total_allocations', { type: transport.toUpperCase() }) === 0, 15_000, 'the allocation gone');
    }, 90_000);
  }
});
