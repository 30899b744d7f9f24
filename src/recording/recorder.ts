import { closeSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { OggOpusWriter } from '../codec/ogg.ts';
import { isVoxError, VoxError } from '../errors.ts';
import { logger } from '../log.ts';

/**
 * Recording of one room, inside the room's worker: each publisher's Opus RTP payloads remuxed into
 * its own Ogg Opus file (RFC 7845) without re-encoding, so it costs a copy per packet, not a codec.
 *
 * Layout (docs/recording.md): `<dir>/<id>/manifest.json` plus one `<n>-<participant>.opus` per
 * publisher heard while recording. Every file starts at the recording's start: a participant who
 * speaks later gets filler for the time before (TOC-only packets, which decode as silence), and
 * losses, DTX and mute pauses keep the timeline the same way, from the RTP timestamps. So the files
 * line up sample for sample and can be mixed offline by summing.
 *
 * Crash safety: pages are closed and written with a synchronous write at least every
 * `flushIntervalMs` (the room's 1 s timer calls `flush()`); a worker that dies loses at most that
 * much. The manifest is rewritten (write + rename) whenever a file is added and on stop.
 */

export interface RecordingFile {
  participantId: string;
  /** File name inside the recording's folder. */
  file: string;
  /** 48 kHz samples in the file, gaps included. */
  samples: number;
  packets: number;
  bytes: number;
}

export interface RecordingManifest {
  id: string;
  roomId: string;
  /** Who started and stopped it (participant ids). */
  startedBy: string;
  stoppedBy: string | null;
  /** Milliseconds since the Unix epoch. */
  startedAt: number;
  stoppedAt: number | null;
  files: RecordingFile[];
}

const log = logger('recorder');

/** RTP clock of Opus (RFC 7587 §4.1): always 48 kHz, whatever the codec's internal rate. */
const OPUS_RTP_HZ = 48_000;
/** An RTP timestamp jump beyond this (either way) is a restarted stream: re-anchor by wall clock instead of filling it. */
const MAX_RTP_JUMP = 10 * 60 * OPUS_RTP_HZ;
/**
 * Gaps up to this long (3 frames) are losses: filled with "lost frame" packets, which the decoder
 * conceals (PLC). Longer ones (DTX, mute, a late first packet, a reconnect) get real silence: PLC
 * over a long gap keeps a noise floor ~30 dB under the voice instead of going quiet.
 */
const MAX_CONCEALED_SAMPLES = 3 * 960;
/**
 * One 20 ms CELT frame with the silence flag set (RFC 6716 §4.3, the first symbol of a CELT frame):
 * TOC config 31 (CELT fullband 20 ms), code 0, then the range coder's bytes for silence=1. It is
 * what libopus's own encoder emits for a frame of digital zeros; it decodes to exact zeros.
 */
const SILENCE_MONO = Uint8Array.of(0xf8, 0xff, 0xfe);
const SILENCE_STEREO = Uint8Array.of(0xfc, 0xff, 0xfe);
const SILENCE_SAMPLES = 960;

/** Packets this far behind the expected timestamp are late or duplicates (dropped); further back is a restart. */
const MAX_LATE_SAMPLES = 5 * OPUS_RTP_HZ;

interface Track {
  readonly info: RecordingFile;
  readonly fd: number;
  readonly writer: OggOpusWriter;
  /** RTP timestamp where the next packet is expected (last packet's timestamp + its duration), or -1 before the first. */
  nextTimestamp: number;
  /** SSRC of the stream being written: a media reconnect brings a new SSRC and a new random timestamp base. */
  ssrc: number;
  readonly silence: Uint8Array;
  /** The file could not be written (disk full, folder gone): the track stops, the others go on. */
  failed: boolean;
}

/** File names from participant ids: letters, digits, `._-` kept, the rest `_`; an index keeps them unique. */
function fileNameFor(index: number, participantId: string): string {
  const safe = participantId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 48);
  return `${String(index).padStart(2, '0')}-${safe}.opus`;
}

export class RoomRecorder {
  readonly manifest: RecordingManifest;
  readonly #folder: string;
  readonly #tracks = new Map<string, Track>();
  /** Participants whose file could not be created: not retried per packet. */
  readonly #unwritable = new Set<string>();
  readonly #startedAtPerf: number;
  #stopped = false;

