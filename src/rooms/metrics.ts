import { Counter, Gauge, type Registry } from 'prom-client';
import { metricsRegistry } from '../metrics/index.ts';
import type { MediaRoomStats } from './media-types.ts';
import type { WorkerLoad } from './placement.ts';

/**
 * Prometheus metrics of the worker pool and its rooms, in the app's /metrics registry by default
 * (src/metrics) or the one given (tests pass their own). A second RoomMetrics on the same
 * registry reuses the metrics already there. Room-labelled series are removed when a room
 * closes, so label cardinality follows live rooms, not every room ever opened.
 *
 * With `roomLabels: false` (config `metrics.roomLabels`) no room name reaches the scraper: every
 * per-room series has the single label `room="_all"`. Counters are then the sum over rooms;
 * `voxlink_room_participants` and `voxlink_room_recording_bytes` the sum over live rooms; loss,
 * jitter and RTT the mean over live rooms (docs/configuration.md "Metrics").
 */

/** The `room` label of every per-room series when room labels are off. */
export const ALL_ROOMS_LABEL = '_all';

interface RoomGaugeShare {
  participants: number;
  lossPct: number;
  jitterMs: number;
  rttMs: number;
  recordingBytes: number;
}
export class RoomMetrics {
  readonly registry: Registry;
  readonly #workerRooms: Gauge<'worker'>;
  readonly #workerParticipants: Gauge<'worker'>;
  readonly #workerPps: Gauge<'worker'>;
  readonly #workerElu: Gauge<'worker'>;
  readonly #workerUdp: Gauge<'worker'>;
  /** A room spread over several workers (docs/media.md "Rooms over several workers"): its participants per worker. */
  readonly #roomWorkerParticipants: Gauge<'room' | 'worker'>;
  readonly #roomWorkers = new Map<string, Set<string>>();
  readonly #workerDeaths: Counter;
  readonly #roomRecoveries: Counter;
  readonly #roomParticipants: Gauge<'room'>;
  readonly #packetsIn: Counter<'room'>;
  readonly #packetsOut: Counter<'room'>;
  readonly #bytesIn: Counter<'room'>;
  readonly #bytesOut: Counter<'room'>;
  readonly #slotSwitches: Counter<'room'>;
  readonly #loss: Gauge<'room'>;
  readonly #jitter: Gauge<'room'>;
  readonly #rtt: Gauge<'room'>;
  readonly #mixTicks: Counter<'room'>;
  readonly #mixLateTicks: Counter<'room'>;
  readonly #mixSkippedTicks: Counter<'room'>;
  readonly #mixBusy: Counter<'room'>;
  readonly #mixEncodes: Counter<'room'>;
  readonly #mixRecovered: Counter<'room' | 'recovery'>;
  readonly #mixLatePackets: Counter<'room'>;
  readonly #mixDredEncodes: Counter<'room'>;
  readonly #mixDredPackets: Counter<'room'>;
  readonly #recordingBytes: Gauge<'room'>;
  readonly #recordingsActive: Gauge;
  readonly #fastPackets: Counter<'direction'>;
  readonly #srtpRejected: Counter<'reason'>;
  /** Rooms whose last stats showed a running recording. */
  readonly #recording = new Set<string>();
  /** Last cumulative stats per room, to turn MediaRoom.stats() totals into counter increments. */
  readonly #last = new Map<string, MediaRoomStats>();
  /** False: one `room="_all"` series per metric (see the class comment). */
  readonly roomLabels: boolean;
  /** roomLabels false: each live room's last gauge values, and their sums, for the `_all` gauges. */
  readonly #shares = new Map<string, RoomGaugeShare>();
  readonly #sums: RoomGaugeShare = { participants: 0, lossPct: 0, jitterMs: 0, rttMs: 0, recordingBytes: 0 };

