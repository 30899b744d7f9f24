import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (docs/recording.md "Webhooks"): HMAC-SHA256 with the configured key over
 * `<timestamp>.<raw body>`, sent as
 *
 *     VoxLink-Signature: t=<unix seconds>,v1=<lower-case hex>
 *
 * The timestamp is inside the MAC, so a captured request cannot be replayed later with a fresh
 * timestamp; a receiver refuses timestamps older than its tolerance (5 minutes here) and, to be
 * strict, remembers the `VoxLink-Delivery` ids it has seen within that window. Each attempt of a
 * delivery is signed anew (same body and delivery id, new timestamp).
 */

export const SIGNATURE_HEADER = 'voxlink-signature';
/** Default age beyond which `verifyWebhookSignature` refuses a signature, seconds. */
export const DEFAULT_TOLERANCE_SEC = 300;

function mac(key: string, timestampSec: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${timestampSec}.`).update(body).digest();
}

/** The `VoxLink-Signature` header value for `body` signed at `timestampSec`. */
export function signWebhook(key: string, body: string | Uint8Array, timestampSec = Math.floor(Date.now() / 1000)): string {
  return `t=${timestampSec},v1=${mac(key, timestampSec, body).toString('hex')}`;
}

export type SignatureCheck = { ok: true; timestampSec: number } | { ok: false; reason: 'malformed' | 'mismatch' | 'expired' };

/**
 * What a receiver does (in Node; docs/recording.md shows it in a few lines): parse the header,
 * recompute the MAC over the raw body bytes as received (not re-serialised JSON), compare in
 * constant time, and refuse a timestamp more than `toleranceSec` away from now.
 */
export function verifyWebhookSignature(
  key: string,
  body: string | Uint8Array,
  header: string | null | undefined,
  options: { toleranceSec?: number; nowSec?: number } = {},
): SignatureCheck {
  const match = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (match === null) return { ok: false, reason: 'malformed' };
  const timestampSec = Number(match[1]);
  const given = Buffer.from(match[2]!, 'hex');
  if (!timingSafeEqual(given, mac(key, timestampSec, body))) return { ok: false, reason: 'mismatch' };
  const now = options.nowSec ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestampSec) > (options.toleranceSec ?? DEFAULT_TOLERANCE_SEC)) return { ok: false, reason: 'expired' };
  return { ok: true, timestampSec };
}
