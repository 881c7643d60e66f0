import { alertFrozenFunds } from '../../src/modules/splits/split.reconcile';
import { getStore, relationKey } from '../../src/simulator/profitsharing/store';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf, splitRequests, waitFor, waitForSplitStatus } from './split-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: '60000' } });
  await h.startBackground();
});
afterAll(async () => h?.close());

it('When a 30-receiver planned payment is paid with a limit of 5, then exactly 6 channel requests with distinct out_order_no split exactly the plan, and the rest is unfrozen', async () => {
  const plan = receivers(30, 100, 'p30-');
  const { id, transactionId } = await paidCheckout(h, { amount: 20_000, profit_sharing: { receivers: plan } });
  const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed']);

  expect(s.status).toBe('succeeded');
  const reqs = splitRequests(h, transactionId);
  expect(reqs).toHaveLength(6);
  expect(new Set(reqs.map((r) => r.outOrderNo)).size).toBe(6);
  expect(reqs.every((r) => r.status === 200)).toBe(true);
  const orders = h.sim.control.profitSharing.orders().filter((o) => o.transaction_id === transactionId);
  const channelReceivers = orders.flatMap((o) => o.receivers as Array<{ account: string; amount: number; result: string }>);
  expect(channelReceivers.map((r) => r.account).sort()).toEqual(plan.map((r) => r.account).sort());
  expect(channelReceivers.reduce((a, r) => a + r.amount, 0)).toBe(3000);
  expect(channelReceivers.every((r) => r.result === 'SUCCESS')).toBe(true);
  expect(s.batches).toHaveLength(6);
  expect(s.batches.every((b) => b.receivers.length === 5 && b.state === 'succeeded')).toBe(true);
  // Receivers were added at the channel first, once each.
  const adds = h.sim.control.calls.filter((c) => c.path === '/v3/profitsharing/receivers/add');
  expect(adds.filter((c) => String((c.body as { account?: string }).account).startsWith('p30-'))).toHaveLength(30);
  // unfreeze_unsplit on the last batch released the remainder: no separate unfreeze request.
  expect(h.sim.control.profitSharing.requests().filter((r) => r.kind === 'unfreeze' && r.transactionId === transactionId)).toHaveLength(0);
  expect(s.unfreeze).toMatchObject({ method: 'last_batch', state: 'succeeded' });
  expect(s.unfrozen_amount).toBe(20_000 - 3000);
  expect(h.sim.control.profitSharing.unsplitAmount(transactionId)).toBe(0);
  const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  expect(row.splitReservedFen).toBe(3000);
  expect(row.splitRequests).toBe(6);
  // Times written by raw SQL are real UTC instants, like Prisma's own.
  const near = (d: Date | null) => Math.abs((d?.getTime() ?? 0) - Date.now()) < 60_000;
  expect(near(row.splitFinishedAt)).toBe(true);
  const rs = await h.db.prisma.splitReceiver.findMany({ where: { checkoutId: id } });
  expect(rs.every((r) => near(r.finishedAt) && near(r.updatedAt) && r.detailId)).toBe(true);
});

it('When the channel answers 5xx twice, then the batch is retried with the same out_order_no and succeeds', async () => {
  h.sim.control.faults.failNext(2, { pathPrefix: '/v3/profitsharing/orders', method: 'POST' });
  const { id, transactionId } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: receivers(2, 50, 'tr-') } });
  const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed']);
  expect(s.status).toBe('succeeded');
  const calls = h.sim.control.calls.filter((c) => c.path === '/v3/profitsharing/orders' && c.method === 'POST' && (c.body as { transaction_id?: string }).transaction_id === transactionId);
  expect(calls.map((c) => c.status)).toEqual([500, 500, 200]);
  expect(new Set(calls.map((c) => (c.body as { out_order_no: string }).out_order_no)).size).toBe(1);
  expect(splitRequests(h, transactionId).filter((r) => r.status === 200)).toHaveLength(1);
});

it('When the channel refuses a batch terminally (NOT_ENOUGH), then that batch fails with the reason shown and its budget is released', async () => {
  h.sim.control.faults.failNext(1, { pathPrefix: '/v3/profitsharing/orders', method: 'POST', status: 403, code: 'NOT_ENOUGH', message: '分账金额不足' });
  const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: receivers(7, 10, 'ne-') } });
  const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed']);
  expect(s.status).toBe('partially_failed');
  // The message adds what the channel said was left when it refused (issue 7 §3).
  expect(s.batches[0]).toMatchObject({ state: 'failed', error: { code: 'NOT_ENOUGH', message: expect.stringContaining('分账金额不足') } });
  expect(s.batches[0]!.receivers.every((r) => r.state === 'CLOSED' && r.reason === 'NOT_ENOUGH')).toBe(true);
  expect(s.batches[1]!.state).toBe('succeeded');
  // The refused last-batch unfreeze does not apply here (batch 1 failed, batch 2 carried it).
  expect(s.unfreeze).toMatchObject({ method: 'last_batch', state: 'succeeded' });
  const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  expect(row.splitReservedFen).toBe(20); // 5 × 10 refused and released; 2 × 10 split
  expect(row.splitRequests).toBe(1); // a refused request does not count toward the cap
});

