import { open } from 'node:fs/promises';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

/**
 * Small uWS HTTP helpers shared by the server's own routes and the routes plugged into it
 * (src/recording/routes.ts). A handler that answers asynchronously tracks `res.onAborted` in an
 * `aborted` flag: uWS forbids touching an aborted response.
 */

/** One JSON answer (`status` is uWS's status line, e.g. '404 Not Found'); nothing once aborted. */
export function sendJson(res: HttpResponse, status: string, body: unknown, aborted?: { value: boolean }): void {
  if (aborted?.value) return;
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(body));
  });
}

/**
 * Sends a file in 64 KiB reads with uWS backpressure (`tryEnd` + `onWritable`), so a long recording
 * never sits in memory whole and a slow client only holds one chunk. The size is taken when the
 * request starts (a running recording keeps growing; the client gets what existed then).
 */
export async function streamFile(
  res: HttpResponse,
  path: string,
  headers: Record<string, string>,
  aborted: { value: boolean; onAbort: () => void },
): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const chunk = Buffer.allocUnsafe(64 * 1024);
    let position = 0;
    let started = false;
    while (!aborted.value) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - position), position);
      if (aborted.value) return;
      const data = chunk.subarray(0, bytesRead);
      let ok = false;
      let done = false;
      let writeOffset = 0;
      res.cork(() => {
        if (!started) {
          res.writeStatus('200 OK').writeHeader('cache-control', 'no-store');
          for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
          started = true;
        }
        writeOffset = res.getWriteOffset();
        [ok, done] = res.tryEnd(data, size);
      });
      position += bytesRead;
      if (done || (bytesRead === 0 && position >= size)) return;
      if (!ok) {
        // The socket is full: resume from where uWS stopped once it drains (the chunk stays untouched meanwhile).
        await new Promise<void>((resolve) => {
          aborted.onAbort = resolve;
          res.onWritable((offset) => {
            const [retryOk, retryDone] = res.tryEnd(data.subarray(offset - writeOffset), size);
            if (retryDone || retryOk) resolve();
            return retryOk;
          });
        });
      }
      if (bytesRead === 0) return; // the file shrank under us; the client sees a short body
    }
  } finally {
    await handle.close();
  }
}

/** The token of `Authorization: Bearer <token>`. */
export function bearer(req: HttpRequest): string | undefined {
  const header = req.getHeader('authorization');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

