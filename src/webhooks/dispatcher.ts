import { randomUUID } from 'node:crypto';
import { logger } from '../log.ts';
import { counter, gauge } from '../metrics/registry.ts';
import type { ServerObserver } from '../signalling/observer.ts';
import { subscribeWebhookEvents, type WebhookEventName, type WebhookEvents, type WebhookPayload } from './events.ts';
import { SIGNATURE_HEADER, signWebhook } from './signature.ts';

/**
 * Delivers webhook events to the configured URLs (docs/recording.md "Webhooks"), off every room's
 * path: the observer listener only serialises the event and appends it to a queue, nothing awaits
 * a receiver. Per URL:
 *
 * - **Order per room.** Each room has its own FIFO; its head is delivered (retried) before the next
 *   event of that room is sent. Rooms are independent, so a room whose events fail does not hold
 *   up the others.
 * - **Retries with backoff.** Network errors, timeouts, 408, 429 and 5xx are retried after
 *   `retryBaseMs · 2^(attempt-1)` (capped at `retryMaxMs`, jittered to 50–100 %) up to
 *   `maxAttempts`; any other answer (a 4xx: the receiver refused it, e.g. a bad signature) is
 *   final. An event that runs out of attempts is dropped and counted, and the room's next event goes.
 * - **Bounded.** At most `maxQueue` events wait per URL (all rooms together); beyond that new
 *   events are dropped and counted, so a dead receiver costs bounded memory.
 * - **Bounded concurrency.** At most `concurrency` requests in flight per URL; a room waiting in
 *   backoff holds no slot.
 */

export interface WebhookOptions {
  urls: readonly string[];
  /** HMAC-SHA256 key (signature.ts). */
  key: string;
  /** Only these events are sent; default all. */
  events?: readonly WebhookEventName[];
  /** Per attempt, ms. Default 5000. */
  timeoutMs?: number;
  /** Attempts per event and URL, the first included. Default 8. */
  maxAttempts?: number;
  /** First retry delay, ms; doubles per attempt. Default 1000. */
  retryBaseMs?: number;
  /** Longest retry delay, ms. Default 60000. */
  retryMaxMs?: number;
  /** Events waiting per URL, all rooms together. Default 10000. */
  maxQueue?: number;
  /** Requests in flight per URL. Default 8. */
  concurrency?: number;
}

const log = logger('webhooks');

const metrics = {
  deliveries: counter('voxlink_webhook_deliveries_total', 'Webhook events by outcome: delivered, failed (attempts exhausted or refused), dropped (queue full)', [
    'result',
  ]),
  attempts: counter('voxlink_webhook_attempts_total', 'Webhook HTTP attempts by result: ok, retry (will be retried), error (final)', ['result']),
  queued: gauge('voxlink_webhook_queued', 'Webhook events waiting or in flight, all URLs'),
};

interface Delivery {
  id: string;
  event: WebhookEventName;
  body: string;
  attempts: number;
}

/** Retryable per RFC 9110 semantics: the receiver may accept it later. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

class Semaphore {
  #free: number;
  readonly #waiters: Array<() => void> = [];
  constructor(size: number) {
    this.#free = size;
  }
  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
  }
}

/** One receiver URL: its per-room queues and its request slots. */
class Endpoint {
  readonly url: string;
  readonly #rooms = new Map<string, Delivery[]>();
  readonly #slots: Semaphore;
  readonly #options: Required<Omit<WebhookOptions, 'urls' | 'events'>>;
  readonly #closed: AbortController;
  readonly #idleWaiters: Array<() => void> = [];
  readonly #running = new Set<Promise<void>>();
  #queued = 0;

  constructor(url: string, options: Required<Omit<WebhookOptions, 'urls' | 'events'>>, closed: AbortController) {
    this.url = url;
    this.#options = options;
    this.#slots = new Semaphore(options.concurrency);
    this.#closed = closed;
  }

  get queued(): number {
    return this.#queued;
  }

