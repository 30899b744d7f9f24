import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's one Prometheus registry. Every area adds its metrics here (import `metricsRegistry`
 * and create `new Counter({ ..., registers: [metricsRegistry] })`, or use `counter()/gauge()` below
 * which return the existing metric when a module is loaded twice, e.g. by tests). Names follow
 * Prometheus conventions: `voxlink_` prefix, `_total` for counters, base units (seconds, bytes).
 */
export const metricsRegistry = new Registry();

let defaultsCollected = false;
/** prom-client's process metrics, incl. `nodejs_eventloop_lag_seconds` (event-loop lag). Idempotent. */
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  collectDefaultMetrics({ register: metricsRegistry, eventLoopMonitoringPrecision: 20 });
}

export function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  const existing = metricsRegistry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [metricsRegistry] });
}

export function gauge<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  collect?: (this: Gauge<L>) => void,
): Gauge<L> {
  const existing = metricsRegistry.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: [metricsRegistry], ...(collect ? { collect } : {}) });
}

export function histogram<L extends string>(
  name: string,
  help: string,
  buckets: number[],
  labelNames: readonly L[] = [],
): Histogram<L> {
  const existing = metricsRegistry.getSingleMetric(name);
  if (existing) return existing as Histogram<L>;
  return new Histogram({ name, help, buckets, labelNames, registers: [metricsRegistry] });
}

/** Signalling metrics (src/signalling). */
export const signallingMetrics = {
  sessions: gauge('voxlink_sessions', 'Sessions, connected or within the resume grace period', ['state']),
  rooms: gauge('voxlink_rooms', 'Rooms with at least one participant'),
  participants: gauge('voxlink_participants', 'Participants over all rooms'),
  messagesIn: counter('voxlink_messages_in_total', 'Client messages received, by op', ['op']),
  messagesOut: counter('voxlink_messages_out_total', 'Server messages sent, by op', ['op']),
  errors: counter('voxlink_errors_total', 'error messages sent to clients, by code', ['code']),
  closes: counter('voxlink_closes_total', 'Connections closed by the server, by close code', ['code']),
  resumes: counter('voxlink_resumes_total', 'resume attempts, by outcome', ['outcome']),
  replayed: counter('voxlink_replayed_messages_total', 'Messages replayed on resume'),
  authFailures: counter('voxlink_auth_failures_total', 'Rejected tokens and grants, by reason', ['reason']),
  internalErrors: counter('voxlink_internal_errors_total', 'Exceptions caught in signalling handlers'),
  upgradesRejected: counter('voxlink_upgrades_rejected_total', 'WebSocket upgrades refused before a connection exists, by reason', ['reason']),
};

/** Prometheus text exposition of the registry. */
export function metricsText(): Promise<string> {
  return metricsRegistry.metrics();
}
export const metricsContentType = metricsRegistry.contentType;
