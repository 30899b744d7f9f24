import type { TemplatedApp, HttpResponse } from 'uWebSockets.js';
import type { AuthKeys } from '../auth/keys.ts';
import { grantsForRoom, verifyToken, type Identity } from '../auth/tokens.ts';
import { recordingDirOf, type VoxConfig } from '../config.ts';
import { isVoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { signallingMetrics } from '../metrics/registry.ts';
import { roomIdSchema } from '../protocol/messages.ts';
import { bearer, sendJson, streamFile } from '../signalling/http.ts';
import { recordingContentType } from './layout.ts';
import { recordingStoreFromConfig } from './storage.ts';
import type { RecordingStore } from './store.ts';

const log = logger('recordings');

/**
 * HTTP routes of the recordings (docs/recording.md), for
 * `startServer(config, { routes: [recordingRoutes(config, keys)] })`:
 *   GET /recordings?room=<room>     that room's recordings, newest first (JSON)
 *   GET /recordings/<id>/<file>     one file (Ogg Opus, or a transcript beside it): streamed from
 *                                   this node's disk, or a 302 to a short-lived signed link into
 *                                   the bucket when only the bucket has it (`recording.storage` s3)
 * Both need a token with the `record` grant for the room. With recording off both answer
 * 404 RECORDING_DISABLED. `store`: where recordings are read (default: the one the config says).
 */
export function recordingRoutes(config: VoxConfig, keys: AuthKeys, store?: RecordingStore): (app: TemplatedApp) => void {
  const recordingDir = recordingDirOf(config);
  const recordings = recordingDir === undefined ? undefined : (store ?? recordingStoreFromConfig(config, recordingDir));
  /** The identity of `Authorization: Bearer <token>`, or null with the 401 already sent. */
  const bearerIdentity = async (token: string | undefined, res: HttpResponse, aborted: { value: boolean }): Promise<Identity | null> => {
    if (!token) {
      sendJson(res, '401 Unauthorized', { error: 'AUTH_FAILED', message: 'Authorization: Bearer <token> required' }, aborted);
      return null;
    }
    try {
      return await verifyToken(token, keys.verify);
    } catch (err) {
      signallingMetrics.authFailures.inc({ reason: 'recordings' });
      sendJson(res, '401 Unauthorized', { error: 'AUTH_FAILED', message: isVoxError(err) ? err.message : 'token rejected' }, aborted);
      return null;
    }
  };

  return (app) => {
    // GET /recordings?room=<room>: that room's recordings, newest first (docs/recording.md).
    app.get('/recordings', (res, req) => {
      const token = bearer(req);
      const roomId = new URLSearchParams(req.getQuery() ?? '').get('room') ?? '';
      const aborted = { value: false };
      res.onAborted(() => {
        aborted.value = true;
      });
      if (recordingDir === undefined) {
        sendJson(res, '404 Not Found', { error: 'RECORDING_DISABLED', message: 'recording is off (recording.enabled)' }, aborted);
        return;
      }
      if (!roomIdSchema.safeParse(roomId).success) {
        sendJson(res, '400 Bad Request', { error: 'INVALID_MESSAGE', message: 'query parameter room=<room id> required' }, aborted);
        return;
      }
      void (async () => {
        const identity = await bearerIdentity(token, res, aborted);
        if (identity === null) return;
        if (!grantsForRoom(identity, roomId).has('record')) {
          sendJson(res, '403 Forbidden', { error: 'FORBIDDEN', message: `the token has no record grant for room "${roomId}"` }, aborted);
          return;
        }
        sendJson(res, '200 OK', { room: roomId, recordings: await recordings!.list(roomId) }, aborted);
      })().catch((err: unknown) => {
        if (isVoxError(err, 'RECORDING_STORAGE_UNAVAILABLE')) {
          log.warn({ err }, 'recordings bucket unavailable');
          sendJson(res, '503 Service Unavailable', { error: err.code, message: 'recording storage is unavailable; try again later' }, aborted);
          return;
        }
        log.error({ err }, 'listing recordings failed');
        sendJson(res, '500 Internal Server Error', { error: 'INTERNAL' }, aborted);
      });
    });
    // GET /recordings/<id>/<file>: one file, streamed or redirected to the bucket, for a token with the record grant for its room.
    app.get('/recordings/:id/:file', (res, req) => {
      const token = bearer(req);
      const id = req.getParameter(0) ?? '';
      const file = req.getParameter(1) ?? '';
      const aborted = { value: false, onAbort: (): void => undefined };
      res.onAborted(() => {
        aborted.value = true;
        aborted.onAbort();
      });
      if (recordingDir === undefined) {
        sendJson(res, '404 Not Found', { error: 'RECORDING_DISABLED', message: 'recording is off (recording.enabled)' }, aborted);
        return;
      }
      void (async () => {
        // The token first, then the disk: without one nothing is looked up, and "no such file" and
        // "not your room" look the same (404), so ids and room names cannot be probed.
        const identity = await bearerIdentity(token, res, aborted);
        if (identity === null) return;
        const found = await recordings!.find(id, file).catch((err: unknown) => {
          if (isVoxError(err, 'RECORDING_NOT_FOUND')) return null;
          throw err;
        });
        if (found === null || !grantsForRoom(identity, found.roomId).has('record')) {
          sendJson(res, '404 Not Found', { error: 'NOT_FOUND', message: 'no such recording file' }, aborted);
          return;
        }
        if (aborted.value) return;
        if (found.url !== undefined) {
          // The bytes come from the bucket, not through this node's event loop (docs/recording.md "Downloads").
          const url = found.url;
          res.cork(() => {
            res.writeStatus('302 Found').writeHeader('location', url).writeHeader('cache-control', 'no-store').end();
          });
          return;
        }
        await streamFile(res, found.path, { 'content-type': recordingContentType(file), 'content-disposition': `attachment; filename="${id}-${file}"` }, aborted);
      })().catch((err: unknown) => {
        if (isVoxError(err, 'RECORDING_STORAGE_UNAVAILABLE')) {
          log.warn({ err }, 'recordings bucket unavailable');
          sendJson(res, '503 Service Unavailable', { error: err.code, message: 'recording storage is unavailable; try again later' }, aborted);
          return;
        }
        log.error({ err }, 'serving a recording failed');
        sendJson(res, '500 Internal Server Error', { error: 'INTERNAL' }, aborted);
      });
    });

  };
}