  /** Creates the recording's folder and manifest. `dir` is the server's recordings folder. */
  constructor(options: { dir: string; id: string; roomId: string; startedBy: string }) {
    if (!/^[A-Za-z0-9_-]{8,64}$/.test(options.id)) throw new VoxError('INVALID_ARGUMENT', `bad recording id "${options.id}"`);
    this.#folder = join(options.dir, options.id);
    mkdirSync(this.#folder, { recursive: true });
    this.manifest = {
      id: options.id,
      roomId: options.roomId,
      startedBy: options.startedBy,
      stoppedBy: null,
      startedAt: Date.now(),
      stoppedAt: null,
      files: [],
    };
    this.#startedAtPerf = performance.now();
    this.#writeManifest();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * One Opus RTP payload of `participantId` (the room calls this per inbound audio packet it
   * accepted). Late or duplicate packets (timestamp before the expected one) are dropped: the file
   * is written in order and never rewritten.
   */
  onAudio(participantId: string, payload: Uint8Array, ssrc: number, rtpTimestamp: number): void {
    if (this.#stopped || payload.length === 0) return;
    let track = this.#tracks.get(participantId);
    if (track?.failed === true || this.#unwritable.has(participantId)) return;
    if (track === undefined) {
      // OpusHead's channel count from the first packet's stereo bit (RFC 6716 §3.1): WebRTC always
      // signals opus/48000/2, but most microphones send mono.
      track = this.#openTrack(participantId, (payload[0]! & 0x04) !== 0 ? 2 : 1) ?? undefined;
      if (track === undefined) {
        this.#unwritable.add(participantId);
        return;
      }
    }
    try {
      const ahead = (rtpTimestamp - track.nextTimestamp) | 0; // RFC 3550 timestamps wrap at 2^32
      if (track.nextTimestamp < 0 || track.ssrc !== ssrc || ahead > MAX_RTP_JUMP || ahead < -MAX_LATE_SAMPLES) {
        // A first packet, or a stream that restarted (new peer after a media reconnect): place it by
        // wall clock on the recording's timeline, so every file keeps sharing time zero.
        track.ssrc = ssrc;
        this.#fill(track, Math.round(((performance.now() - this.#startedAtPerf) * OPUS_RTP_HZ) / 1000) - track.writer.granule);
      } else if (ahead < 0) {
        return;
      } else {
        this.#fill(track, ahead);
      }
      const before = track.writer.granule;
      track.writer.write(payload);
      track.nextTimestamp = (rtpTimestamp + (track.writer.granule - before)) >>> 0;
      track.info.packets++;
    } catch (error) {
      if (isVoxError(error, 'CODEC_BAD_ARGUMENT')) {
        // A malformed payload is the sender's problem: skip it, keep the file valid.
        log.debug({ err: error, participantId }, 'recording: packet skipped');
        return;
      }
      track.failed = true;
      log.error({ err: error, file: track.info.file }, 'recording: file write failed; this participant is no longer recorded');
    }
  }

  /** Closes and writes the current page of every file (the room's 1 s timer). */
  flush(): void {
    if (this.#stopped) return;
    for (const track of this.#tracks.values()) this.#flushTrack(track);
  }

  /** Ends every file (EOS page), closes them and writes the final manifest. Idempotent. */
  stop(stoppedBy: string | null): RecordingManifest {
    if (this.#stopped) return this.manifest;
    this.#stopped = true;
    for (const track of this.#tracks.values()) {
      try {
        if (!track.failed) track.writer.end();
        track.info.samples = track.writer.granule;
      } catch (error) {
        log.warn({ err: error, file: track.info.file }, 'recording: could not end file');
      }
      try {
        closeSync(track.fd);
      } catch (error) {
        log.warn({ err: error, file: track.info.file }, 'recording: could not close file');
      }
    }
    this.manifest.stoppedBy = stoppedBy;
    this.manifest.stoppedAt = Date.now();
    this.#writeManifest();
    return this.manifest;
  }

  #openTrack(participantId: string, channels: 1 | 2): Track | null {
    const info: RecordingFile = { participantId, file: fileNameFor(this.#tracks.size + 1, participantId), samples: 0, packets: 0, bytes: 0 };
    let fd: number;
    try {
      fd = openSync(join(this.#folder, info.file), 'wx');
    } catch (error) {
      log.error({ err: error, file: info.file }, 'recording: cannot create file');
      return null;
    }
    const writer = new OggOpusWriter(
      (page) => {
        writeSync(fd, page);
        info.bytes += page.length;
      },
      {
        channels,
        // The senders' encoders (libopus in browsers and our SDK) delay their output by 6.5 ms; RFC 7845
        // §4.2 wants that trimmed, and players (opusinfo) flag a pre-skip below it.
        preSkip: 312,
        tags: { ROOM: this.manifest.roomId, PARTICIPANT: participantId, RECORDING: this.manifest.id },
        // Pages close by the flush timer; this is only the ceiling for a participant who talks without pause.
        maxPageSamples: OPUS_RTP_HZ,
      },
    );
    const track: Track = { info, fd, writer, nextTimestamp: -1, ssrc: -1, silence: channels === 2 ? SILENCE_STEREO : SILENCE_MONO, failed: false };
    this.#tracks.set(participantId, track);
    this.manifest.files.push(info);
    this.#writeManifest();
    return track;
  }

  /** Keeps the file's timeline over `samples` without packets: concealment for a loss, silence for a pause. */
  #fill(track: Track, samples: number): void {
    if (samples <= MAX_CONCEALED_SAMPLES) {
      if (samples > 0) track.writer.gap(samples);
      return;
    }
    for (let frames = Math.floor(samples / SILENCE_SAMPLES); frames > 0; frames--) track.writer.write(track.silence);
  }

  #flushTrack(track: Track): void {
    if (track.failed) return;
    try {
      track.writer.flush();
      track.info.samples = track.writer.granule;
    } catch (error) {
      track.failed = true;
      log.error({ err: error, file: track.info.file }, 'recording: flush failed; this participant is no longer recorded');
    }
  }

  /** Whole-file replace, so a reader never sees half a manifest. */
  #writeManifest(): void {
    const path = join(this.#folder, 'manifest.json');
    writeFileSync(`${path}.tmp`, JSON.stringify(this.manifest, null, 2));
    renameSync(`${path}.tmp`, path);
  }
}