  enqueue(roomId: string, delivery: Delivery): void {
    if (this.#queued >= this.#options.maxQueue) {
      metrics.deliveries.inc({ result: 'dropped' });
      log.warn({ url: this.url, event: delivery.event, roomId, maxQueue: this.#options.maxQueue }, 'webhook queue full: event dropped');
      return;
    }
    this.#queued++;
    metrics.queued.inc();
    const queue = this.#rooms.get(roomId);
    if (queue) {
      queue.push(delivery);
      return;
    }
    this.#rooms.set(roomId, [delivery]);
    const running = this.#drainRoom(roomId).finally(() => this.#running.delete(running));
    this.#running.add(running);
  }

  /** Resolves when every room's delivery loop has ended (after close: once in-flight requests are aborted). */
  async stopped(): Promise<void> {
    await Promise.all([...this.#running]);
  }

  idle(): Promise<void> {
    if (this.#queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Delivers a room's events one after the other until its queue is empty. Never throws. */
  async #drainRoom(roomId: string): Promise<void> {
    const queue = this.#rooms.get(roomId)!;
    while (queue.length > 0 && !this.#closed.signal.aborted) {
      const delivery = queue[0]!;
      const retryIn = await this.#attempt(delivery, roomId);
      if (retryIn !== null && !this.#closed.signal.aborted) {
        await this.#sleep(retryIn);
        continue;
      }
      queue.shift();
      this.#done();
    }
    this.#rooms.delete(roomId);
    if (this.#closed.signal.aborted) for (let i = queue.length; i > 0; i--) this.#done();
  }

  #done(): void {
    this.#queued--;
    metrics.queued.dec();
    if (this.#queued === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** One attempt; returns the delay before the next one, or null when this delivery is finished. */
  async #attempt(delivery: Delivery, roomId: string): Promise<number | null> {
    await this.#slots.acquire();
    delivery.attempts++;
    let outcome: { status: number } | { error: string };
    // One controller per attempt with a plain timer: on Node 20 a signal from AbortSignal.timeout()
    // that only AbortSignal.any() refers to can be garbage-collected before it fires, leaving the
    // request without its timeout.
    const attempt = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort();
    }, this.#options.timeoutMs);
    const onClose = (): void => attempt.abort();
    this.#closed.signal.addEventListener('abort', onClose, { once: true });
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'VoxLink-Webhooks',
          'voxlink-event': delivery.event,
          'voxlink-delivery': delivery.id,
          'voxlink-attempt': String(delivery.attempts),
          [SIGNATURE_HEADER]: signWebhook(this.#options.key, delivery.body),
        },
        body: delivery.body,
        redirect: 'error',
        signal: attempt.signal,
      });
      // Free the connection; the receiver's answer body means nothing to us.
      await response.body?.cancel().catch(() => undefined);
      outcome = { status: response.status };
    } catch (err) {
      outcome = { error: timedOut ? `timed out after ${this.#options.timeoutMs} ms` : (err as Error).message };
    } finally {
      clearTimeout(timer);
      this.#closed.signal.removeEventListener('abort', onClose);
      this.#slots.release();
    }
    if ('status' in outcome && outcome.status >= 200 && outcome.status < 300) {
      metrics.attempts.inc({ result: 'ok' });
      metrics.deliveries.inc({ result: 'delivered' });
      return null;
    }
    const again = ('error' in outcome || retryable(outcome.status)) && delivery.attempts < this.#options.maxAttempts;
    const context = { url: this.url, event: delivery.event, delivery: delivery.id, roomId, attempt: delivery.attempts, ...outcome };
    if (again) {
      metrics.attempts.inc({ result: 'retry' });
      const delay = Math.min(this.#options.retryMaxMs, this.#options.retryBaseMs * 2 ** (delivery.attempts - 1)) * (0.5 + Math.random() / 2);
      log.info({ ...context, retryInMs: Math.round(delay) }, 'webhook delivery failed: will retry');
      return delay;
    }
    metrics.attempts.inc({ result: 'error' });
    if (!this.#closed.signal.aborted) {
      metrics.deliveries.inc({ result: 'failed' });
      log.warn(context, 'webhook delivery failed: event given up');
    }
    return null;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      const signal = this.#closed.signal;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

export class WebhookDispatcher {
  readonly #endpoints: Endpoint[];
  readonly #events: ReadonlySet<WebhookEventName> | null;
  readonly #closed = new AbortController();
  #unsubscribe: (() => void) | null = null;

  constructor(options: WebhookOptions) {
    if (options.key.length === 0) throw new Error('webhooks need a signing key');
    const resolved = {
      key: options.key,
      timeoutMs: options.timeoutMs ?? 5000,
      maxAttempts: options.maxAttempts ?? 8,
      retryBaseMs: options.retryBaseMs ?? 1000,
      retryMaxMs: options.retryMaxMs ?? 60_000,
      maxQueue: options.maxQueue ?? 10_000,
      concurrency: options.concurrency ?? 8,
    };
    this.#endpoints = options.urls.map((url) => new Endpoint(url, resolved, this.#closed));
    this.#events = options.events ? new Set(options.events) : null;
  }

  /** Sends the observer's events from now on (once per dispatcher). */
  attach(observer: ServerObserver): this {
    this.#unsubscribe?.();
    this.#unsubscribe = subscribeWebhookEvents(observer, (event, data) => this.send(event, data));
    return this;
  }

  /** Queues one event for every URL; returns at once. */
  send<K extends WebhookEventName>(event: K, data: WebhookEvents[K]): void {
    if (this.#closed.signal.aborted || (this.#events !== null && !this.#events.has(event))) return;
    const payload: WebhookPayload<K> = { id: randomUUID(), event, createdAt: Date.now(), roomId: data.roomId, data };
    const body = JSON.stringify(payload);
    for (const endpoint of this.#endpoints) endpoint.enqueue(data.roomId, { id: payload.id, event, body, attempts: 0 });
  }

  /** Events waiting or in flight, all URLs. */
  get queued(): number {
    return this.#endpoints.reduce((sum, e) => sum + e.queued, 0);
  }

  /** Resolves when every queue is empty (delivered or given up), or after `timeoutMs`. */
  async idle(timeoutMs = Infinity): Promise<boolean> {
    const all = Promise.all(this.#endpoints.map((e) => e.idle())).then(() => true);
    if (!Number.isFinite(timeoutMs)) return all;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops listening, gives the queues up to `drainMs` to empty, then aborts what is left. Idempotent. */
  async close(drainMs = 0): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#closed.signal.aborted) return;
    if (drainMs > 0) await this.idle(drainMs);
    const left = this.queued;
    if (left > 0) log.warn({ events: left }, 'webhooks closed with events undelivered');
    this.#closed.abort();
    await Promise.all(this.#endpoints.map((e) => e.stopped()));
  }
}
