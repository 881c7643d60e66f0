import request from 'supertest';
import { createApp } from '../../src/app';
import { createPrisma } from '../../src/lib/prisma';
import { createRedis } from '../../src/lib/redis';
import { startHarness, type Harness } from '../support/harness';

/** Issue 12 §3: /healthz (alive, dependencies answer) and /readyz (PostgreSQL, Redis, migrations, not draining). */
let h: Harness;
const deadRedis = createRedis('redis://127.0.0.1:1');
const deadPostgres = createPrisma('postgresql://gateway:gateway@127.0.0.1:1/none');
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  deadRedis.disconnect();
  await deadPostgres.$disconnect().catch(() => undefined);
  await h?.close();
});

it('When PostgreSQL, Redis and the migrations are in place, then /healthz and /readyz are 200', async () => {
  expect((await request(h.app).get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
  const ok = await request(h.app).get('/readyz').expect(200);
  expect(ok.body).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok', migrations: 'ok' } });
});

it('When Redis is down, then /healthz is 503 and /readyz says which dependency failed', async () => {
  const app = createApp({ ...h.deps, redis: deadRedis });
  await request(app).get('/healthz').expect(503);
  const r = await request(app).get('/readyz').expect(503);
  expect(r.body).toEqual({ status: 'not_ready', checks: { postgres: 'ok', redis: 'unavailable', migrations: 'ok' } });
  expect(r.headers['retry-after']).toBe('5');
});

it('When PostgreSQL is down, then /healthz is 503 and /readyz says PostgreSQL (migrations unknown)', async () => {
  const app = createApp({ ...h.deps, prisma: deadPostgres });
  await request(app).get('/healthz').expect(503);
  const r = await request(app).get('/readyz').expect(503);
  expect(r.body).toEqual({ status: 'not_ready', checks: { postgres: 'unavailable', redis: 'ok', migrations: 'unknown' } });
});

it('When a migration this build ships is not applied, then /readyz is 503 naming it', async () => {
  const last = await h.db.prisma.$queryRaw<Array<{ migration_name: string }>>`SELECT migration_name FROM _prisma_migrations ORDER BY migration_name DESC LIMIT 1`;
  await h.db.prisma.$executeRaw`UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = ${last[0]!.migration_name}`;
  try {
    const not = await request(h.app).get('/readyz').expect(503);
    expect(not.body.checks.migrations).toBe(`pending: ${last[0]!.migration_name}`);
    expect(not.headers['retry-after']).toBe('5');
  } finally {
    await h.db.prisma.$executeRaw`UPDATE _prisma_migrations SET finished_at = now() WHERE migration_name = ${last[0]!.migration_name}`;
  }
});

it('When the gateway is shutting down, then /readyz is 503 (draining) while /healthz stays 200', async () => {
  const app = createApp({ ...h.deps, draining: () => true });
  await request(app).get('/healthz').expect(200);
  const r = await request(app).get('/readyz').expect(503);
  expect(r.body.checks.shutdown).toBe('draining');
});
