/**
 * Prometheus metrics (npm prom-client), one registry per process, passed in AppDeps (no global).
 * Counters are incremented where things happen; backlog-type gauges are read from PostgreSQL/Redis
 * at scrape time, so every instance reports the same truth about shared work.
 *
 * Cluster mode (WEB_CONCURRENCY > 1, src/main.ts): each worker counts its own traffic, and whichever
 * worker answers /metrics asks the primary for every worker's registry, summed (src/lib/metrics.cluster.ts).
 * Gauges of shared state are therefore aggregated with `max`, not summed.
 */
import client from 'prom-client';
import type { ChannelCallObserver } from '../channels/channel';
import { clusterMetricsText } from './metrics.cluster';

export interface Metrics {
  registry: client.Registry;
  http: client.Histogram<'method' | 'route' | 'status'>;
  checkoutsCreated: client.Counter<never>;
  checkoutsPaid: client.Counter<'trade_type'>;
  notifies: client.Counter<'kind' | 'outcome'>;
  channelCalls: client.Histogram<'endpoint' | 'result'>;
  /** kind: order (a split batch) | unfreeze; outcome: accepted | retry (retryable error) | refused | error */
  splitRequests: client.Counter<'kind' | 'outcome'>;
  limiterWaits: client.Counter<never>;
  limiterWaitSeconds: client.Counter<never>;
  /** delivered | retry (not accepted, another attempt is scheduled) | failed (the schedule is exhausted) */
  webhookDeliveries: client.Counter<'outcome'>;
  /** A gauge computed on each scrape (e.g. from the database); a failing read leaves it absent. */
  addGauge(name: string, help: string, labelNames: string[], read: () => Promise<Array<{ labels?: Record<string, string>; value: number }>>): void;
  /** The Prometheus text of this process, or of every worker of the cluster. */
  text(): Promise<string>;
}

/** Channel calls into the histogram (ChannelCallObserver of src/channels/channel.ts). */
export function channelCallObserver(metrics: Pick<Metrics, 'channelCalls'>): ChannelCallObserver {
  return (endpoint, result, seconds) => metrics.channelCalls.observe({ endpoint, result }, seconds);
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'gateway_' });
  const reg = { registers: [registry] };
  const clusterText = clusterMetricsText(registry);
  return {
    registry,
    http: new client.Histogram({ name: 'gateway_http_request_duration_seconds', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], ...reg }),
    checkoutsCreated: new client.Counter({ name: 'gateway_checkouts_created_total', help: 'Checkouts created', ...reg }),
    checkoutsPaid: new client.Counter({ name: 'gateway_checkouts_paid_total', help: 'Checkouts paid, by trade type', labelNames: ['trade_type'], ...reg }),
    notifies: new client.Counter({ name: 'gateway_notifies_total', help: 'Channel notifies by kind and outcome (applied, duplicate, each rejection reason)', labelNames: ['kind', 'outcome'], ...reg }),
    channelCalls: new client.Histogram({ name: 'gateway_channel_call_duration_seconds', help: 'Calls to the payment channel by endpoint (path template) and result (ok or the error code)', labelNames: ['endpoint', 'result'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], ...reg }),
    splitRequests: new client.Counter({ name: 'gateway_split_requests_total', help: 'Profit-sharing requests (order = one batch, unfreeze) by outcome', labelNames: ['kind', 'outcome'], ...reg }),
    limiterWaits: new client.Counter({ name: 'gateway_split_rate_limiter_waits_total', help: 'Split requests that waited for the per-merchant rate limiter', ...reg }),
    limiterWaitSeconds: new client.Counter({ name: 'gateway_split_rate_limiter_wait_seconds_total', help: 'Time split requests spent waiting for the per-merchant rate limiter', ...reg }),
    webhookDeliveries: new client.Counter({ name: 'gateway_webhook_deliveries_total', help: 'Merchant webhook delivery attempts by outcome (delivered, retry, failed)', labelNames: ['outcome'], ...reg }),
    addGauge(name, help, labelNames, read) {
      if (registry.getSingleMetric(name)) return; // one app built twice on the same deps
      new client.Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        // Every cluster worker reads the same shared state: summing would multiply it.
        aggregator: 'max',
        async collect() {
          this.reset();
          // A failing read (database down) leaves the gauge empty rather than failing the whole scrape.
          const values = await read().catch(() => []);
          for (const v of values) (v.labels ? this.set(v.labels, v.value) : this.set(v.value));
        },
      });
    },
    text: () => clusterText?.() ?? registry.metrics(),
  };
}

/**
 * Daily bill reconciliation (src/modules/reconciliation/): bill lines found disagreeing, by bill and kind.
 * Made on first use, once per registry, so the core Metrics shape is untouched.
 */
export function billMismatchesFound(m: Pick<Metrics, 'registry'>): client.Counter<'bill' | 'kind'> {
  const name = 'gateway_bill_mismatches_found_total';
  return (
    (m.registry.getSingleMetric(name) as client.Counter<'bill' | 'kind'> | undefined) ??
    new client.Counter({ name, help: 'Bill reconciliation mismatches found (new in a run), by bill and kind', labelNames: ['bill', 'kind'], registers: [m.registry] })
  );
}
