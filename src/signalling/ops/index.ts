import type { ConnectionOp, ConnectionOpHandler, SessionOp, SessionOpHandler } from './types.ts';
import { join, leave } from './join.ts';
import { media, record } from './media.ts';
import { mute, unmute } from './mute.ts';
import { peer } from './peer.ts';
import { heartbeat, hello, refresh, resume } from './session.ts';

/**
 * The op handler tables, one entry per client op of the protocol (protocol/messages.ts
 * clientSchemas): an op added to the protocol fails the build here until it has a handler.
 * docs/architecture.md "Adding a signalling op".
 */
export const connectionOps: { readonly [K in ConnectionOp]: ConnectionOpHandler<K> } = { hello, resume };

export const sessionOps: { readonly [K in SessionOp]: SessionOpHandler<K> } = {
  heartbeat,
  join,
  leave,
  mute,
  unmute,
  media,
  record,
  refresh,
  peer,
};

export type { ConnectionOp, SessionOp } from './types.ts';
