import type { Counter, Gauge, Histogram } from 'prom-client';
import { counter, gauge, histogram } from '../metrics/registry.ts';

/**
 * TURN series on the process registry. The `turn_*` names, labels and help texts are those of
 * coturn's own Prometheus exporter (coturn ≥ 4.6.2 `--prometheus`, src/apps/relay/prom_server.c),
 * so dashboards made for it work; VoxLink fills them from coturn's redis-statsdb (src/turn/stats.ts).
 * One difference: coturn adds an allocation's traffic when it ends; VoxLink adds each interim report
 * coturn publishes (every 4096 packets of a session) and the remainder at the end, so the counters
 * grow during a call and end at the same values. `voxlink_turn_*` are VoxLink's own.
 */
export interface TurnMetrics {
  /** coturn: "Represents current allocations number", by client transport (UDP, TCP, TLS, DTLS). */
  allocations: Gauge<'type'>;
  /** Client ⇄ coturn traffic per realm (and user): rcvp/rcvb from the client, sentp/sentb to it. */
  traffic: Record<TrafficField, Counter<'realm' | 'user'>>;
  /** coturn ⇄ peer (the relayed side: VoxLink's media ports). */
  peerTraffic: Record<TrafficField, Counter<'realm' | 'user'>>;
  /** The same summed over everything, unlabelled. */
  totalTraffic: Record<TrafficField, Counter>;
  totalPeerTraffic: Record<TrafficField, Counter>;
  /** How long finished allocations lived (first status seen → deleted). */
  allocationDuration: Histogram;
  /** 1 while the statistics reader is subscribed to coturn's redis-statsdb. */
  statsUp: Gauge;
  /** 1 while the last read of the secret store succeeded. */
  storeUp: Gauge;
}

export type TrafficField = 'rcvp' | 'rcvb' | 'sentp' | 'sentb';
export const TRAFFIC_FIELDS: readonly TrafficField[] = ['rcvp', 'rcvb', 'sentp', 'sentb'];

const WHAT: Record<TrafficField, string> = { rcvp: 'received packets', rcvb: 'received bytes', sentp: 'sent packets', sentb: 'sent bytes' };

let metrics: TurnMetrics | undefined;

/** The TURN series, registered on first use. */
export function turnMetrics(): TurnMetrics {
  if (metrics) return metrics;
  const byField = <T>(make: (field: TrafficField) => T): Record<TrafficField, T> =>
    Object.fromEntries(TRAFFIC_FIELDS.map((f) => [f, make(f)])) as Record<TrafficField, T>;
  metrics = {
    allocations: gauge('turn_total_allocations', 'Represents current allocations number', ['type']),
    traffic: byField((f) => counter(`turn_traffic_${f}`, `Represents finished sessions ${WHAT[f]}`, ['realm', 'user'])),
    peerTraffic: byField((f) => counter(`turn_traffic_peer_${f}`, `Represents finished sessions peer ${WHAT[f]}`, ['realm', 'user'])),
    totalTraffic: byField((f) => counter(`turn_total_traffic_${f}`, `Represents total finished sessions ${WHAT[f]}`)),
    totalPeerTraffic: byField((f) => counter(`turn_total_traffic_peer_${f}`, `Represents total finished sessions peer ${WHAT[f]}`)),
    allocationDuration: histogram('voxlink_turn_allocation_duration_seconds', 'How long finished coturn allocations lived', [10, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400]),
    statsUp: gauge('voxlink_turn_stats_up', "1 while VoxLink is subscribed to coturn's redis-statsdb"),
    storeUp: gauge('voxlink_turn_secret_store_up', '1 while the last read of the TURN secret store (turn.store redis/postgres) succeeded'),
  };
  return metrics;
}