  constructor(registry: Registry = metricsRegistry, options: { roomLabels?: boolean } = {}) {
    this.registry = registry;
    this.roomLabels = options.roomLabels ?? true;
    const registers = [registry];
    const existing = <M>(name: string): M | undefined => registry.getSingleMetric(name) as M | undefined;
    const workerGauge = (name: string, help: string): Gauge<'worker'> =>
      existing(name) ?? new Gauge({ name, help, labelNames: ['worker'] as const, registers });
    const roomGauge = (name: string, help: string): Gauge<'room'> =>
      existing(name) ?? new Gauge({ name, help, labelNames: ['room'] as const, registers });
    const roomCounter = (name: string, help: string): Counter<'room'> =>
      existing(name) ?? new Counter({ name, help, labelNames: ['room'] as const, registers });
    const counter = (name: string, help: string): Counter =>
      existing(name) ?? new Counter({ name, help, registers });
    this.#workerRooms = workerGauge('voxlink_worker_rooms', 'Rooms hosted by the media worker thread');
    this.#workerParticipants = workerGauge('voxlink_worker_participants', 'Participants in the rooms of the media worker thread');
    this.#workerPps = workerGauge('voxlink_worker_packets_per_second', 'RTP packets in+out per second on the media worker thread');
    this.#workerElu = workerGauge('voxlink_worker_event_loop_utilization', 'Event-loop utilisation of the media worker thread (0..1)');
    this.#workerUdp = workerGauge('voxlink_worker_udp_sockets', 'Open UDP sockets (ICE) of the media worker thread');
    this.#roomWorkerParticipants =
      (registry.getSingleMetric('voxlink_room_worker_participants') as Gauge<'room' | 'worker'> | undefined) ??
      new Gauge({
        name: 'voxlink_room_worker_participants',
        help: 'Participants of a room hosted by each media worker thread (a room spread over several workers has one series per worker)',
        labelNames: ['room', 'worker'] as const,
        registers,
      });
    this.#workerDeaths = counter('voxlink_worker_deaths_total', 'Media worker threads that died');
    this.#roomRecoveries = counter('voxlink_room_recoveries_total', 'Rooms re-placed on another worker after their worker died');
    this.#roomParticipants = roomGauge('voxlink_room_participants', 'Participants in the media room');
    this.#packetsIn = roomCounter('voxlink_room_packets_in_total', 'RTP packets received by the room');
    this.#packetsOut = roomCounter('voxlink_room_packets_out_total', 'RTP packets sent by the room');
    this.#bytesIn = roomCounter('voxlink_room_bytes_in_total', 'RTP bytes received by the room');
    this.#bytesOut = roomCounter('voxlink_room_bytes_out_total', 'RTP bytes sent by the room');
    this.#slotSwitches = roomCounter('voxlink_room_slot_switches_total', 'Audio slot reassignments in the room');
    this.#loss = roomGauge('voxlink_room_loss_percent', 'Packet loss reported for the room, percent');
    this.#jitter = roomGauge('voxlink_room_jitter_seconds', 'Interarrival jitter in the room (RFC 3550 §6.4.1)');
    this.#rtt = roomGauge('voxlink_room_rtt_seconds', 'Round-trip time in the room (RTCP, RFC 3550 §6.4.1)');
    // mix/hybrid rooms (and sfu rooms while someone listens to a mix): the mixer's clock and work
    this.#mixTicks = roomCounter('voxlink_room_mix_ticks_total', 'Mixer ticks run (one 20 ms frame each)');
    this.#mixLateTicks = roomCounter('voxlink_room_mix_late_ticks_total', 'Mixer ticks started more than half a frame after their slot, skipped ones included');
    this.#mixSkippedTicks = roomCounter('voxlink_room_mix_skipped_ticks_total', 'Mixer ticks skipped after a stall (their frames were never mixed)');
    this.#mixBusy = roomCounter('voxlink_room_mix_busy_seconds_total', 'Time spent inside mixer ticks (decode, mix, encode, send)');
    this.#mixEncodes = roomCounter('voxlink_room_mix_encodes_total', 'Frames the mixer encoded (shared and N-1 mixes, per output format)');
    this.#mixRecovered =
      existing('voxlink_room_mix_recovered_frames_total') ??
      new Counter({
        name: 'voxlink_room_mix_recovered_frames_total',
        help: 'Input frames the mixer had no packet for, by how it made them: in-band FEC, DRED or PLC',
        labelNames: ['room', 'recovery'] as const,
        registers,
      });
    this.#mixLatePackets = roomCounter('voxlink_room_mix_late_packets_total', 'Input packets that arrived too late for the mixer jitter buffer');
    // DRED in the mix toward listeners whose loss calls for it (docs/audio.md "DRED")
    this.#mixDredEncodes = roomCounter('voxlink_room_mix_dred_encodes_total', 'DRED-variant encodes of the mixer (one per stream and format per tick, shared by its DRED listeners)');
    this.#mixDredPackets = roomCounter('voxlink_room_mix_dred_packets_total', 'Mix packets sent to listeners from a DRED-variant encode');
    this.#recordingBytes = roomGauge('voxlink_room_recording_bytes', "Bytes the room's running recording has written (docs/recording.md)");
    this.#recordingsActive =
      existing('voxlink_recordings_active') ?? new Gauge({ name: 'voxlink_recordings_active', help: 'Rooms being recorded', registers });
    // The media fast path (docs/media.md "Fast path"): process-wide, no room label.
    this.#fastPackets =
      existing('voxlink_fast_path_packets_total') ??
      new Counter({
        name: 'voxlink_fast_path_packets_total',
        help: "Packets protected (send) or unprotected (receive) by VoxLink's own SRTP instead of werift's",
        labelNames: ['direction'] as const,
        registers,
      });
    this.#srtpRejected =
      existing('voxlink_srtp_rejected_total') ??
      new Counter({
        name: 'voxlink_srtp_rejected_total',
        help: 'Inbound SRTP/SRTCP dropped before reaching any listener: forged (bad tag), replay, malformed, unknown_source (shared UDP port)',
        labelNames: ['reason'] as const,
        registers,
      });
    for (const direction of ['send', 'receive']) this.#fastPackets.inc({ direction }, 0);
    for (const reason of ['forged', 'replay', 'malformed', 'unknown_source']) this.#srtpRejected.inc({ reason }, 0);
  }

