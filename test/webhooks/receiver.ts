import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature, type SignatureCheck } from '../../src/webhooks/index.ts';
import type { WebhookPayload } from '../../src/webhooks/events.ts';

/** One request as a real receiver saw it: raw body, headers, the signature verified over the raw bytes. */
export interface Received {
  at: number;
  payload: WebhookPayload;
  raw: Buffer;
  headers: IncomingMessage['headers'];
  signature: SignatureCheck;
}

/** Decides the answer to one request; may take its time (a slow receiver). */
export type Responder = (payload: WebhookPayload, attempt: number, res: ServerResponse) => void | Promise<void>;

/** A local HTTP receiver on an ephemeral port, verifying every request with `key`. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  readonly #server: Server;
  readonly #key: string;
  responder: Responder = (_p, _a, res) => void res.writeHead(204).end();

  private constructor(key: string) {
    this.#key = key;
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const payload = JSON.parse(raw.toString('utf8')) as WebhookPayload;
        const signature = verifyWebhookSignature(this.#key, raw, req.headers['voxlink-signature'] as string | undefined);
        this.received.push({ at: Date.now(), payload, raw, headers: req.headers, signature });
        void Promise.resolve(this.responder(payload, Number(req.headers['voxlink-attempt']), res)).catch(() => res.destroy());
      });
    });
  }

  static async start(key: string): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(key);
    await new Promise<void>((resolve) => receiver.#server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  /** Distinct events (retries collapsed by delivery id), in arrival order of their first success-or-last attempt. */
  events(room?: string): WebhookPayload[] {
    const seen = new Set<string>();
    const out: WebhookPayload[] = [];
    for (const r of this.received) {
      if (seen.has(r.payload.id) || (room !== undefined && r.payload.roomId !== room)) continue;
      seen.add(r.payload.id);
      out.push(r.payload);
    }
    return out;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
