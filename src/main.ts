import cluster from 'node:cluster';
import { ConfigError, loadConfig } from './config/config';
import { startGateway } from './gateway';
import { serveClusterMetrics } from './lib/metrics.cluster';

/**
 * Production entry point: configuration comes from the environment only. WEB_CONCURRENCY > 1 forks
 * that many gateway processes on one port (node:cluster, round-robin accept); each runs the
 * background loops and the split worker too, which is safe because they claim work by leases.
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  if (cluster.isPrimary && config.webConcurrency > 1) return supervise(config.webConcurrency);
  const gw = await startGateway(config);
  // Graceful (src/gateway.ts, Gateway.close); exit 1 when the deadline cut work short. A repeated
  // signal changes nothing (Ctrl-C reaches a cluster worker twice: from the terminal and the primary).
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    gw.deps.logger.info({ signal, deadlineMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutting down');
    const { clean } = await gw.close().catch((err: unknown) => {
      gw.deps.logger.error({ err }, 'shutdown failed');
      return { clean: false };
    });
    gw.deps.logger.info({ clean }, 'stopped');
    process.exit(clean ? 0 : 1);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * The primary only forks, restarts crashed workers (at most once a second each), passes signals on
 * and answers the workers' /metrics with every worker's counters (src/lib/metrics.cluster.ts). On
 * SIGTERM it exits when every worker has, 0 only if each of them stopped cleanly.
 */
function supervise(n: number): void {
  let stopping = false;
  let unclean = false;
  const lastFork = new Map<number, number>();
  const fork = (slot: number) => {
    lastFork.set(slot, Date.now());
    cluster.fork().once('exit', (code, signal) => {
      if (stopping) {
        if (code !== 0) unclean = true;
        return;
      }
      process.stderr.write(`gateway worker ${slot} exited (${signal ?? code}); restarting\n`);
      setTimeout(() => fork(slot), Math.max(0, 1000 - (Date.now() - (lastFork.get(slot) ?? 0))));
    });
  };
  serveClusterMetrics();
  for (let i = 0; i < n; i++) fork(i);
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    cluster.once('exit', function check() {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(unclean ? 1 : 0);
      else cluster.once('exit', check);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\nSee .env.example for every variable.\n`);
    process.exit(78); // EX_CONFIG
  }
  process.stderr.write(`gateway failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
