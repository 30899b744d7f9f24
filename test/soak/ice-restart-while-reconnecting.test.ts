import { describe, expect, it } from 'vitest';
import { createNodeClient } from '../../src/client/node.ts';
import { NodeMediaClient, type MediaSignalChannel } from '../../src/client/media/node.ts';

type ClientMediaMessage = Parameters<MediaSignalChannel['send']>[0];

/**
 * Regression (found by the soak's restart chaos, bench/soak/chaos.ts): with the SDK wired as
 * docs/sdk.md shows (`signal: { send: (m) => client.sendMedia(m) }`), a media peer that failed
 * while signalling was reconnecting asked for an ICE restart from inside werift's state callback;
 * `sendMedia` threw CLIENT_NOT_CONNECTED there and the exception took the whole Node process down.
 * Now the request is dropped (the server offers again once signalling is back) and asked again
 * on the next failure.
 */
describe('a media restart request while signalling is down', () => {
  it('does not throw out of the media client, and the next request goes out once signalling works', async () => {
    const signalling = createNodeClient();
    let up = false;
    const sent: ClientMediaMessage[] = [];
    const media = new NodeMediaClient({
      room: 'r',
      signal: {
        send: (m) => {
          // The documented wiring: VoxClient refuses while it is not connected.
          if (!up) signalling.sendMedia(m);
          else sent.push(m);
        },
      },
    });
    const reasons: string[] = [];
    media.on('reconnect', (reason) => reasons.push(reason));
    try {
      expect(() => signalling.sendMedia({ op: 'media', room: 'r', kind: 'ice_restart' })).toThrow(/not connected/i);
      await expect(media.handle({ op: 'media_reconnect', room: 'r', reason: 'ice_failed' })).resolves.toBeUndefined();
      expect(reasons).toEqual(['ice_failed']);
      up = true;
      await media.handle({ op: 'media_reconnect', room: 'r', reason: 'ice_failed' });
      expect(sent).toEqual([{ op: 'media', room: 'r', kind: 'ice_restart' }]);
    } finally {
      await media.close();
    }
  });
});
