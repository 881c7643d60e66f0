/**
 * Issue 7 (fidelity to the real WeChat Pay) and issue 8 §8 (per-order split spacing), through HTTP,
 * the database and the simulator. Each expectation comes from WeChat's rule (cited), not from our code.
 */
import { driveCheckout, type DriverDeps } from '../../src/modules/splits/split.driver';
import { createSplitsModule } from '../../src/modules/splits/split.module';
import type { RateLimiter } from '../../src/modules/splits/split.limiter';
import { SweepBackoff, sweepExpiredCheckouts, syncCheckoutWithChannel } from '../../src/modules/payments/payment.sync';
import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf } from './split-support';

let h: Harness;
const direct: RateLimiter = { run: (_m, fn) => fn() };

beforeAll(async () => {
  const mod = { ...createSplitsModule({ queuePrefix: `fidelity-${process.pid}-${Date.now()}` }), startWorkers: undefined };
  h = await startHarness({ modules: [mod], env: { PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20', PAYMENT_QUERY_AFTER_SECONDS: '0' } });
});
afterEach(() => {
  h.sim.control.notifyFaults({ hold: false });
  h.sim.control.releaseNotifies();
  h.sim.control.faults.clear();
  h.sim.control.profitSharing.setOptions({ feeRate: 0, perOrderRatePerSecond: 0, resultDelayMs: 0 });
});
afterAll(async () => h?.close());

function deps(over: Partial<DriverDeps> & { interval?: number } = {}): DriverDeps {
  const { interval, ...rest } = over;
  return { ...h.deps, config: { ...h.config, PROFIT_SHARING_ORDER_INTERVAL_MS: interval ?? 0 }, limiter: direct, pollBaseMs: 20, ...rest };
}

/** Runs the driver as the worker would, sleeping through its waits, until it has nothing left to do. */
async function driveToEnd(d: DriverDeps, id: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const step = await driveCheckout(d, id);
    if (step.kind === 'done') return;
    if (Date.now() > end) throw new Error(`driver still waiting: ${step.reason}`);
    await new Promise((r) => setTimeout(r, Math.min(2_000, Math.max(5, step.until - Date.now()))));
  }
}

const create = async (over: Record<string, unknown> = {}): Promise<string> =>
  (await h.api('post', '/v1/checkouts').send(checkoutBody(over)).expect(201)).body.id;
async function open(id: string) {
  await h.http().get(`/checkout/${id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
  return h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id } });
}
const checkoutRow = (id: string) => h.db.prisma.checkout.findUniqueOrThrow({ where: { id }, include: { channelOrders: true } });
const expireNow = (id: string) => h.db.prisma.checkout.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1000) } });

describe('§1 byte limits (UTF-8): description 127, attach 128, receiver description 80', () => {
  // WeChat refused a 69-character Chinese description (135 bytes): "字节数 144，大于最大值 127" (JeffreySu/WeiXinMPSDK#3217).
  it.each([
    ['description', { description: '商'.repeat(43) }, 'description', '127 bytes'],
    ['attach', { attach: '附'.repeat(43) }, 'attach', '128 bytes'],
    ['receiver description', { profit_sharing: { receivers: [{ ...receivers(1, 10)[0], description: '分'.repeat(27) }] } }, 'profit_sharing.receivers.0.description', '80 bytes'],
  ])('When a checkout has a Chinese %s over its byte limit, then 400 names the field and the byte limit, and nothing is written', async (_l, over, field, limit) => {
    const before = await h.db.prisma.checkout.count();
    const r = await h.api('post', '/v1/checkouts').send(checkoutBody(over)).expect(400);
    expect(r.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field });
    expect(r.body.error.message).toContain(limit);
    expect(await h.db.prisma.checkout.count()).toBe(before);
  });

  it('When a description is 42 Chinese characters (126 bytes), then it is accepted and the channel takes the order', async () => {
    const id = await create({ description: '商'.repeat(42) });
    expect((await open(id)).outTradeNo).toBeTruthy();
  });

  it('When an on-demand split has a receiver description of 27 Chinese characters (81 bytes), then 400 before anything is reserved', async () => {
    const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
    const r = await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', `k-${Date.now()}`)
      .send({ receivers: [{ ...receivers(1, 10, 'bd-')[0], description: '分'.repeat(27) }] }).expect(400);
    expect(r.body.error.field).toBe('receivers.0.description');
    expect((await checkoutRow(id)).splitReservedFen).toBe(0);
  });
});

describe('§2 a refused close follows the order state at the channel (ORDER_PAID)', () => {
  it('When the merchant closes a checkout the shopper just paid (notify not yet in), then 409 CHECKOUT_NOT_OPEN and the payment is recorded', async () => {
    const id = await create();
    const order = await open(id);
    h.sim.control.notifyFaults({ hold: true });
    expect(h.sim.control.pay(order.outTradeNo).ok).toBe(true);
    const r = await h.api('post', `/v1/checkouts/${id}/close`).expect(409);
    expect(r.body.error.code).toBe('CHECKOUT_NOT_OPEN');
    expect((await checkoutRow(id)).status).toBe('paid');
  });

  it('When the channel refuses a close with a code we do not know, then the order is queried and its paid state recorded', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    h.sim.control.notifyFaults({ hold: true });
    expect(h.sim.control.pay(order.outTradeNo).ok).toBe(true);
    await expireNow(id);
    h.sim.control.faults.failNext(1, { status: 403, code: 'RULE_LIMIT', message: '业务规则限制', pathPrefix: `/v3/pay/transactions/out-trade-no/${order.outTradeNo}/close` });
    const backoff = new SweepBackoff();
    const r = await sweepExpiredCheckouts(h.deps, { backoff });
    expect(r).toMatchObject({ paid: 1, failed: 0 });
    expect(backoff.skip(id, Date.now())).toBe(false);
    expect((await checkoutRow(id)).status).toBe('paid');
  });
});

describe('§5 REFUND proves the payment', () => {
  it('When the order was refunded at the merchant platform before we learnt of the payment, then a query records it paid and the sweeper stops closing it', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    h.sim.control.notifyFaults({ hold: true });
    expect(h.sim.control.pay(order.outTradeNo).ok).toBe(true);
    h.sim.control.transaction(order.outTradeNo)!.state = 'REFUND'; // 转入退款: reached only from SUCCESS
    expect(await syncCheckoutWithChannel(h.deps, id)).toBe(true);
    expect((await checkoutRow(id)).status).toBe('paid');
    await expireNow(id);
    expect(await sweepExpiredCheckouts(h.deps)).toMatchObject({ failed: 0 });
  });
});

describe('§6 202 USER_PAYING on close is not a close', () => {
  it('When the close answers 202 USER_PAYING, then the checkout stays open and a later sweep closes it', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    await expireNow(id);
    h.sim.control.faults.failNext(1, { status: 202, code: 'USER_PAYING', message: '用户支付中', pathPrefix: `/v3/pay/transactions/out-trade-no/${order.outTradeNo}/close` });
    const first = await sweepExpiredCheckouts(h.deps);
    expect(first.failed).toBe(1);
    const row = await checkoutRow(id);
    expect([row.status, row.channelOrders[0]!.status]).toEqual(['open', 'created']);
    await sweepExpiredCheckouts(h.deps);
    expect((await checkoutRow(id)).status).toBe('expired');
  });
});

describe('§4 settlement-cycle refusal with the real text', () => {
  it('When WeChat answers "订单处理中，请在到达结算周期之后再请求分账", then the batch fails with SETTLEMENT_CYCLE_NOT_REACHED instead of retrying', async () => {
    const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(2, 100, 'cyc-') } });
    h.sim.control.faults.failNext(1, { status: 400, code: 'INVALID_REQUEST', message: '订单处理中，请在到达结算周期之后再请求分账', pathPrefix: '/v3/profitsharing/orders', method: 'POST' });
    await driveToEnd(deps(), id);
    const s = await splitOf(h, id);
    expect(s.batches[0]!.state).toBe('failed');
    expect(s.batches[0]!.error?.code).toBe('SETTLEMENT_CYCLE_NOT_REACHED');
  });
});

describe('§7 a re-sent split is byte-identical where it matters', () => {
  it('When WeChat accepted a batch but the answer was lost, then the re-send carries the same name ciphertexts and Wechatpay-Serial and the split succeeds', async () => {
    const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(2, 100, 'seal-') } });
    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/profitsharing/orders', method: 'POST', afterProcessing: true });
    const mark = h.sim.control.calls.length;
    await driveToEnd(deps(), id);
    const s = await splitOf(h, id);
    expect(s.batches.map((b) => b.state)).toEqual(['succeeded']);
    const sends = h.sim.control.calls.slice(mark).filter((c) => c.method === 'POST' && c.path === '/v3/profitsharing/orders');
    expect(sends).toHaveLength(2);
    const wire = sends.map((c) => ({ names: (c.body as { receivers: Array<{ name: string }> }).receivers.map((r) => r.name), serial: c.headers['wechatpay-serial'] }));
    expect(wire[1]).toEqual(wire[0]);
    expect(wire[0]!.names.every((n) => typeof n === 'string' && n.length > 100)).toBe(true);
    expect(transactionId).toBeTruthy();
  });
});

describe('§3 the splittable amount: fees, merchant-funded coupons, what the channel says is left', () => {
  it('When the shopper used a merchant-funded coupon, then the budget is 30% of what the merchant receives', async () => {
    const c = await create({ amount: 10_000, profit_sharing: { mode: 'on_demand' } });
    const order = await open(c);
    h.sim.control.pay(order.outTradeNo, { payerTotal: 9_000 }); // promotion_detail: 1000 fen merchant_contribute
    await waitPaid(c);
    const over = await h.api('post', `/v1/checkouts/${c}/splits`).set('Idempotency-Key', `cp-${Date.now()}`).send({ receivers: receivers(1, 2_701, 'cp-') });
    expect([over.status, over.body.error?.code]).toEqual([422, 'SPLIT_BUDGET_EXCEEDED']);
    await h.api('post', `/v1/checkouts/${c}/splits`).set('Idempotency-Key', `cp2-${Date.now()}`).send({ receivers: receivers(1, 2_700, 'cp2-') }).expect(201);
  });

  it('When the channel refuses NOT_ENOUGH, then it is asked what is left, the batch fails saying so, and later splits are bounded by it', async () => {
    const { id, outTradeNo } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
    // Less is left at the channel than our books say (e.g. a refund at the merchant platform).
    h.sim.control.transaction(outTradeNo)!.payerTotal = 200;
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', `ne-${Date.now()}`).send({ receivers: receivers(1, 500, 'ne1-') }).expect(201);
    await driveToEnd(deps(), id);
    const s = await splitOf(h, id);
    expect(s.batches[0]).toMatchObject({ state: 'failed', error: { code: 'NOT_ENOUGH' } });
    expect(s.batches[0]!.error!.message).toContain('200 fen are left');
    const again = await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', `ne2-${Date.now()}`).send({ receivers: receivers(1, 201, 'ne2-') });
    expect([again.status, again.body.error?.code]).toEqual([422, 'SPLIT_BUDGET_EXCEEDED']);
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', `ne3-${Date.now()}`).send({ receivers: receivers(1, 200, 'ne3-') }).expect(201);
  });

  it('When WeChat keeps a 0.6% fee, then the stored unfreeze amount is what the channel unfroze (amount − fee − splits)', async () => {
    h.sim.control.profitSharing.setOptions({ feeRate: 0.006 });
    const { id, transactionId } = await paidCheckout(h, { amount: 20_000, profit_sharing: { receivers: receivers(6, 500, 'fee-') } });
    await driveToEnd(deps(), id);
    const s = await splitOf(h, id);
    expect(s.unfreeze).toMatchObject({ method: 'last_batch', state: 'succeeded' });
    expect(s.unfrozen_amount).toBe(20_000 - 120 - 3_000);
    expect(h.sim.control.profitSharing.unsplitAmount(transactionId)).toBe(0);
  });
});

describe('issue 8 §8: one split request per order per second', () => {
  it('When a payment has 3 batches and WeChat allows one request per second per order, then they arrive ≥ 1 s apart and none is refused', async () => {
    h.sim.control.profitSharing.setOptions({ perOrderRatePerSecond: 1 });
    const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(15, 10, 'gap-') } });
    await driveToEnd(deps({ interval: 1000 }), id);
    expect((await splitOf(h, id)).batches.map((b) => b.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const reqs = h.sim.control.profitSharing.requests().filter((r) => r.transactionId === transactionId);
    expect(reqs.filter((r) => r.status === 429)).toEqual([]);
    for (let i = 1; i < reqs.length; i++) expect(reqs[i]!.at - reqs[i - 1]!.at).toBeGreaterThanOrEqual(1000);
  });

  it('When requests come too fast anyway (interval 0), then 429 RATELIMIT_EXCEED is retried later and no batch fails', async () => {
    h.sim.control.profitSharing.setOptions({ perOrderRatePerSecond: 1 });
    const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(10, 10, 'fast-') } });
    await driveToEnd(deps({ interval: 0 }), id);
    expect((await splitOf(h, id)).batches.map((b) => b.state)).toEqual(['succeeded', 'succeeded']);
    const codes = h.sim.control.profitSharing.requests().filter((r) => r.transactionId === transactionId).map((r) => r.code ?? r.status);
    expect(codes).toContain('RATELIMIT_EXCEED');
  });
});

async function waitPaid(id: string): Promise<void> {
  const end = Date.now() + 10_000;
  while ((await checkoutRow(id)).status !== 'paid') {
    if (Date.now() > end) throw new Error('not paid');
    await new Promise((r) => setTimeout(r, 40));
  }
}
