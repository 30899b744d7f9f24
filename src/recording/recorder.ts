import { closeSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { OggOpusWriter, opusPacketSamples } from '../codec/ogg.ts';
import { isVoxError, VoxError } from '../errors.ts';
import { logger } from '../log.ts';
import {
  MIX_TRACK,
  RECORDING_ID_SHAPE,
  recordingFileName,
  recordingPaths,
  segmentFileName,
  type RecordingFile,
  type RecordingManifest,
  type RecordingContinuation,
  type RecordingParticipant,
} from './layout.ts';

export { MIX_TRACK, type RecordingFile, type RecordingManifest };

/**
 * Recording of one room, inside the room's worker: each publisher's Opus RTP payloads remuxed into
 * its own Ogg Opus file (RFC 7845) without re-encoding, so it costs a copy per packet, not a codec.
 *
 * Layout (layout.ts, docs/recording.md): `<dir>/<id>/manifest.json` plus one `<n>-<participant>.opus`
 * per publisher heard while recording. Every file starts at the recording's start and ends at its stop:
 * time without packets (before a participant is first heard, losses, DTX, mute, after they left) is
 * filled, from the RTP timestamps within a stream and by wall clock across streams. The files line
 * up to within each sender's network delay and clock drift, so they can be mixed offline.
 *
 * RTP timestamps come from the sender, so they are never trusted alone: a gap is filled only as far
 * as wall clock allows (time since the previous packet plus a slack), and no file runs ahead of
 * the time since the recording started. A publisher sending wild timestamps gets its packets
 * placed by wall clock; it cannot make the recorder write more than real time.
 *
 * Crash safety: pages are closed and written with a synchronous write when the recorder tap's own
 * timer (src/media/recording-tap.ts) calls `flush()` every second, together with the manifest
 * (write + rename); a worker that dies loses at most that much.
 *
 * Segments (`segmentMs`): at the first flush after a segment's time is up, every file is padded to
 * that moment, ended and closed (`complete` in the manifest, so the storage backend uploads it at
 * once), and the next packets open new files (`01-alice.s1.opus`, …) that start where the segment
 * ended. Every file of segment n spans that segment (to within the last packet written before the
 * roll, ≤ one frame past its end); `offsetSamples` places it on the recording's timeline.
 */

export interface ParticipantIdentity {
  /** null when the media plane was not told (a direct media-plane join without signalling). */
  userId: string | null;
  name: string;
}

export interface RoomRecorderOptions {
  /** The server's recordings folder; the recording gets `<dir>/<id>/`. */
  dir: string;
  id: string;
  roomId: string;
  startedBy: string;
  /**
   * Whose voice a participant id is (token `sub` and display name), asked once per file when the
   * participant is first heard: it names the file and goes into the manifest and the OpusTags.
   */
  identify?: (participantId: string) => ParticipantIdentity | undefined;
  /** Roll into a new segment every this many ms (0 or unset: one segment). */
  segmentMs?: number;
  /** The recording this one continues (the manifest's `continues`). */
  continues?: RecordingContinuation;
  /** Milliseconds on a monotonic clock (default `performance.now`); tests inject their own. */
  now?: () => number;
}

const log = logger('recorder');

/** RTP clock of Opus (RFC 7587 §4.1): always 48 kHz, whatever the codec's internal rate. */
const OPUS_RTP_HZ = 48_000;
/**
 * How far RTP time may run ahead of wall clock between two packets of a stream (jitter, a burst
 * after a stall) before the packet is placed by wall clock instead: 200 ms.
 */
const SLACK_SAMPLES = 0.2 * OPUS_RTP_HZ;
/** Packets behind the expected timestamp are late or duplicates and dropped; this many in a row mean the stream restarted. */
const RESTART_AFTER_BEHIND = 50;
/**
 * Gaps up to this long (3 frames) are losses: filled with "lost frame" packets, which the decoder
 * conceals (PLC). Longer ones get real silence: PLC over a long gap keeps a noise floor ~30 dB
 * under the voice instead of going quiet.
 */
const MAX_CONCEALED_SAMPLES = 3 * 960;
/**
 * Silence as CELT frames with the silence flag set (RFC 6716 §4.3, the first symbol of a CELT
 * frame): `ff fe` is what libopus's own encoder emits for 20 ms of digital zeros, and it decodes to
 * exact zeros. Long gaps use a code-3 packet of six such frames (120 ms, RFC 6716 §3.2.5: TOC
 * config 31 = CELT fullband 20 ms, code 3, then frame count 6, CBR, no padding), so an hour of
 * silence is 30,000 packets, not 180,000; the rest is filled with single 20 ms frames.
 */
const SILENCE_120_MONO = Uint8Array.of(0xfb, 0x06, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe);
const SILENCE_120_STEREO = Uint8Array.of(0xff, 0x06, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe, 0xff, 0xfe);
const SILENCE_20_MONO = Uint8Array.of(0xf8, 0xff, 0xfe);
const SILENCE_20_STEREO = Uint8Array.of(0xfc, 0xff, 0xfe);

interface Track {
  readonly info: RecordingFile;
  /** Where the file starts on the recording's timeline (its segment's start), 48 kHz samples. */
  readonly origin: number;
  readonly fd: number;
  readonly writer: OggOpusWriter;
  /** RTP timestamp where the next packet is expected (last packet's timestamp + its duration), or -1 before the first. */
  nextTimestamp: number;
  /** SSRC of the stream being written: a media reconnect brings a new SSRC and a new random timestamp base. */
  ssrc: number;
  /** When the last packet was written (recorder clock, ms). */
  lastAt: number;
  /** Packets in a row that were behind the expected timestamp. */
  behind: number;
  readonly silence120: Uint8Array;
  readonly silence20: Uint8Array;
  /** The file could not be written (disk full, folder gone): the track stops, the others go on. */
  failed: boolean;
}

export class RoomRecorder {
  readonly manifest: RecordingManifest;
  readonly #dir: string;
  readonly #folder: string;
  readonly #manifestPath: string;
  /** The open files of the current segment. */
  readonly #tracks = new Map<string, Track>();
  /** Everyone heard so far (their file number and identity stay the same across segments). */
  readonly #heard = new Map<string, RecordingParticipant>();
  readonly #segmentMs: number;
  /** Current segment: its index and start (48 kHz samples, recorder clock ms). */
  #segment = 0;
  #segmentStart = 0;
  #segmentStartedAt = 0;
  /** Participants whose file could not be created: not retried per packet. */
  readonly #unwritable = new Set<string>();
  readonly #now: () => number;
  readonly #identify: (participantId: string) => ParticipantIdentity | undefined;
  readonly #startedAt: number;
  #stopped = false;

  /** Creates the recording's folder and manifest. */
  constructor(options: RoomRecorderOptions) {
    if (!RECORDING_ID_SHAPE.test(options.id)) throw new VoxError('INVALID_ARGUMENT', `bad recording id "${options.id}"`);
    this.#dir = options.dir;
    this.#folder = recordingPaths.folder(options.dir, options.id);
    this.#manifestPath = recordingPaths.manifest(options.dir, options.id);
    mkdirSync(this.#folder, { recursive: true });
    this.manifest = {
      id: options.id,
      roomId: options.roomId,
      startedBy: options.startedBy,
      stoppedBy: null,
      startedAt: Date.now(),
      stoppedAt: null,
      files: [],
      segmentMs: options.segmentMs ? options.segmentMs : null,
      segments: [{ index: 0, startSample: 0, endSample: null }],
      participants: [],
      ...(options.continues === undefined ? {} : { continues: { ...options.continues } }),
    };
    this.#segmentMs = options.segmentMs ?? 0;
    this.#now = options.now ?? (() => performance.now());
    this.#identify = options.identify ?? (() => undefined);
    this.#startedAt = this.#now();
    this.#segmentStartedAt = this.#startedAt;
    this.#writeManifest();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * One Opus RTP payload of `participantId` (the room calls this per inbound audio packet it
   * accepted). Malformed payloads are skipped; late and duplicate packets (behind the expected
   * timestamp) are dropped: a file is written in order and never rewritten.
   */
  onAudio(participantId: string, payload: Uint8Array, ssrc: number, rtpTimestamp: number): void {
    if (this.#stopped || this.#unwritable.has(participantId)) return;
    let samples: number;
    try {
      samples = opusPacketSamples(payload);
    } catch (error) {
      // The sender's problem: skip the packet before it touches the timeline.
      log.debug({ err: error, participantId }, 'recording: malformed packet skipped');
      return;
    }
    let track: Track | null = this.#tracks.get(participantId) ?? null;
    if (track === null) {
      // OpusHead's channel count from the first packet's stereo bit (RFC 6716 §3.1): WebRTC always
      // signals opus/48000/2, but most microphones send mono.
      track = this.#openTrack(participantId, (payload[0]! & 0x04) !== 0 ? 2 : 1);
      if (track === null) {
        this.#unwritable.add(participantId);
        return;
      }
    }
    if (track.failed) return;
    const now = this.#now();
    try {
      const ahead = (rtpTimestamp - track.nextTimestamp) | 0; // RFC 3550 timestamps wrap at 2^32
      const allowed = ((now - track.lastAt) * OPUS_RTP_HZ) / 1000 + SLACK_SAMPLES;
      if (track.nextTimestamp < 0 || track.ssrc !== ssrc || ahead > allowed || (ahead < 0 && track.behind + 1 >= RESTART_AFTER_BEHIND)) {
        // A first packet, a restarted stream (new peer after a media reconnect) or timestamps that
        // run ahead of real time: place it by wall clock on the recording's timeline.
        track.ssrc = ssrc;
        this.#fill(track, this.#wallSamples(now) - track.origin - track.writer.granule);
      } else if (ahead < 0) {
        track.behind++;
        return;
      } else {
        this.#fill(track, ahead);
      }
      track.behind = 0;
      track.writer.write(payload);
      track.nextTimestamp = (rtpTimestamp + samples) >>> 0;
      track.lastAt = now;
      track.info.packets++;
    } catch (error) {
      this.#fail(track, error);
    }
  }

  /**
   * One packet of the room's own mix (`mix` rooms: the mixer's room output, which the recorder
   * tap subscribes to), written to `00-mix.opus` (participantId `~mix` in the manifest): the same
   * remux, the mixer's RTP timestamps, 20 ms frames.
   */
  onMix(payload: Uint8Array, rtpTimestamp: number): void {
    this.onAudio(MIX_TRACK, payload, 0, rtpTimestamp);
  }

  /**
   * Closes and writes the current page of every file and the manifest (the recorder tap's 1 s
   * timer); rolls into the next segment first when the current one's time is up.
   */
  flush(): void {
    if (this.#stopped) return;
    const now = this.#now();
    if (this.#segmentMs > 0 && now - this.#segmentStartedAt >= this.#segmentMs) this.#roll(now);
    for (const track of this.#tracks.values()) {
      if (track.failed) continue;
      try {
        track.writer.flush();
        track.info.samples = track.writer.granule;
      } catch (error) {
        this.#fail(track, error);
      }
    }
    this.#writeManifestSafely();
  }

  /**
   * Pads every file with silence to the recording's length, ends it (EOS page), closes it and writes
   * the final manifest. Idempotent; never throws (a failed file is logged and left as written).
   */
  stop(stoppedBy: string | null): RecordingManifest {
    if (this.#stopped) return this.manifest;
    this.#stopped = true;
    this.#endSegment(this.#wallSamples(this.#now()));
    this.manifest.stoppedBy = stoppedBy;
    this.manifest.stoppedAt = Date.now();
    this.#writeManifestSafely();
    return this.manifest;
  }

  /** Ends the current segment's files at `end` and starts the next segment there (its files open at their next packet). */
  #roll(now: number): void {
    const end = this.#wallSamples(now);
    this.#endSegment(end);
    this.#segment++;
    this.#segmentStart = end;
    this.#segmentStartedAt = now;
    this.manifest.segments!.push({ index: this.#segment, startSample: end, endSample: null });
  }

  /** Pads every open file with silence to `end` (recording samples), ends (EOS page) and closes it. */
  #endSegment(end: number): void {
    for (const track of this.#tracks.values()) {
      try {
        if (!track.failed) {
          this.#fill(track, end - track.origin - track.writer.granule);
          track.writer.end();
          track.info.samples = track.writer.granule;
        }
      } catch (error) {
        log.warn({ err: error, file: track.info.file }, 'recording: could not end file');
      }
      try {
        closeSync(track.fd);
      } catch (error) {
        log.warn({ err: error, file: track.info.file }, 'recording: could not close file');
      }
      track.info.complete = true;
    }
    this.#tracks.clear();
    this.manifest.segments![this.#segment]!.endSample = end;
  }

  /** 48 kHz samples since the recording started. */
  #wallSamples(now: number): number {
    return Math.round(((now - this.#startedAt) * OPUS_RTP_HZ) / 1000);
  }

  #openTrack(participantId: string, channels: 1 | 2): Track | null {
    let heard = this.#heard.get(participantId);
    if (heard === undefined) {
      const who = participantId === MIX_TRACK ? undefined : this.#identify(participantId);
      heard = { participantId, userId: who?.userId ?? null, name: who?.name ?? null, index: this.#heard.size + 1 };
      this.#heard.set(participantId, heard);
      this.manifest.participants!.push(heard);
    }
    const who = heard.name === null ? undefined : { userId: heard.userId, name: heard.name };
    const segment = this.#segment;
    const info: RecordingFile = {
      participantId,
      userId: heard.userId,
      name: heard.name,
      file: segmentFileName(recordingFileName(heard.index, participantId, heard.name), segment),
      samples: 0,
      packets: 0,
      bytes: 0,
      segment,
      offsetSamples: this.#segmentStart,
      complete: false,
    };
    let fd = -1;
    try {
      fd = openSync(recordingPaths.file(this.#dir, this.manifest.id, info.file), 'wx');
      const file = fd;
      const writer = new OggOpusWriter(
        (page) => {
          writeSync(file, page);
          info.bytes += page.length;
        },
        {
          channels,
          // The senders' encoders (libopus in browsers and our SDK) delay their output by 6.5 ms;
          // RFC 7845 §4.2 wants that trimmed, and players (opusinfo) flag a pre-skip below it.
          // A later segment continues the same stream, whose delay was trimmed in segment 0.
          preSkip: segment === 0 ? 312 : 0,
          tags: this.#tags(participantId, who),
          // Pages close on the flush timer; this is only the ceiling for a long burst.
          maxPageSamples: OPUS_RTP_HZ,
        },
      );
      const stereo = channels === 2;
      const track: Track = {
        info,
        origin: this.#segmentStart,
        fd,
        writer,
        nextTimestamp: -1,
        ssrc: -1,
        lastAt: this.#now(),
        behind: 0,
        silence120: stereo ? SILENCE_120_STEREO : SILENCE_120_MONO,
        silence20: stereo ? SILENCE_20_STEREO : SILENCE_20_MONO,
        failed: false,
      };
      this.#tracks.set(participantId, track);
      this.manifest.files.push(info);
      this.#writeManifestSafely();
      return track;
    } catch (error) {
      log.error({ err: error, file: info.file }, 'recording: cannot create file; this participant is not recorded');
      if (fd >= 0) {
        try {
          closeSync(fd);
        } catch {
          // already reported above
        }
      }
      return null;
    }
  }

  /**
   * The file's OpusTags (RFC 7845 §5.2; field names after the Vorbis comment conventions): ARTIST
   * is whose voice, TITLE the room and the recording's start (UTC), DATE that day; the ids for
   * programs as VOXLINK_* fields. ROOM, PARTICIPANT and RECORDING stay for older readers.
   */
  #tags(participantId: string, who: ParticipantIdentity | undefined): Record<string, string> {
    const { roomId, id, startedAt } = this.manifest;
    const started = new Date(startedAt).toISOString();
    const tags: Record<string, string> = {
      TITLE: `${roomId} ${started.slice(0, 16).replace('T', ' ')} UTC`,
      ARTIST: participantId === MIX_TRACK ? `${roomId} (room mix)` : (who?.name ?? participantId),
      DATE: started.slice(0, 10),
      ROOM: roomId,
      PARTICIPANT: participantId,
      RECORDING: id,
      VOXLINK_ROOM: roomId,
      VOXLINK_RECORDING_ID: id,
      VOXLINK_PARTICIPANT_ID: participantId,
      VOXLINK_STARTED_AT: started,
    };
    if (who !== undefined && who.userId !== null) tags.VOXLINK_USER_ID = who.userId;
    return tags;
  }

  /** Keeps the file's timeline over `samples` without packets: concealment for a loss, silence for a pause. */
  #fill(track: Track, samples: number): void {
    if (samples <= 0) return;
    if (samples <= MAX_CONCEALED_SAMPLES) {
      track.writer.gap(samples);
      return;
    }
    let frames = Math.floor(samples / 960);
    for (; frames >= 6; frames -= 6) track.writer.write(track.silence120);
    for (; frames > 0; frames--) track.writer.write(track.silence20);
  }

  #fail(track: Track, error: unknown): void {
    if (isVoxError(error, 'CODEC_BAD_ARGUMENT')) {
      log.debug({ err: error, file: track.info.file }, 'recording: packet skipped');
      return;
    }
    track.failed = true;
    log.error({ err: error, file: track.info.file }, 'recording: file write failed; this participant is no longer recorded');
  }

  #writeManifestSafely(): void {
    try {
      this.#writeManifest();
    } catch (error) {
      log.error({ err: error, folder: this.#folder }, 'recording: manifest not written');
    }
  }

  /** Whole-file replace, so a reader never sees half a manifest. */
  #writeManifest(): void {
    const path = this.#manifestPath;
    writeFileSync(`${path}.tmp`, JSON.stringify(this.manifest, null, 2));
    renameSync(`${path}.tmp`, path);
  }
}
