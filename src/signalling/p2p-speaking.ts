import { SpeakerDetector } from '../media/speaker-detector.ts';
import { AUDIO_LEVEL_SILENCE } from '../media/rtp.ts';
import { PEER_LEVEL_INTERVAL_MS } from '../protocol/messages.ts';
import type { SignallingContext } from './context.ts';

/** Decay and forget idle speakers this often (SpeakerDetector.tick: every 50–200 ms). */
const TICK_MS = 100;

/**
 * Speaking events of direct rooms. While two participants talk directly the server sees no RTP
 * and its media rooms' speaker detection has nothing to read, so each SDK reports its own
 * microphone level over signalling (`peer` kind `level`) and this runs the same SpeakerDetector
 * (same thresholds and smoothing as a media room's) on the reports. A report of a muted
 * participant is ignored. Changes go out as a media room's do: presence's `speaking` flag and an
 * ephemeral `speaking` message to the room.
 */
export class DirectSpeaking {
  readonly #ctx: SignallingContext;
  readonly #rooms = new Map<string, SpeakerDetector>();
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(ctx: SignallingContext) {
    this.#ctx = ctx;
  }

  /** One level report (RFC 6464 −dBov) of `participantId` in the direct room `roomId`. */
  report(roomId: string, participantId: string, level: number): void {
    if (this.#ctx.presence.participant(roomId, participantId)?.muted !== false) return;
    let detector = this.#rooms.get(roomId);
    if (!detector) {
      detector = new SpeakerDetector();
      this.#rooms.set(roomId, detector);
    }
    // A report stands for PEER_LEVEL_INTERVAL_MS of audio; the detector weighs it so.
    detector.process(participantId, level, performance.now(), PEER_LEVEL_INTERVAL_MS);
    this.#flush(roomId, detector);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), TICK_MS);
      this.#timer.unref?.();
    }
  }

  /** The participant left, or was muted: it stops speaking now. */
  forget(roomId: string, participantId: string): void {
    const detector = this.#rooms.get(roomId);
    if (!detector) return;
    const speaking = detector.isSpeaking(participantId);
    detector.remove(participantId);
    if (speaking) this.#send(roomId, participantId, false, AUDIO_LEVEL_SILENCE);
  }

  /**
   * The room's audio goes through the server (or the room closed): its media room detects speakers
   * from RTP from now on, so whoever spoke here stops, and the media room's next event says more.
   */
  reset(roomId: string): void {
    const detector = this.#rooms.get(roomId);
    if (!detector) return;
    this.#rooms.delete(roomId);
    for (const { participantId, speaking } of detector.toJSON().speakers) {
      if (speaking) this.#send(roomId, participantId, false, AUDIO_LEVEL_SILENCE);
    }
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#rooms.clear();
  }

  #tick(): void {
    const now = performance.now();
    for (const [roomId, detector] of this.#rooms) {
      detector.tick(now);
      this.#flush(roomId, detector);
      // Everyone forgotten (silent for a while): no detector, and no timer once no room has one.
      if (detector.ranking().length === 0) this.#rooms.delete(roomId);
    }
    if (this.#rooms.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  #flush(roomId: string, detector: SpeakerDetector): void {
    for (const change of detector.takeSpeakingChanges()) this.#send(roomId, change.participantId, change.speaking, change.level);
  }

  #send(roomId: string, participantId: string, speaking: boolean, level: number): void {
    if (!this.#ctx.presence.participant(roomId, participantId)) return;
    this.#ctx.presence.setSpeaking(roomId, participantId, speaking);
    this.#ctx.out.publishEphemeral(roomId, { op: 'speaking', room: roomId, participantId, speaking, level: linearLevel(level) });
  }
}

/** RFC 6464 level (−dBov) → the protocol's linear 0…1 scale (`speaking.level`), as media rooms send it. */
function linearLevel(level: number): number {
  if (level >= AUDIO_LEVEL_SILENCE) return 0;
  return Math.round(10 ** (-level / 20) * 1000) / 1000;
}