  /** Last cumulative `unknownSource` per worker thread, to turn reports into counter increments. */
  readonly #unknownSource = new Map<number, number>();

  workerLoad(load: WorkerLoad): void {
    const worker = String(load.threadId);
    if (load.unknownSource !== undefined) {
      const before = this.#unknownSource.get(load.threadId) ?? 0;
      this.#srtpRejected.inc({ reason: 'unknown_source' }, Math.max(0, load.unknownSource - before));
      this.#unknownSource.set(load.threadId, load.unknownSource);
    }
    this.#workerRooms.set({ worker }, load.rooms);
    this.#workerParticipants.set({ worker }, load.participants);
    this.#workerPps.set({ worker }, load.pps);
    this.#workerElu.set({ worker }, load.elu);
    this.#workerUdp.set({ worker }, load.udpSockets);
  }

  workerGone(threadId: number, died: boolean): void {
    const worker = String(threadId);
    this.#unknownSource.delete(threadId);
    this.#workerRooms.remove({ worker });
    this.#workerParticipants.remove({ worker });
    this.#workerPps.remove({ worker });
    this.#workerElu.remove({ worker });
    this.#workerUdp.remove({ worker });
    if (died) this.#workerDeaths.inc();
  }

  roomRecovered(): void {
    this.#roomRecoveries.inc();
  }

