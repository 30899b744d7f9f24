import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Redirect tickets: `base64url(JSON {r: room, n: node, e: expiry ms}) "." base64url(HMAC-SHA256)`.
 * The node that routes a join signs one for the room's owner; the owner admits a join carrying a
 * valid ticket for itself without asking Redis (so a routed join costs the owner no Redis round
 * trip, and a redirect cannot loop). Every node shares the key (cluster.secret).
 */
export interface TicketClaims {
  room: string;
  node: string;
  expiresAt: number;
}

export function signTicket(key: Buffer, claims: TicketClaims): string {
  const body = Buffer.from(JSON.stringify({ r: claims.room, n: claims.node, e: claims.expiresAt })).toString('base64url');
  return `${body}.${mac(key, body).toString('base64url')}`;
}

/** The claims of a well-signed, unexpired ticket; undefined for anything else (never throws). */
export function verifyTicket(key: Buffer, ticket: string, now = Date.now()): TicketClaims | undefined {
  const dot = ticket.indexOf('.');
  if (dot <= 0) return undefined;
  const body = ticket.slice(0, dot);
  const given = Buffer.from(ticket.slice(dot + 1), 'base64url');
  const expected = mac(key, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { r?: unknown; n?: unknown; e?: unknown };
    if (typeof c.r !== 'string' || typeof c.n !== 'string' || typeof c.e !== 'number' || c.e < now) return undefined;
    return { room: c.r, node: c.n, expiresAt: c.e };
  } catch {
    return undefined;
  }
}

function mac(key: Buffer, body: string): Buffer {
  return createHmac('sha256', key).update('voxlink-ticket-v1\n').update(body).digest();
}
