/**
 * The benches' own PostgreSQL (migrated) and Redis in a fresh temp dir, and where the sandbox keys
 * live. `durable` keeps fsync and synchronous commit on (what `npm run bench` measures against);
 * otherwise the fast throwaway settings. `stop()` removes it all.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyMigrations } from '../src/lib/migrations';
import { freePort, startEmbeddedPostgres, startRedis } from '../scripts/services';

export async function startBenchServices(tag: string, o: { durable?: boolean; ephemeral?: boolean; pgFlags?: string[] } = {}) {
  const base = mkdtempSync(join(tmpdir(), `gw-bench-${tag}`));
  chmodSync(base, 0o755);
  const quiet = () => undefined;
  const pgDir = join(base, 'pg');
  const pg = await startEmbeddedPostgres({ dataDir: pgDir, port: await freePort(), unsafeFast: !o.durable, ...(o.ephemeral ? { ephemeral: true } : {}), ...(o.pgFlags ? { extraFlags: o.pgFlags } : {}), ...(process.env.BENCH_PG_LOG ? { serverLog: process.env.BENCH_PG_LOG } : {}), log: quiet });
  await applyMigrations(pg.url, quiet);
  const redisPort = await freePort();
  const redis = await startRedis({ port: redisPort, dir: join(base, 'redis'), log: quiet });
  /**
   * Stops Redis and PostgreSQL and removes the folder: a large run's database is gigabytes, and
   * left behind, repeated runs filled this machine's disk. BENCH_KEEP=1 keeps it (`npm run bench`
   * writes the gateway's logs there).
   */
  const stop = async () => {
    await redis.stop().catch(() => undefined);
    await pg.stop().catch(() => undefined);
    if (process.env.BENCH_KEEP === '1') process.stdout.write(`[bench] kept ${base}\n`);
    else rmSync(base, { recursive: true, force: true });
  };
  return { base, pg, pgDir, redis, redisPort, keysDir: join(tmpdir(), 'gateway-test-keys'), stop };
}
