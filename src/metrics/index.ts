/** Public surface of src/metrics. */
export {
  collectProcessMetrics,
  counter,
  gauge,
  histogram,
  metricsContentType,
  metricsRegistry,
  metricsText,
  signallingMetrics,
} from './registry.ts';
export { countServerEvents } from './server-events.ts';
