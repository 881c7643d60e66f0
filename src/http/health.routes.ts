/**
 * /healthz: the process is alive and its dependencies answer (kept as it was for load balancers).
 * /readyz: ready for traffic — PostgreSQL and Redis answer and every migration this build ships is
 * applied (a new build started before `db:migrate` stays out of rotation instead of failing requests),
 * and not shutting down (SIGTERM: the load balancer stops sending while requests in flight finish).
 */
import express, { type Router } from 'express';
import type { AppDeps } from '../app.types';
import { defaultMigrationsDir, listMigrations } from '../lib/migrations';

export function healthRouter(deps: AppDeps): Router {
  const r = express.Router();
  const shipped = (() => {
    try {
      return listMigrations(defaultMigrationsDir()).map((m) => m.name);
    } catch {
      return null; // no migrations folder next to this build: readyz says so
    }
  })();

  r.get('/healthz', async (_req, res) => {
    try {
      await deps.prisma.$queryRaw`SELECT 1`;
      await deps.redis.ping();
      res.json({ status: 'ok' });
    } catch (err) {
      deps.logger.warn({ err }, 'healthz failed');
      res.status(503).json({ status: 'unavailable' });
    }
  });

  r.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    await deps.prisma.$queryRaw`SELECT 1`.then(() => (checks.postgres = 'ok'), () => (checks.postgres = 'unavailable'));
    await deps.redis.ping().then(() => (checks.redis = 'ok'), () => (checks.redis = 'unavailable'));
    if (deps.draining?.()) checks.shutdown = 'draining';
    if (!shipped) checks.migrations = 'migrations folder not found';
    else if (checks.postgres === 'ok') {
      const applied = await deps.prisma
        .$queryRaw<Array<{ migration_name: string }>>`SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`
        .then((rows) => new Set(rows.map((x) => x.migration_name)), () => null);
      const pending = applied ? shipped.filter((m) => !applied.has(m)) : null;
      checks.migrations = pending === null ? 'unknown' : pending.length ? `pending: ${pending.join(', ')}` : 'ok';
    } else checks.migrations = 'unknown';
    const ready = Object.values(checks).every((v) => v === 'ok');
    if (!ready) res.set('Retry-After', '5');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  return r;
}
