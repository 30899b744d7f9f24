import { VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import { G711_PAYLOAD_TYPE } from '../codec/g711.ts';
import { newRecordingId, type RecordingContinuation } from '../recording/layout.ts';
import { RoomRecorder, type ParticipantIdentity, type RecordingManifest } from '../recording/recorder.ts';
import type { AudioTap, InboundAudio } from './audio-tap.ts';
import type { MixRoomAudio } from './mix-room.ts';

const log = logger('recording-tap');

/** Recordings write their pages at least this often, so a crashed worker loses at most this much (docs/recording.md). */
export const RECORDING_FLUSH_MS = 1000;

export interface RecordingTapOptions {
  /** The server's recordings folder (config `recording.dir`). */
  dir: string;
  roomId: string;
  startedBy: string;
  /** Whose voice a participant id is (the room's participants as signalling joined them): names the files, manifest and tags. */
  identify?: (participantId: string) => ParticipantIdentity | undefined;
  /** `mix` rooms: the mixer whose room output is recorded as `00-mix.opus` (room-modes.ts `recordsMix`). */
  mixer?: MixRoomAudio | null;
  /** Flush period, ms (default RECORDING_FLUSH_MS). */
  flushMs?: number;
  /** Roll into a new segment every this many ms (config `recording.segmentSeconds`; 0 or unset: one segment). */
  segmentMs?: number;
  /** The recording this one continues (a room that moved, a replaced worker): the manifest's `continues`. */
  continues?: RecordingContinuation;
}

/**
 * The recorder tap: a running recording of one room (RoomRecorder, src/recording) fed by the
 * room's inbound audio, plus the mixer's room output when the mode records the mix. It flushes on
 * its own timer, independent of the speaker-ranking tick.
 */
export class RecordingTap implements AudioTap {
  readonly #recorder: RoomRecorder;
  readonly #timer: NodeJS.Timeout;
  readonly #unsubscribeMix: (() => void) | null;

  /** Starts the recording: RECORDING_FAILED when its folder cannot be made. */
  constructor(options: RecordingTapOptions) {
    const id = newRecordingId();
    try {
      this.#recorder = new RoomRecorder({ dir: options.dir, id, roomId: options.roomId, startedBy: options.startedBy, identify: options.identify, segmentMs: options.segmentMs, continues: options.continues });
    } catch (error) {
      throw new VoxError('RECORDING_FAILED', `cannot start recording in ${options.dir}: ${(error as Error).message}`, { cause: error });
    }
    const recorder = this.#recorder;
    this.#unsubscribeMix = options.mixer?.subscribeRoomMix((payload, timestamp) => recorder.onMix(payload, timestamp)) ?? null;
    this.#timer = setInterval(() => recorder.flush(), options.flushMs ?? RECORDING_FLUSH_MS);
    this.#timer.unref();
  }

  get manifest(): RecordingManifest {
    return this.#recorder.manifest;
  }

  /** Bytes the recording's files hold so far. */
  get bytes(): number {
    let bytes = 0;
    for (const f of this.#recorder.manifest.files) bytes += f.bytes;
    return bytes;
  }

  onAudio(from: string, a: Readonly<InboundAudio>): void {
    // Opus only: G.711 publishers (static payload types 0 and 8) would need transcoding to be recorded.
    if (a.payloadType === G711_PAYLOAD_TYPE.pcmu || a.payloadType === G711_PAYLOAD_TYPE.pcma) return;
    this.#recorder.onAudio(from, a.payload, a.ssrc, a.timestamp);
  }

  /** Ends the recording (files padded to now, closed, final manifest). Idempotent; never throws. */
  stop(stoppedBy: string | null): RecordingManifest {
    clearInterval(this.#timer);
    this.#unsubscribeMix?.();
    try {
      return this.#recorder.stop(stoppedBy);
    } catch (error) {
      log.error({ err: error, recording: this.#recorder.manifest.id }, 'recording could not be finished');
      return this.#recorder.manifest;
    }
  }

  close(): void {
    this.stop(null);
  }
}
