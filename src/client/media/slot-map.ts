import type { ServerMediaMessage } from '../../protocol/index.ts';

type SlotsMessage = Extract<ServerMediaMessage, { op: 'slots' }>;
type SpeakingMessage = Extract<ServerMediaMessage, { op: 'speaking' }>;

/**
 * The client's view of its audio slots and of who is speaking, from `slots` and `speaking`
 * messages. Shared by the browser and Node media clients. Slot k is the (k+1)-th m-line of the
 * server's offer (m-line 0 is the client's microphone), see docs/media.md.
 */
export class SlotMap {
  readonly #slots: (string | null)[] = [];
  readonly #speaking = new Map<string, number>();

  /** Applies a `slots` message; returns the slots whose occupant changed. */
  applySlots(message: SlotsMessage): number[] {
    const changed: number[] = [];
    for (const { slot, participantId } of message.slots) {
      while (this.#slots.length <= slot) this.#slots.push(null);
      if (this.#slots[slot] !== participantId) {
        this.#slots[slot] = participantId;
        changed.push(slot);
      }
    }
    return changed;
  }

  applySpeaking(message: SpeakingMessage): void {
    if (message.speaking) this.#speaking.set(message.participantId, message.level);
    else this.#speaking.delete(message.participantId);
  }

  /** Who is in slot k now (null: nobody). */
  occupant(slot: number): string | null {
    return this.#slots[slot] ?? null;
  }

  /** The slot carrying `participantId`, or -1. */
  slotOf(participantId: string): number {
    return this.#slots.indexOf(participantId);
  }

  get slots(): readonly (string | null)[] {
    return this.#slots;
  }

  /** Participants currently speaking, with their last reported level (0…1). */
  get speaking(): ReadonlyMap<string, number> {
    return this.#speaking;
  }
}
