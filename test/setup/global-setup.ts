import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyMigrations } from '../../src/lib/migrations';
import { freePort, startEmbeddedPostgres, startRedis, type RunningService } from '../../scripts/services';

/** What global-teardown needs; jest runs both in the same process. */
export interface TestServices {
  postgres: RunningService;
  redis: RunningService;
  baseDir: string;
}
export const SERVICES_KEY = '__gatewayTestServices';

const TEMPLATE_DATABASE = 'migrated_template';

/**
 * One PostgreSQL and one redis-server for the whole run. Migrations go into a template database
 * once; each test file clones it (test/support/db.ts). URLs are published through process.env,
 * which the test files of this run inherit.
 */
export default async function globalSetup(): Promise<void> {
  const log = (m: string) => process.stderr.write(`[test services] ${m}\n`);
  // 0700 from mkdtemp: as root the helper puts the cluster where the `postgres` user can reach it.
  const baseDir = await mkdtemp(join(tmpdir(), 'gateway-test-'));
  let t = Date.now();
  const postgres = await startEmbeddedPostgres({
    dataDir: join(baseDir, 'pg'),
    port: await freePort(),
    database: TEMPLATE_DATABASE,
    unsafeFast: true,
    ephemeral: true,
    log,
  });
  log(`PostgreSQL up in ${Date.now() - t} ms`);
  try {
    t = Date.now();
    await applyMigrations(postgres.url, () => undefined);
    log(`migrations applied to ${TEMPLATE_DATABASE} in ${Date.now() - t} ms`);
    t = Date.now();
    const redis = await startRedis({ port: await freePort(), dir: join(baseDir, 'redis'), log });
    log(`redis-server up in ${Date.now() - t} ms`);
    process.env.TEST_DATABASE_URL_TEMPLATE = postgres.url;
    process.env.TEST_REDIS_URL = redis.url;
    const services: TestServices = { postgres, redis, baseDir };
    (globalThis as Record<string, unknown>)[SERVICES_KEY] = services;
  } catch (e) {
    await postgres.stop();
    await rm(baseDir, { recursive: true, force: true });
    throw e;
  }
}
