import request from 'supertest';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, waitForSplitStatus } from './split-support';

const TOKEN = 'test-metrics-token-0123456789';
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { METRICS_TOKEN: TOKEN, PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20' } });
  await h.startBackground();
});
afterAll(async () => h?.close());

/** `name{labels} value` lines of a Prometheus text answer. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

it('When /metrics is asked without the token or with a wrong one, then it is refused', async () => {
  await request(h.app).get('/metrics').expect(401);
  await request(h.app).get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789').expect(401);
});

it('When traffic has happened, then HTTP latencies are labelled by route pattern and the split gauges match the database', async () => {
  const { id } = await paidCheckout(h, { amount: 5_000, profit_sharing: { mode: 'planned', receivers: receivers(2, 100, 'met-') } });
  await waitForSplitStatus(h, id, ['succeeded']);
  await h.api('get', '/v1/checkouts/co_doesnotexist').expect(404);
  const res = await request(h.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  expect(res.headers['content-type']).toMatch(/text\/plain/);
  const text = res.text;
  expect(sample(text, 'gateway_http_request_duration_seconds_count', { method: 'POST', route: '/v1/checkouts', status: '201' })).toBe(1);
  expect(sample(text, 'gateway_http_request_duration_seconds_count', { method: 'GET', route: '/v1/checkouts/:id', status: '404' })).toBe(1);
  // No raw ids in labels.
  expect(text).not.toContain(id);
  // Counters against what happened: one checkout created, paid by NATIVE through one applied notify.
  expect(sample(text, 'gateway_checkouts_created_total')).toBe(1);
  expect(sample(text, 'gateway_checkouts_paid_total', { trade_type: 'NATIVE' })).toBe(1);
  expect(sample(text, 'gateway_notifies_total', { kind: 'payment', outcome: 'applied' })).toBe(1);
  expect(sample(text, 'gateway_split_batches', { state: 'pending' })).toBe(0);
  expect(sample(text, 'gateway_reconciliation_mismatches_open')).toBe(0);
  expect(sample(text, 'gateway_process_resident_memory_bytes')).toBeGreaterThan(0);
});

it('When no token is configured, then /metrics does not exist', async () => {
  const bare = await startHarness({ env: { METRICS_TOKEN: '' } });
  try {
    await request(bare.app).get('/metrics').expect(404);
  } finally {
    await bare.close();
  }
});

it('When PostgreSQL, Redis and the migrations are in place, then /readyz is 200; a missing migration makes it 503', async () => {
  const ok = await request(h.app).get('/readyz').expect(200);
  expect(ok.body).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok', migrations: 'ok' } });
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
