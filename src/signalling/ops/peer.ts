import type { SessionOpHandler } from './types.ts';

/** `peer`: a p2p/auto room's offer, answer or candidate for the other participant, or a client's `switched` (p2p.ts). */
export const peer: SessionOpHandler<'peer'> = (ctx, state, session, msg) => {
  ctx.p2p.relay(state, session, msg);
};