  /**
   * `stats` are the room's cumulative totals. A total lower than the last one means the room was
   * re-created (re-placed after a worker died), so the new total is the increment.
   */
  roomStats(roomId: string, stats: MediaRoomStats): void {
    const room = { room: this.roomLabels ? roomId : ALL_ROOMS_LABEL };
    const last = this.#last.get(roomId);
    const delta = (now: number, before: number | undefined): number =>
      before === undefined || now < before ? now : now - before;
    this.#packetsIn.inc(room, delta(stats.packetsIn, last?.packetsIn));
    this.#packetsOut.inc(room, delta(stats.packetsOut, last?.packetsOut));
    this.#bytesIn.inc(room, delta(stats.bytesIn, last?.bytesIn));
    this.#bytesOut.inc(room, delta(stats.bytesOut, last?.bytesOut));
    this.#slotSwitches.inc(room, delta(stats.slotSwitches, last?.slotSwitches));
    this.#fastPackets.inc({ direction: 'send' }, delta(stats.packetsOutFast ?? 0, last?.packetsOutFast));
    this.#fastPackets.inc({ direction: 'receive' }, delta(stats.packetsInFast ?? 0, last?.packetsInFast));
    const rejected = stats.srtpRejected;
    if (rejected !== undefined) {
      for (const reason of ['forged', 'replay', 'malformed'] as const) {
        this.#srtpRejected.inc({ reason }, delta(rejected[reason], last?.srtpRejected?.[reason]));
      }
    }
    if (this.roomLabels) {
      this.#roomParticipants.set(room, stats.participants);
      this.#loss.set(room, stats.lossPct);
      this.#jitter.set(room, stats.jitterMs / 1000);
      this.#rtt.set(room, stats.rttMs / 1000);
    } else {
      this.#share(roomId, {
        participants: stats.participants,
        lossPct: stats.lossPct,
        jitterMs: stats.jitterMs,
        rttMs: stats.rttMs,
        recordingBytes: stats.recording?.bytes ?? 0,
      });
    }
    const mix = stats.mix;
    if (mix !== undefined) {
      // A mixer that closed and came back (sfu rooms) restarts its totals: delta() takes the new total.
      const before = last?.mix;
      this.#mixTicks.inc(room, delta(mix.clock.ticks, before?.clock.ticks));
      this.#mixLateTicks.inc(room, delta(mix.clock.lateTicks, before?.clock.lateTicks));
      this.#mixSkippedTicks.inc(room, delta(mix.clock.skippedTicks, before?.clock.skippedTicks));
      this.#mixBusy.inc(room, delta(mix.clock.busyMs, before?.clock.busyMs) / 1000);
      this.#mixEncodes.inc(room, delta(mix.mixer.encodes, before?.mixer.encodes));
      this.#mixRecovered.inc({ ...room, recovery: 'fec' }, delta(mix.mixer.fecRecovered, before?.mixer.fecRecovered));
      this.#mixRecovered.inc({ ...room, recovery: 'dred' }, delta(mix.mixer.dredRecovered, before?.mixer.dredRecovered));
      this.#mixRecovered.inc({ ...room, recovery: 'plc' }, delta(mix.mixer.concealed, before?.mixer.concealed));
      this.#mixLatePackets.inc(room, delta(mix.mixer.late, before?.mixer.late));
      this.#mixDredEncodes.inc(room, delta(mix.mixer.dredEncodes, before?.mixer.dredEncodes));
      this.#mixDredPackets.inc(room, delta(mix.mixer.dredPackets, before?.mixer.dredPackets));
    }
    if (stats.recording !== undefined) {
      this.#recording.add(roomId);
      if (this.roomLabels) this.#recordingBytes.set(room, stats.recording.bytes);
    } else if (this.#recording.delete(roomId) && this.roomLabels) {
      this.#recordingBytes.remove(room);
    }
    this.#recordingsActive.set(this.#recording.size);
    this.#last.set(roomId, { ...stats, ...(stats.srtpRejected === undefined ? {} : { srtpRejected: { ...stats.srtpRejected } }) });
  }

  /** The room was re-created on another worker: its totals restart from zero. */
  roomRestarted(roomId: string): void {
    this.#last.delete(roomId);
  }

  /** Where a room's participants are: one entry per worker it uses (workers it left lose their series). */
  roomWorkers(roomId: string, shards: readonly { threadId: number; participants: number }[]): void {
    // Without room labels a per-room split has no series to go to.
    if (!this.roomLabels) return;
    const room = roomId;
    const now = new Set(shards.map((s) => String(s.threadId)));
    for (const worker of this.#roomWorkers.get(roomId) ?? []) if (!now.has(worker)) this.#roomWorkerParticipants.remove({ room, worker });
    for (const s of shards) this.#roomWorkerParticipants.set({ room, worker: String(s.threadId) }, s.participants);
    this.#roomWorkers.set(roomId, now);
  }

  roomClosed(roomId: string): void {
    this.#last.delete(roomId);
    this.roomWorkers(roomId, []);
    this.#roomWorkers.delete(roomId);
    if (!this.roomLabels) {
      // The `_all` counters keep their totals; the gauges lose this room's share.
      this.#share(roomId, null);
      this.#recording.delete(roomId);
      this.#recordingsActive.set(this.#recording.size);
      return;
    }
    const room = { room: roomId };
    for (const metric of [
      this.#roomParticipants,
      this.#packetsIn,
      this.#packetsOut,
      this.#bytesIn,
      this.#bytesOut,
      this.#slotSwitches,
      this.#loss,
      this.#jitter,
      this.#rtt,
      this.#mixTicks,
      this.#mixLateTicks,
      this.#mixSkippedTicks,
      this.#mixBusy,
      this.#mixEncodes,
      this.#mixLatePackets,
      this.#mixDredEncodes,
      this.#mixDredPackets,
      this.#recordingBytes,
    ]) {
      metric.remove(room);
    }
    this.#recording.delete(roomId);
    this.#recordingsActive.set(this.#recording.size);
    for (const recovery of ['fec', 'dred', 'plc']) this.#mixRecovered.remove({ room: roomId, recovery });
  }

  /** roomLabels false: replaces the room's share of the `_all` gauges (null: the room is gone) and sets them. */
  #share(roomId: string, next: RoomGaugeShare | null): void {
    const sums = this.#sums;
    const before = this.#shares.get(roomId);
    for (const key of ['participants', 'lossPct', 'jitterMs', 'rttMs', 'recordingBytes'] as const) {
      sums[key] += (next?.[key] ?? 0) - (before?.[key] ?? 0);
    }
    if (next === null) this.#shares.delete(roomId);
    else this.#shares.set(roomId, next);
    const all = { room: ALL_ROOMS_LABEL };
    const n = this.#shares.size;
    this.#roomParticipants.set(all, sums.participants);
    this.#recordingBytes.set(all, sums.recordingBytes);
    this.#loss.set(all, n === 0 ? 0 : sums.lossPct / n);
    this.#jitter.set(all, n === 0 ? 0 : sums.jitterMs / n / 1000);
    this.#rtt.set(all, n === 0 ? 0 : sums.rttMs / n / 1000);
  }
}
