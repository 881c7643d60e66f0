import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sandboxEnv } from '../../src/config/sandbox';
import { freePort } from '../../scripts/services';
import { API_KEY, checkoutBody, startHarness, TEST_KEYS_DIR, UA, type Harness } from '../support/harness';
import { testQueuePrefix, testRedisUrl } from '../support/redis';
import { receivers, waitFor } from './split-support';

/**
 * Production's shape: `src/main.ts` with WEB_CONCURRENCY=2 (two gateway processes on one port, each
 * with its outbox loop, sweeper and split worker) on one database and Redis, against the simulator.
 * A burst of payments whose notifies arrive three times each, concurrently, and whose splits take
 * two batches: every payment is applied once and every batch is sent once in effect.
 */
jest.setTimeout(240_000);

let h: Harness;
let gw: ChildProcess;
let url: string;

beforeAll(async () => {
  h = await startHarness({ sim: { profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0 } } });
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const env = {
    ...sandboxEnv({ keysDir: TEST_KEYS_DIR, simulatorUrl: h.sim.url, databaseUrl: h.db.url, redisUrl: testRedisUrl(), port, publicBaseUrl: url }),
    WEB_CONCURRENCY: '2', LOG_LEVEL: 'warn', QUEUE_PREFIX: testQueuePrefix('two'), PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20',
    SWEEPER_INTERVAL_MS: '500', RECONCILE_INTERVAL_MS: '60000',
  };
  gw = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: resolve(__dirname, '../..'), env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(() => fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false), 180_000, 'two gateway processes');
});
afterAll(async () => {
  if (gw && gw.exitCode === null) {
    const exited = new Promise((r) => gw.once('exit', r));
    gw.kill('SIGTERM');
    await exited;
  }
  await h?.close();
});

/** Node children of a process: the cluster's workers (tsx's esbuild service is not one). */
function nodeChildrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      // The main thread's name: `node` up to Node 22, `MainThread` from Node 24.
      return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid && /\((node|MainThread)\)/.test(s) ? [Number(d)] : [];
    } catch {
      return [];
    }
  });
}

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

it('When a burst of notifies and splits goes through two gateway processes, then every payment is applied once and every split batch is sent once in effect', async () => {
  expect(nodeChildrenOf(gw.pid!)).toHaveLength(2);
  const N = 8;
  const plan = (i: number) => receivers(7, 100, `tp${i}-`); // limit 5: two batches per payment
  const ids = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const c = await api('/v1/checkouts', { method: 'POST', body: JSON.stringify(checkoutBody({ amount: 10_000, profit_sharing: { receivers: plan(i) } })) });
    expect(c.status).toBe(201);
    const id = ((await c.json()) as { id: string }).id;
    const page = await fetch(`${url}/checkout/${id}`, { headers: { 'user-agent': UA.chromeMac, accept: 'application/json' } });
    expect(page.status).toBe(200);
    return id;
  }));
  const orders = await h.db.prisma.channelOrder.findMany({ where: { checkoutId: { in: ids } } });
  expect(orders).toHaveLength(N);

  // Every notify three times at once (WeChat's retries racing each other), spread over both processes.
  h.sim.control.notifyFaults({ duplicate: 2 });
  for (const o of orders) expect(h.sim.control.pay(o.outTradeNo).ok).toBe(true);

  await waitFor(async () => (await h.db.prisma.checkout.count({ where: { id: { in: ids }, status: 'paid' } })) === N, 60_000, 'all payments applied');
  const done = await waitFor(async () => {
    const all = await Promise.all(ids.map((id) => api(`/v1/checkouts/${id}`).then((r) => r.json() as Promise<{ split: { status: string; unfreeze: { state: string } | null } }>)));
    return all.every((c) => c.split.status === 'succeeded' && c.split.unfreeze?.state === 'succeeded') ? all : null;
  }, 120_000, 'every split succeeded');
  expect(done).toHaveLength(N);

  // Applied once: one outbox event per payment, though every notify came three times.
  const events = await h.db.prisma.outboxEvent.groupBy({ by: ['aggregateId'], where: { type: 'payment.succeeded', aggregateId: { in: ids } }, _count: true });
  expect(events.map((e) => e._count)).toEqual(Array(N).fill(1));
  const logs = await h.db.prisma.notifyLog.groupBy({ by: ['outcome'], where: { outTradeNo: { in: orders.map((o) => o.outTradeNo) } }, _count: true });
  expect(Object.fromEntries(logs.map((l) => [l.outcome, l._count]))).toMatchObject({ applied: N });

  // Sent once in effect: at the channel, each payment has exactly two split orders (distinct
  // out_order_no), every receiver split once, the amounts exactly the plan.
  for (const [i, id] of ids.entries()) {
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    const channelOrders = h.sim.control.profitSharing.orders().filter((o) => o.transaction_id === row.transactionId);
    expect(channelOrders).toHaveLength(2);
    expect(new Set(channelOrders.map((o) => o.out_order_no)).size).toBe(2);
    const got = channelOrders.flatMap((o) => o.receivers as Array<{ account: string; amount: number; result: string }>);
    expect(got.map((r) => r.account).sort()).toEqual(plan(i).map((r) => r.account).sort());
    expect(got.every((r) => r.result === 'SUCCESS' && r.amount === 100)).toBe(true);
    expect(h.sim.control.profitSharing.unsplitAmount(row.transactionId!)).toBe(0);
  }
});

it('When checkouts are created through both processes, then /metrics shows the counters of the whole cluster whichever process answers', async () => {
  const scrape = async () => {
    // A new connection per scrape: round-robin sends them to both processes.
    const r = await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer sandbox-metrics-token', connection: 'close' } });
    expect(r.status).toBe(200);
    const line = (await r.text()).split('\n').find((l) => l.startsWith('gateway_checkouts_created_total '));
    return Number(line?.split(' ')[1]);
  };
  const before = await scrape();
  const N = 6;
  for (let i = 0; i < N; i++) {
    const c = await api('/v1/checkouts', { method: 'POST', body: JSON.stringify(checkoutBody()), headers: { connection: 'close' } });
    expect(c.status).toBe(201);
  }
  // One process alone has counted about half of them; every scrape must show all.
  for (let i = 0; i < 4; i++) expect(await scrape()).toBe(before + N);
});
