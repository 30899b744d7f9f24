import type { TemplatedApp, HttpResponse } from 'uWebSockets.js';
import type { AuthKeys } from '../auth/keys.ts';
import { grantsForRoom, verifyToken, type Identity } from '../auth/tokens.ts';
import { recordingDirOf, type VoxConfig } from '../config.ts';
import { isVoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { signallingMetrics } from '../metrics/registry.ts';
import { roomIdSchema } from '../protocol/messages.ts';
import { bearer, sendJson, streamFile } from '../signalling/http.ts';
import { findRecordingFile, listRecordings } from './store.ts';

const log = logger('recordings');

/**
 * HTTP routes of the recordings (docs/recording.md), for
 * `startServer(config, { routes: [recordingRoutes(config, keys)] })`:
 *   GET /recordings?room=<room>     that room's recordings, newest first (JSON)
 *   GET /recordings/<id>/<file>     one Ogg Opus file, streamed
 * Both need a token with the `record` grant for the room. With recording off both answer
 * 404 RECORDING_DISABLED.
 */
export function recordingRoutes(config: VoxConfig, keys: AuthKeys): (app: TemplatedApp) => void {
  const recordingDir = recordingDirOf(config);
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
        const recordings = await listRecordings(recordingDir, roomId);
        sendJson(res, '200 OK', { room: roomId, recordings }, aborted);
      })().catch((err: unknown) => {
        log.error({ err }, 'listing recordings failed');
        sendJson(res, '500 Internal Server Error', { error: 'INTERNAL' }, aborted);
      });
    });
    // GET /recordings/<id>/<file>: one Ogg Opus file (audio/ogg), streamed, for a token with the record grant for its room.
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
        const found = await findRecordingFile(recordingDir, id, file).catch((err: unknown) => {
          if (isVoxError(err, 'RECORDING_NOT_FOUND')) return null;
          throw err;
        });
        if (found === null || !grantsForRoom(identity, found.roomId).has('record')) {
          sendJson(res, '404 Not Found', { error: 'NOT_FOUND', message: 'no such recording file' }, aborted);
          return;
        }
        if (aborted.value) return;
        await streamFile(res, found.path, { 'content-type': 'audio/ogg; codecs=opus', 'content-disposition': `attachment; filename="${id}-${file}"` }, aborted);
      })().catch((err: unknown) => {
        log.error({ err }, 'serving a recording failed');
        sendJson(res, '500 Internal Server Error', { error: 'INTERNAL' }, aborted);
      });
    });

  };
}