it('When the channel closes a receiver (RECEIVER_HIGH_RISK), then it is CLOSED with the reason, its money released, the others paid', async () => {
  h.sim.control.profitSharing.failReceiver('hr-001', 'RECEIVER_HIGH_RISK');
  const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: receivers(3, 20, 'hr-') } });
  const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed']);
  h.sim.control.profitSharing.failReceiver('hr-001', null);
  expect(s.status).toBe('partially_failed');
  expect(s.batches[0]!.receivers).toEqual([
    { type: 'MERCHANT_ID', account: 'hr-000', amount: 20, state: 'SUCCESS', reason: null },
    { type: 'MERCHANT_ID', account: 'hr-001', amount: 20, state: 'CLOSED', reason: 'RECEIVER_HIGH_RISK' },
    { type: 'MERCHANT_ID', account: 'hr-002', amount: 20, state: 'SUCCESS', reason: null },
  ]);
  expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(40);
});

it('When a receiver must be added first, then receivers/add precedes the split and happens once per receiver across payments', async () => {
  const shared = receivers(2, 10, 'once-');
  const a = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: shared } });
  await waitForSplitStatus(h, a.id, ['succeeded']);
  const b = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: shared } });
  await waitForSplitStatus(h, b.id, ['succeeded']);
  const adds = h.sim.control.calls.filter((c) => c.path === '/v3/profitsharing/receivers/add' && String((c.body as { account?: string }).account).startsWith('once-'));
  expect(adds).toHaveLength(2);
  // The name went encrypted, with the platform key's serial in Wechatpay-Serial (the simulator checks both).
  expect(adds.every((c) => c.status === 200)).toBe(true);
});

it('When a remembered receiver was unbound at the channel since, then the batch re-adds it and succeeds instead of failing', async () => {
  const rcv = receivers(1, 10, 'rel-');
  const a = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: rcv } });
  await waitForSplitStatus(h, a.id, ['succeeded']);
  // Unbound at WeChat (e.g. deleted in the merchant platform) while we still remember it as added.
  expect(getStore(h.sim.ctx).relations.delete(relationKey('MERCHANT_ID', 'rel-000'))).toBe(true);
  const b = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: rcv } });
  const s = await waitForSplitStatus(h, b.id, ['succeeded', 'partially_failed', 'failed']);
  expect(s.status).toBe('succeeded');
  const adds = h.sim.control.calls.filter((c) => c.path === '/v3/profitsharing/receivers/add' && (c.body as { account?: string }).account === 'rel-000');
  expect(adds).toHaveLength(2);
  const sends = splitRequests(h, b.transactionId);
  expect(sends.map((r) => r.status)).toEqual([400, 200]); // refused (no relation), then the same out_order_no accepted
  expect(new Set(sends.map((r) => r.outOrderNo)).size).toBe(1);
});

it('When an on-demand payment is split in stages and finished, then each stage is its own split and the remainder is unfrozen with a new out_order_no', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
  let s = await splitOf(h, id);
  expect(s.status).toBe('none');
  const first = await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'stage-1').send({ receivers: receivers(2, 500, 'od-') }).expect(201);
  expect(first.body).toMatchObject({ object: 'split', seq: 1, amount: 1000 });
  const replay = await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'stage-1').send({ receivers: receivers(2, 500, 'od-') }).expect(201);
  expect(replay.headers['idempotent-replayed']).toBe('true');
  expect(replay.body.id).toBe(first.body.id);
  await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'stage-2').send({ receivers: receivers(1, 700, 'od2-') }).expect(201);
  await waitFor(async () => ((await splitOf(h, id)).status === 'succeeded' ? true : null), 10_000, 'two stages');
  await h.api('post', `/v1/checkouts/${id}/splits/finish`).send({}).expect(202);
  s = await waitForSplitStatus(h, id, ['succeeded']);
  expect(s.unfreeze).toMatchObject({ method: 'explicit', state: 'succeeded', amount: 10_000 - 1700 });
  expect(s.unfrozen_amount).toBe(8300);
  const nos = [...s.batches.map((b) => b.out_order_no), s.unfreeze!.out_order_no];
  expect(new Set(nos).size).toBe(nos.length);
  expect(h.sim.control.profitSharing.requests().filter((r) => r.transactionId === transactionId && r.kind === 'unfreeze')).toHaveLength(1);
  // Finished: no further split is accepted.
  const late = await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'stage-3').send({ receivers: receivers(1, 1, 'od3-') }).expect(409);
  expect(late.body.error.code).toBe('SPLIT_NOT_ALLOWED');
});

it('When a payment stays frozen near the end of the split window, then an alert is stored and shown', async () => {
  // The alert job runs with the reconciliation loop; call it directly with a window that already ends.
  const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
  const cfg = { ...h.config, PROFIT_SHARING_WINDOW_DAYS: 1, PROFIT_SHARING_ALERT_BEFORE_DAYS: 1 };
  expect(await alertFrozenFunds({ ...h.deps, config: cfg })).toBeGreaterThanOrEqual(1);
  expect(await alertFrozenFunds({ ...h.deps, config: cfg })).toBe(0); // stored once
  const s = await splitOf(h, id);
  expect(s.alerts).toEqual([expect.objectContaining({ kind: 'FREEZE_WINDOW_ENDING' })]);
});
