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
  const shutdown = async (signal: string) => {
    gw.deps.logger.info({ signal }, 'shutting down');
    await gw.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

/** The primary only forks, restarts crashed workers (at most once a second each) and passes signals on. */
function supervise(n: number): void {
  let stopping = false;
  const lastFork = new Map<number, number>();
  const fork = (slot: number) => {
    lastFork.set(slot, Date.now());
    cluster.fork().once('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`gateway worker ${slot} exited (${signal ?? code}); restarting\n`);
      setTimeout(() => fork(slot), Math.max(0, 1000 - (Date.now() - (lastFork.get(slot) ?? 0))));
    });
  };
  serveClusterMetrics();
  for (let i = 0; i < n; i++) fork(i);
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    cluster.once('exit', function check() {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      else cluster.once('exit', check);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\nSee .env.example for every variable.\n`);
    process.exit(78); // EX_CONFIG
  }
  process.stderr.write(`gateway failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
