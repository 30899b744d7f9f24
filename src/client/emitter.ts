/**
 * A small typed event emitter that runs in Node and in browsers (no `node:events`).
 * Event maps are `{ name: [arg1, arg2] }` tuples, as in mediasoup's `EnhancedEventEmitter`.
 * A listener that throws is reported through `onListenerError` and never stops the other
 * listeners or the emitter itself: an app bug must not wedge the SDK's state machine.
 */
export type EventMap = Record<string, unknown[]>;
export type Listener<A extends unknown[]> = (...args: A) => void;

export class TypedEmitter<E extends EventMap> {
  readonly #listeners = new Map<keyof E, Set<Listener<never[]>>>();
  #onListenerError: (error: unknown, event: keyof E) => void;

  constructor(onListenerError?: (error: unknown, event: keyof E) => void) {
    this.#onListenerError =
      onListenerError ??
      ((error) => {
        // Surface it without throwing into our own code path; queueMicrotask keeps the emit going.
        queueMicrotask(() => {
          throw error;
        });
      });
  }

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as unknown as Listener<never[]>);
    return this;
  }

  once<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const wrapper = ((...args: E[K]) => {
      this.off(event, wrapper);
      listener(...args);
    }) as Listener<E[K]>;
    return this.on(event, wrapper);
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    this.#listeners.get(event)?.delete(listener as unknown as Listener<never[]>);
    return this;
  }

  removeAllListeners(event?: keyof E): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Returns whether any listener was registered. */
  emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return false;
    // Copy so a listener that removes itself (or others) does not skip anyone in this round.
    for (const listener of [...set]) {
      try {
        (listener as unknown as Listener<E[K]>)(...args);
      } catch (error) {
        try {
          this.#onListenerError(error, event);
        } catch {
          // The error hook itself failed; nothing sensible is left to do but keep emitting.
        }
      }
    }
    return true;
  }
}
