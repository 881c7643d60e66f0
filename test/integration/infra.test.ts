import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { applyMigrations, defaultMigrationsDir, listMigrations } from '../../src/lib/migrations';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { testQueuePrefix, testRedisUrl } from '../support/redis';

const run = promisify(execFile);
const root = join(__dirname, '..', '..');

async function rows<T>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('test infrastructure', () => {
  let a: TestDatabase;
  let b: TestDatabase;

  beforeAll(async () => {
    [a, b] = [await createTestDatabase(), await createTestDatabase()];
  });
  afterAll(async () => {
    await Promise.all([a?.drop(), b?.drop()]);
  });

  it('When a test database is created, then every committed migration is recorded as Prisma records it', async () => {
    const expected = listMigrations(defaultMigrationsDir());
    expect(expected.length).toBeGreaterThan(0);
    const recorded = await rows<{
      migration_name: string;
      checksum: string;
      applied_steps_count: number;
      finished_at: Date | null;
      logs: string | null;
      rolled_back_at: Date | null;
    }>(a.url, 'SELECT * FROM "_prisma_migrations" ORDER BY migration_name');
    expect(recorded.map((r) => [r.migration_name, r.checksum])).toEqual(expected.map((m) => [m.name, m.checksum]));
    for (const r of recorded) {
      expect(r).toMatchObject({ applied_steps_count: 1, logs: null, rolled_back_at: null });
      expect(r.finished_at).toBeInstanceOf(Date);
    }
  });

  it('When migrations are applied again, then nothing is pending', async () => {
    await expect(applyMigrations(a.url)).resolves.toEqual({ applied: [] });
  });

  it('When one test database is written, then another does not see it', async () => {
    await a.prisma.merchant.create({ data: { id: 'm_infra', name: 'Infra', apiKeyHash: 'h_infra' } });
    await a.prisma.checkout.create({
      data: {
        id: 'co_infra',
        merchantId: 'm_infra',
        outTradeNo: 'o1',
        amountFen: 1234,
        description: 'infra',
        expiresAt: new Date(Date.now() + 60_000),
        splitPlan: { receivers: [] },
      },
    });
    const back = await a.prisma.checkout.findUniqueOrThrow({ where: { id: 'co_infra' } });
    expect(back).toMatchObject({ status: 'open', amountFen: 1234, splitPlan: { receivers: [] } });
    expect(await b.prisma.merchant.count()).toBe(0);
  });

  it('When a test database is dropped, then it is gone from the server', async () => {
    const c = await createTestDatabase();
    const name = new URL(c.url).pathname.slice(1);
    await c.drop();
    const left = await rows(a.url, `SELECT 1 FROM pg_database WHERE datname = '${name}'`);
    expect(left).toHaveLength(0);
  });

  it('When the redis of the run is pinged, then it answers and never evicts', async () => {
    const redis = new Redis(testRedisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    } finally {
      redis.disconnect();
    }
    expect(testQueuePrefix('q')).not.toBe(testQueuePrefix('q'));
  });

  it('When db:check runs, then the committed migrations match schema.prisma', async () => {
    const { stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts', 'check'], {
      cwd: root,
      // initdb + the schema engine: ~20 s alone, far more on the shared 2-core machine.
      timeout: 150_000,
    });
    expect(stderr).toContain('migrations match schema.prisma');
  }, 160_000);
});
