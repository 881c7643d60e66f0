/**
 * /metrics under node:cluster (WEB_CONCURRENCY > 1): connections go round-robin to the workers, so
 * one worker's registry would show only its share of the counters, a different share each scrape.
 * The worker that gets the scrape asks the primary, which collects every worker's registry through
 * prom-client's AggregatorRegistry (counters and histograms summed, each metric's `aggregator`
 * otherwise) and sends the text back.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'gateway:metrics-request';
const ANSWER = 'gateway:metrics-answer';
const TIMEOUT_MS = 5_000;

interface Answer {
  type: typeof ANSWER;
  id: string;
  text?: string;
  error?: string;
}

/** Primary: answers the workers' requests for the whole cluster's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry(); // also installs prom-client's listener for the workers' answers
  cluster.on('message', (worker, msg: { type?: string; id?: string }) => {
    if (msg?.type !== REQUEST || typeof msg.id !== 'string') return;
    const id = msg.id;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: ANSWER, id, text } satisfies Answer),
      (err: Error) => worker.isConnected() && worker.send({ type: ANSWER, id, error: err.message } satisfies Answer),
    );
  });
}

/** In a cluster worker: a function returning the whole cluster's text; null outside a cluster. */
export function clusterMetricsText(registry: Registry): (() => Promise<string>) | null {
  if (!cluster.isWorker || !process.send) return null;
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs prom-client's answer to the primary's collection requests
  const waiting = new Map<string, { resolve: (t: string) => void; reject: (e: Error) => void }>();
  process.on('message', (msg: Partial<Answer>) => {
    if (msg?.type !== ANSWER || typeof msg.id !== 'string') return;
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (typeof msg.text === 'string') w.resolve(msg.text);
    else w.reject(new Error(`cluster metrics: ${msg.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = randomUUID();
      // A failed scrape, never a partial one: one worker's counters alone would look like a reset.
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('cluster metrics: the primary did not answer'));
      }, TIMEOUT_MS);
      waiting.set(id, {
        resolve: (t) => (clearTimeout(timer), resolve(t)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      process.send!({ type: REQUEST, id });
    });
}
