/** Old-path payloads remembered, and new-path packets held, during a splice (1 s of 20 ms frames). */
const CAPACITY = 50;

/**
 * Where the Node SDK hands playback from one path to the other (the direct link and the server's
 * slots, docs/media.md "Peer to peer") so that no frame of the other participant is lost or played
 * twice. The server forwards Opus payloads unchanged, so the same frame is the same bytes on both
 * paths: while the old path plays, the new path's packets of that participant are held; the first
 * payload the two paths share is the splice point. New path behind: its packets already played are
 * dropped. New path ahead: the held packets after the point play at once. Payloads that never
 * match (the other end encodes each path separately, as browsers do) switch at `expire()`,
 * dropping what was held: the old path played that time already.
 */
export class PathSplice {
  readonly peer: string;
  readonly #onSwitch: () => void;
  readonly #played: Buffer[] = [];
  #held: { payload: Buffer; play: () => void }[] = [];
  #switched = false;
  readonly switched: Promise<void>;
  #resolve!: () => void;

  constructor(peer: string, onSwitch: () => void) {
    this.peer = peer;
    this.#onSwitch = onSwitch;
    this.switched = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** The old path played this packet of `participantId`. */
  oldPlayed(participantId: string | null, payload: Buffer): void {
    if (this.#switched || participantId !== this.peer) return;
    const at = this.#held.findIndex((h) => h.payload.equals(payload));
    if (at >= 0) {
      // The new path is ahead: what it holds after this frame has not been played yet.
      const rest = this.#held.slice(at + 1);
      this.#switch();
      for (const h of rest) h.play();
      return;
    }
    this.#played.push(payload);
    if (this.#played.length > CAPACITY) this.#played.shift();
  }

  /** A packet of the new path before the switch: held, or the splice point; `play` plays it. */
  newArrived(participantId: string | null, payload: Buffer, play: () => void): void {
    if (this.#switched) {
      if (!this.isRepeat(participantId, payload)) play();
      return;
    }
    if (participantId !== this.peer) return;
    if (this.#played.some((p) => p.equals(payload))) {
      // The new path is behind (or level): from here on it plays, minus what the old one played.
      this.#switch();
      return;
    }
    this.#held.push({ payload, play });
    if (this.#held.length > CAPACITY) this.#held.shift();
  }

  /** After the switch: a new-path packet the old path already played. */
  isRepeat(participantId: string | null, payload: Buffer): boolean {
    return participantId === this.peer && this.#played.some((p) => p.equals(payload));
  }

  /** No shared payload in time: switch now; what was held is dropped (the old path played that time). */
  expire(): void {
    if (!this.#switched) this.#switch();
  }

  #switch(): void {
    this.#switched = true;
    this.#held = [];
    this.#onSwitch();
    this.#resolve();
  }
}
