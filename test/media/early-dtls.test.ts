import { afterEach, describe, expect, it } from 'vitest';
import { RTCPeerConnection } from 'werift';
import { installForgedDtlsFilter } from '../../src/media/werift-adapter.ts';

/**
 * The werift early-ClientHello race (docs/security.md "Soak, chaos and fuzz"): werift creates its
 * DTLS server only in RTCDtlsTransport.start(), so a ClientHello that arrives before it was lost and
 * the client had to retransmit (0.5 s, then 1 s later, …). Here the server side's start() is held
 * back so the client's first flights arrive before it, as on a starved host; with the adapter's
 * guard the newest of them is handed to the DTLS server as soon as it exists.
 */
// The client's flights go out about 0.1, 0.6, 1.6 and 3.1 s after ICE connects (werift's flight
// timer: 0.5, 1, 1.5 s): held 1.7 s, the server starts just after the third and, without the
// guard, waits ~1.4 s for the fourth.
const HOLD_MS = 1700;

async function pair(guard: boolean): Promise<{ server: RTCPeerConnection; client: RTCPeerConnection; startToConnectedMs: Promise<number> }> {
  const server = new RTCPeerConnection({ iceUseIpv6: false });
  const client = new RTCPeerConnection({ iceUseIpv6: false });
  server.addTransceiver('audio', { direction: 'sendonly' });
  if (guard) installForgedDtlsFilter(server);
  const dtls = server.dtlsTransports[0]!;
  const start = dtls.start.bind(dtls);
  let startedAt = 0;
  dtls.start = async () => {
    await new Promise((r) => setTimeout(r, HOLD_MS));
    startedAt = performance.now();
    return start();
  };
  const startToConnectedMs = new Promise<number>((resolve, reject) => {
    dtls.onStateChange.subscribe((s) => {
      if (s === 'connected') resolve(performance.now() - startedAt);
      if (s === 'failed') reject(new Error('DTLS failed'));
    });
  });
  server.onIceCandidate.subscribe((c) => c && void client.addIceCandidate(c));
  client.onIceCandidate.subscribe((c) => c && void server.addIceCandidate(c));
  await server.setLocalDescription(await server.createOffer());
  await client.setRemoteDescription(server.localDescription!);
  await client.setLocalDescription(await client.createAnswer());
  await server.setRemoteDescription(client.localDescription!);
  return { server, client, startToConnectedMs };
}

const open: RTCPeerConnection[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((pc) => pc.close()));
});

describe('a DTLS ClientHello that arrives before the server side starts DTLS', () => {
  it('is kept and handed to the DTLS server when it starts: connected without waiting for a retransmission', async () => {
    const guarded = await pair(true);
    open.push(guarded.server, guarded.client);
    const withGuard = await guarded.startToConnectedMs;
    // The client was the DTLS client (werift answers `active`) and had sent before the server started.
    expect(guarded.server.dtlsTransports[0]!.role).toBe('server');

    const plain = await pair(false);
    open.push(plain.server, plain.client);
    const withoutGuard = await plain.startToConnectedMs;
    console.log(`start() → connected: ${withGuard.toFixed(0)} ms with the guard, ${withoutGuard.toFixed(0)} ms without`);
    // With the guard the handshake runs at once (a few round trips and werift's key work); without
    // it, it waits for the client's next retransmission.
    expect(withGuard).toBeLessThan(700);
    expect(withoutGuard).toBeGreaterThan(withGuard + 700);
  }, 20_000);
});
