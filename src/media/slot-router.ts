import type { SlotStream } from './slot-stream.ts';

/** One outgoing slot of one subscriber. The room extends it with the transport it sends on. */
export interface SlotBinding {
  readonly subscriberId: string;
  readonly slot: number;
  readonly stream: SlotStream;
}

export interface SlotAssignment {
  slot: number;
  participantId: string | null;
}

const NO_ROUTES: readonly never[] = [];

/** The free binding with the lowest slot index, or undefined. */
function lowestFree<B extends SlotBinding>(bindings: readonly B[]): B | undefined {
  let best: B | undefined;
  for (const b of bindings) if (b.stream.source === null && (best === undefined || b.slot < best.slot)) best = b;
  return best;
}

/**
 * Maps the loudest K publishers onto each subscriber's K slots (docs/architecture.md, "The way of one audio packet"; docs/media.md).
 *
 * Per subscriber, the wanted set is the first K of the ranking that may be forwarded, minus the
 * subscriber themself (nobody hears their own voice). With `fillIn` (the default, `sfu` rooms)
 * the next one in the ranking takes that place; without it (`hybrid` rooms) a subscriber who is
 * one of the room's top K gets K − 1 slots, because everyone below the top K reaches them through
 * the mix and would otherwise be heard twice. A publisher who stays wanted keeps the slot they
 * are in, so a change in the ranking moves as few slots as possible; a newcomer takes the lowest
 * free slot (by slot index, whatever order the bindings came in). `routes(publisher)` is the
 * per-packet lookup: the slots currently carrying them.
 */
export class SlotRouter<B extends SlotBinding = SlotBinding> {
  readonly slots: number;
  readonly fillIn: boolean;
  readonly #subscribers = new Map<string, B[]>();
  #routes = new Map<string, B[]>();
  #switches = 0;
  readonly #top: string[] = [];

  constructor(slots: number, options: { fillIn?: boolean } = {}) {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`slots must be a positive integer, got ${slots}`);
    this.slots = slots;
    this.fillIn = options.fillIn ?? true;
  }

  addSubscriber(subscriberId: string, bindings: B[]): void {
    if (bindings.length !== this.slots) throw new RangeError(`expected ${this.slots} slot bindings, got ${bindings.length}`);
    this.#subscribers.set(subscriberId, bindings);
  }

  removeSubscriber(subscriberId: string): void {
    const bindings = this.#subscribers.get(subscriberId);
    if (bindings === undefined) return;
    this.#subscribers.delete(subscriberId);
    this.#rebuildRoutes();
  }

  hasSubscriber(subscriberId: string): boolean {
    return this.#subscribers.has(subscriberId);
  }

  /**
   * Re-maps every subscriber's slots from `ranking` (loudest first). `eligible(id)` says whether
   * a publisher may be forwarded at all (publish grant, not muted). Returns the subscribers whose
   * slot map changed, so the caller can tell them (`slots` message).
   */
  update(ranking: readonly string[], eligible: (participantId: string) => boolean): string[] {
    const changed: string[] = [];
    const wanted: string[] = [];
    const top = this.#top;
    top.length = 0;
    if (!this.fillIn) {
      // The room's top K, the same for every subscriber (the set a hybrid room keeps out of its mix).
      for (let i = 0; i < ranking.length && top.length < this.slots; i++) {
        if (eligible(ranking[i])) top.push(ranking[i]);
      }
    }
    for (const [subscriberId, bindings] of this.#subscribers) {
      wanted.length = 0;
      if (this.fillIn) {
        for (let i = 0; i < ranking.length && wanted.length < this.slots; i++) {
          const id = ranking[i];
          if (id !== subscriberId && eligible(id)) wanted.push(id);
        }
      } else {
        for (const id of top) if (id !== subscriberId) wanted.push(id);
      }
      let dirty = false;
      // Free the slots whose occupant is no longer wanted; keep the others where they are.
      for (const b of bindings) {
        const source = b.stream.source;
        if (source !== null && !wanted.includes(source)) {
          b.stream.setSource(null);
          dirty = true;
        }
      }
      // Newcomers, loudest first, each into the lowest free slot: occupied slots stay packed from
      // slot 0 up as far as the no-move rule above allows.
      for (const id of wanted) {
        if (bindings.some((b) => b.stream.source === id)) continue;
        const free = lowestFree(bindings);
        if (free === undefined) break;
        free.stream.setSource(id);
        this.#switches++;
        dirty = true;
      }
      if (dirty) changed.push(subscriberId);
    }
    if (changed.length > 0) this.#rebuildRoutes();
    return changed;
  }

  /** The slots currently carrying `publisherId` (empty array, never undefined). Do not mutate. */
  routes(publisherId: string): readonly B[] {
    return this.#routes.get(publisherId) ?? NO_ROUTES;
  }

  assignments(subscriberId: string): SlotAssignment[] {
    const bindings = this.#subscribers.get(subscriberId);
    if (bindings === undefined) return [];
    return bindings.map((b) => ({ slot: b.slot, participantId: b.stream.source })).sort((x, y) => x.slot - y.slot);
  }

  /** Times a slot got a new occupant (assignments into empty slots included). */
  get switches(): number {
    return this.#switches;
  }

  toJSON(): { subscribers: number; switches: number; routes: Record<string, number> } {
    const routes: Record<string, number> = {};
    for (const [id, list] of this.#routes) routes[id] = list.length;
    return { subscribers: this.#subscribers.size, switches: this.#switches, routes };
  }

  #rebuildRoutes(): void {
    const routes = new Map<string, B[]>();
    for (const bindings of this.#subscribers.values()) {
      for (const b of bindings) {
        const source = b.stream.source;
        if (source === null) continue;
        let list = routes.get(source);
        if (list === undefined) routes.set(source, (list = []));
        list.push(b);
      }
    }
    this.#routes = routes;
  }
}
