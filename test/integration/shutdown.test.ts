import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { sandboxEnv } from '../../src/config/sandbox';
import { queueKeyPrefix } from '../../src/modules/splits/split.queue';
import { freePort } from '../../scripts/services';
import { API_KEY, checkoutBody, startHarness, TEST_KEYS_DIR, UA, type Harness } from '../support/harness';
import { testQueuePrefix, testRedisUrl } from '../support/redis';
import { paidCheckout, receivers, splitRequests, waitFor, waitForSplitStatus } from './split-support';

/**
 * Issue 12 §3: SIGTERM to a real gateway process (src/main.ts) while a split batch and an HTTP
 * request are in flight, both held at the simulator. New connections are refused at once; the
 * request completes; the batch completes once; the process exits 0 (not cut by the deadline);
 * no lock or lease is left behind (Redis keys, database rows); a second instance finishes the split
 * without sending the batch again.
 */
jest.setTimeout(300_000);

const DEADLINE_MS = 60_000;
let h: Harness;
let port: number;
let url: string;
let env: Record<string, string>;
const prefix = testQueuePrefix('shut');
const children: ChildProcess[] = [];

beforeAll(async () => {
  h = await startHarness({ sim: { profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0 } } });
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
  env = {
    ...(sandboxEnv({ keysDir: TEST_KEYS_DIR, simulatorUrl: h.sim.url, databaseUrl: h.db.url, redisUrl: testRedisUrl(), port, publicBaseUrl: url }) as Record<string, string>),
    WEB_CONCURRENCY: '1', LOG_LEVEL: 'warn', QUEUE_PREFIX: prefix, PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: '60000',
    SHUTDOWN_TIMEOUT_MS: String(DEADLINE_MS),
  };
});
afterAll(async () => {
  h?.sim.control.faults.release();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await h?.close();
});

/** A gateway process; resolves when /healthz answers. Its stderr is kept for the failure message. */
async function startGateway(over: Record<string, string> = {}): Promise<{ child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null }>; stderr: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: resolve(__dirname, '../..'), env: { PATH: process.env.PATH ?? '', ...env, ...over }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  await waitFor(() => fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false), 180_000, 'the gateway process to answer');
  return { child, exited, stderr: () => err };
}

/** true when a TCP connection to the gateway's port is refused. */
const refused = () =>
  new Promise<boolean>((r) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), r(false)));
    s.once('error', (e: NodeJS.ErrnoException) => r(e.code === 'ECONNREFUSED'));
  });

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

it('When SIGTERM arrives during a split batch and an HTTP request, then both complete once, new connections are refused, the process exits 0 and leaves no lease; a second instance finishes the split', async () => {
  const first = await startGateway();
  const sim = h.sim.control;

  // A split batch held at the simulator: the request is in the gateway's hands, no answer yet.
  sim.faults.holdNext(1, { pathPrefix: '/v3/profitsharing/orders', method: 'POST' });
  const paid = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'planned', receivers: receivers(2, 100, 'sd-') } });
  await waitFor(async () => sim.faults.held() === 1, 60_000, 'the split batch to reach the simulator');

  // An HTTP request in flight: the Native order of a shopper's page, held at the simulator too.
  sim.faults.holdNext(1, { pathPrefix: '/v3/pay/transactions/native', method: 'POST' });
  const c = await api('/v1/checkouts', { method: 'POST', body: JSON.stringify(checkoutBody()) });
  expect(c.status).toBe(201);
  const checkoutId = ((await c.json()) as { id: string }).id;
  const page = fetch(`${url}/checkout/${checkoutId}`, { headers: { 'user-agent': UA.chromeMac, accept: 'application/json' } });
  await waitFor(async () => sim.faults.held() === 2, 30_000, 'the page request to reach the simulator');

  first.child.kill('SIGTERM');
  await waitFor(refused, 30_000, 'new connections to be refused');
  // Refused while the process still runs, with both calls still held: it stopped accepting, it did not die.
  expect(first.child.exitCode).toBeNull();
  expect(sim.faults.held()).toBe(2);

  expect(sim.faults.release()).toBe(2);
  const res = await page;
  expect(res.status).toBe(200);
  expect(((await res.json()) as { trade_type?: string; code_url?: string }).code_url ?? JSON.stringify(res)).toBeTruthy();

  const exit = await first.exited;
  expect({ ...exit, stderr: exit.code === 0 ? '' : first.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });

  // The batch was sent exactly once and its answer stored.
  const sent = splitRequests(h, paid.transactionId);
  expect(sent).toHaveLength(1);
  const batch = await h.db.prisma.splitBatch.findFirstOrThrow({ where: { outOrderNo: sent[0]!.outOrderNo } });
  expect(batch.state).not.toBe('pending');
  expect(batch.orderId).not.toBeNull();

  // Nothing left for another instance to wait out.
  const qp = queueKeyPrefix(prefix);
  const keys = await h.deps.redis.keys(`${qp}:*`);
  expect(keys.filter((k) => /lock/.test(k))).toEqual([]);
  expect(await h.deps.redis.llen(`${qp}:splits:active`)).toBe(0);
  const now = Date.now();
  const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: paid.id } });
  // The run's due lease (15 s) was replaced by the time its next step is due (a 20 ms poll).
  if (row.splitDueAt) expect(row.splitDueAt.getTime()).toBeLessThan(now + 5_000);
  expect(await h.db.prisma.outboxEvent.count({ where: { processedAt: null, availableAt: { gt: new Date(now + 5_000) } } })).toBe(0);
  expect(await h.db.prisma.webhookDelivery.count({ where: { leaseUntil: { not: null } } })).toBe(0);
  expect(await h.db.prisma.refund.count({ where: { leaseUntil: { not: null } } })).toBe(0);

  // A second instance takes over what is due and does not send the batch again.
  const second = await startGateway();
  await waitForSplitStatus(h, paid.id, ['succeeded'], 60_000);
  expect(splitRequests(h, paid.transactionId)).toHaveLength(1);
  second.child.kill('SIGTERM');
  expect((await second.exited).code).toBe(0);
});

it('When a request is still in flight at the shutdown deadline, then its connection is cut and the process exits 1', async () => {
  const gw = await startGateway({ SHUTDOWN_TIMEOUT_MS: '2000' });
  const sim = h.sim.control;
  sim.faults.holdNext(1, { pathPrefix: '/v3/pay/transactions/native', method: 'POST' });
  try {
    const c = await api('/v1/checkouts', { method: 'POST', body: JSON.stringify(checkoutBody()) });
    const checkoutId = ((await c.json()) as { id: string }).id;
    const page = fetch(`${url}/checkout/${checkoutId}`, { headers: { 'user-agent': UA.chromeMac, accept: 'application/json' } }).then((r) => r.status, () => 'cut');
    await waitFor(async () => sim.faults.held() === 1, 30_000, 'the page request to reach the simulator');
    gw.child.kill('SIGTERM');
    expect((await gw.exited).code).toBe(1);
    expect(await page).toBe('cut');
  } finally {
    sim.faults.release();
  }
});
