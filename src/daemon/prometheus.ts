/**
 * The Prometheus text exposition of one snapshot, written by prom-client: a fresh registry per
 * scrape holds exactly the families of that snapshot (no stale series), merged with the registry
 * of prom-client's process metrics (CPU, memory, event loop lag, GC of the main process).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { FamilyValues } from './metric-families.js';

/**
 * How often prom-client's event loop delay histogram samples (monitorEventLoopDelay's resolution).
 * Its default, 10 ms, woke the idle daemon's main thread 100 times a second (about 5 ms of CPU per
 * second, more than the rest of the idle daemon); once a second is as often as the daemon's other
 * ticks. Each sample is the time between two samples, so nodejs_eventloop_lag_{min,max,mean,
 * stddev,p50,p90,p99}_seconds read about 1 s plus the lag (nodejs_eventloop_lag_seconds, measured
 * at each scrape, is the lag alone).
 */
export const EVENT_LOOP_SAMPLE_MS = 1000;

export class PrometheusExposition {
  private readonly process = new Registry();

  constructor(options: { readonly processMetrics: boolean } = { processMetrics: true }) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.process, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  get contentType(): string {
    return this.process.contentType;
  }

  async render(values: readonly FamilyValues[]): Promise<string> {
    const registry = new Registry();
    for (const { family, samples } of values) {
      const config = { name: family.name, help: family.help, labelNames: [...family.labelNames], registers: [registry] };
      if (family.type === 'counter') {
        const counter = new Counter(config);
        for (const s of samples) counter.inc(s.labels, s.value);
      } else {
        const gauge = new Gauge(config);
        for (const s of samples) gauge.set(s.labels, s.value);
      }
    }
    return Registry.merge([registry, this.process]).metrics();
  }
}
