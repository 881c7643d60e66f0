import { SweepBackoff, sweepExpiredCheckouts } from '../../src/modules/payments/payment.sync';
import { PAYMENT_SUCCEEDED } from '../../src/modules/payments/payment.apply';
import { checkoutBody, OTHER_API_KEY, startHarness, UA, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  // Query the channel as soon as the shopper is back (the default waits a few seconds for the notify).
  h = await startHarness({ env: { PAYMENT_QUERY_AFTER_SECONDS: '0' } });
});
afterEach(() => {
  h.sim.control.notifyFaults({ hold: false });
  h.sim.control.releaseNotifies();
  h.sim.control.faults.clear();
});
afterAll(async () => h?.close());

const create = async (over: Record<string, unknown> = {}): Promise<string> =>
  (await h.api('post', '/v1/checkouts').send(checkoutBody(over)).expect(201)).body.id;
/** Opens the checkout as a shopper would; returns the channel order made for that browser. */
async function open(id: string, ua: string = UA.chromeMac) {
  await h.http().get(`/checkout/${id}`).set('User-Agent', ua).set('Accept', 'application/json').expect(200);
  const tradeType = ua === UA.chromeMac ? 'NATIVE' : 'H5';
  return h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id, tradeType } });
}
const status = (id: string) => h.http().get(`/checkout/${id}/status`).set('Accept', 'application/json').expect(200);
const checkout = (id: string) => h.db.prisma.checkout.findUniqueOrThrow({ where: { id }, include: { channelOrders: true } });
const queries = (mark: number, outTradeNo: string) =>
  h.sim.control.calls.slice(mark).filter((c) => c.method === 'GET' && c.path.startsWith(`/v3/pay/transactions/out-trade-no/${outTradeNo}?`));
const expireNow = (id: string) => h.db.prisma.checkout.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1000) } });

async function eventually(cond: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('result page and lost notifies', () => {
  it('When the notify is lost and the shopper comes back, then polling the status queries WeChat and records the payment', async () => {
    const id = await create();
    const order = await open(id);
    h.sim.control.notifyFaults({ hold: true });
    const paid = h.sim.control.pay(order.outTradeNo);
    if (!paid.ok) throw new Error(paid.reason);
    const mark = h.sim.control.calls.length;

    // Before the shopper returns, polling does not query the channel (the notify may still come).
    expect((await status(id)).body).toMatchObject({ id, status: 'open', paid_at: null });
    expect(queries(mark, order.outTradeNo)).toHaveLength(0);

    const result = await h.http().get(`/checkout/${id}/result`).set('Accept', 'text/html').expect(200);
    expect(result.text).toContain('正在确认支付结果');
    expect((await checkout(id)).returnedAt).toBeInstanceOf(Date);

    const s = await status(id);
    expect(s.body).toMatchObject({ id, status: 'paid' });
    expect(Date.parse(s.body.paid_at)).not.toBeNaN();
    expect(queries(mark, order.outTradeNo)).toHaveLength(1);

    const row = await checkout(id);
    expect(row).toMatchObject({ status: 'paid', transactionId: paid.tx.transactionId, paidTotalFen: 1999 });
    expect(row.channelOrders[0]).toMatchObject({ status: 'paid', transactionId: paid.tx.transactionId });
    const api = await h.api('get', `/v1/checkouts/${id}`).expect(200);
    expect(api.body).toMatchObject({ status: 'paid', transaction_id: paid.tx.transactionId });

    // The late notify is then a duplicate: acknowledged, no second transition.
    h.sim.control.notifyFaults({ hold: false });
    expect(h.sim.control.releaseNotifies()).toBe(1);
    await h.sim.control.waitFor(() => h.sim.control.notifies.some((n) => n.ref === order.outTradeNo && n.ok));
    expect(await h.db.prisma.outboxEvent.count({ where: { aggregateId: id, type: PAYMENT_SUCCEEDED } })).toBe(1);
  });

  it('When the result page is asked for JSON, then it marks the return and answers the status', async () => {
    const id = await create({ return_url: 'https://shop.example.com/done' });
    const res = await h.http().get(`/checkout/${id}/result`).set('Accept', 'application/json').expect(200);
    expect(res.body).toMatchObject({ id, status: 'open', paid_at: null, return_url: 'https://shop.example.com/done' });
    expect((await checkout(id)).returnedAt).toBeInstanceOf(Date);
  });

  it('When many tabs poll an unpaid checkout at once, then WeChat is queried once', async () => {
    const id = await create();
    const order = await open(id, UA.safariIos);
    await h.http().get(`/checkout/${id}/result`).expect(200);
    const mark = h.sim.control.calls.length;
    const answers = await Promise.all(Array.from({ length: 6 }, () => status(id)));
    for (const a of answers) expect(a.body.status).toBe('open');
    expect(queries(mark, order.outTradeNo)).toHaveLength(1);
  });

  it('When the channel query fails, then the status still answers open and a later poll finds the payment', async () => {
    const id = await create();
    const order = await open(id);
    h.sim.control.notifyFaults({ hold: true });
    expect(h.sim.control.pay(order.outTradeNo).ok).toBe(true);
    await h.http().get(`/checkout/${id}/result`).expect(200);

    h.sim.control.faults.failNext(1, { method: 'GET' });
    expect((await status(id)).body.status).toBe('open');
    // The next query is throttled per checkout; clear the throttle instead of sleeping 3 s.
    await h.deps.redis.del(`checkout:sync:${id}`);
    expect((await status(id)).body.status).toBe('paid');
  });

  it('When the result or status of an unknown checkout is asked, then it answers 404', async () => {
    const page = await h.http().get('/checkout/co_00000000000000000000/result').set('Accept', 'text/html').expect(404);
    expect(page.text).toContain('订单不存在');
    const s = await h.http().get('/checkout/co_00000000000000000000/status').set('Accept', 'application/json').expect(404);
    expect(s.body.error.code).toBe('NOT_FOUND');
  });
});

describe('sweeper', () => {
  it('When an opened checkout expires unpaid, then the sweeper closes its orders at WeChat and marks it expired', async () => {
    const id = await create({ expires_in: 60 });
    const native = await open(id, UA.chromeMac);
    const h5 = await open(id, UA.safariIos);
    await expireNow(id);

    const r = await sweepExpiredCheckouts(h.deps);
    expect(r.expired).toBeGreaterThanOrEqual(1);
    const row = await checkout(id);
    expect(row.status).toBe('expired');
    expect(row.channelOrders.map((o) => o.status)).toEqual(['closed', 'closed']);
    expect(h.sim.control.transaction(native.outTradeNo)!.state).toBe('CLOSED');
    expect(h.sim.control.transaction(h5.outTradeNo)!.state).toBe('CLOSED');
    expect((await h.api('get', `/v1/checkouts/${id}`).expect(200)).body.status).toBe('expired');
    // The shopper can no longer pay the QR shown before.
    expect(h.sim.control.pay(native.outTradeNo).ok).toBe(false);
  });

  it('When an expired checkout was paid at WeChat but the notify is lost, then the sweeper records the payment instead of expiring it', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    h.sim.control.notifyFaults({ hold: true });
    const paid = h.sim.control.pay(order.outTradeNo);
    if (!paid.ok) throw new Error(paid.reason);
    await expireNow(id);

    const r = await sweepExpiredCheckouts(h.deps);
    expect(r.paid).toBeGreaterThanOrEqual(1);
    const row = await checkout(id);
    expect(row).toMatchObject({ status: 'paid', transactionId: paid.tx.transactionId });
    expect(row.channelOrders[0]!.status).toBe('paid');
    expect(h.sim.control.transaction(order.outTradeNo)!.state).toBe('SUCCESS');
  });

  it('When one of two orders was paid and the other is still open at expiry, then the checkout is paid and the other closed', async () => {
    const id = await create({ expires_in: 60 });
    const native = await open(id, UA.chromeMac);
    const h5 = await open(id, UA.safariIos);
    h.sim.control.notifyFaults({ hold: true });
    expect(h.sim.control.pay(h5.outTradeNo).ok).toBe(true);
    await expireNow(id);

    await sweepExpiredCheckouts(h.deps);
    const row = await checkout(id);
    expect(row.status).toBe('paid');
    expect(h.sim.control.transaction(native.outTradeNo)!.state).toBe('CLOSED');
    expect(row.channelOrders.find((o) => o.id === h5.id)!.status).toBe('paid');
  });

  it('When WeChat is down during the sweep, then the checkout stays open and the next sweep expires it', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    await expireNow(id);

    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/pay/transactions/out-trade-no' });
    const first = await sweepExpiredCheckouts(h.deps);
    expect(first.failed).toBeGreaterThanOrEqual(1);
    expect((await checkout(id)).status).toBe('open');
    expect(h.sim.control.transaction(order.outTradeNo)!.state).toBe('NOTPAY');

    await sweepExpiredCheckouts(h.deps);
    expect((await checkout(id)).status).toBe('expired');
    expect(h.sim.control.transaction(order.outTradeNo)!.state).toBe('CLOSED');
  });

  it('When a page\'s order lands after its checkout ended, then the next sweep closes it at WeChat; a minute after the end the checkout leaves the sweeper\'s list for good', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    // Ended without its order closed: what a page still ordering at the moment of the close leaves.
    await h.db.prisma.checkout.update({ where: { id }, data: { status: 'closed', expiresAt: new Date(Date.now() - 1000) } });
    await sweepExpiredCheckouts(h.deps);
    expect(h.sim.control.transaction(order.outTradeNo)!.state).toBe('CLOSED');
    const swept = await checkout(id);
    expect(swept.channelOrders.map((o) => o.status)).toEqual(['closed']);
    expect(swept.ordersClosedAt).toBeNull(); // within the minute a page may still be ordering

    // Past the minute: marked done once, then never read again.
    await h.db.prisma.checkout.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 61_000) } });
    await sweepExpiredCheckouts(h.deps);
    const done = await checkout(id);
    expect(done.ordersClosedAt).not.toBeNull();
    const mark = h.sim.control.calls.length;
    await sweepExpiredCheckouts(h.deps);
    expect((await checkout(id)).ordersClosedAt).toEqual(done.ordersClosedAt);
    expect(h.sim.control.calls.slice(mark).filter((c) => c.path.includes(order.outTradeNo))).toHaveLength(0);
  });

  it('When an ended checkout still has an order the channel cannot close yet, then it is not marked done and stays on the sweeper\'s list', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    await h.db.prisma.checkout.update({ where: { id }, data: { status: 'expired', expiresAt: new Date(Date.now() - 120_000) } });
    h.sim.control.faults.failNext(1, { pathPrefix: `/v3/pay/transactions/out-trade-no/${order.outTradeNo}/close` });
    expect((await sweepExpiredCheckouts(h.deps)).failed).toBeGreaterThanOrEqual(1);
    const stuck = await checkout(id);
    expect([stuck.channelOrders[0]!.status, stuck.ordersClosedAt]).toEqual(['created', null]);
    await sweepExpiredCheckouts(h.deps);
    const closed = await checkout(id);
    expect(closed.channelOrders[0]!.status).toBe('closed');
    expect(closed.ordersClosedAt).not.toBeNull();
  });

  it('When one expired checkout keeps failing to close, then it backs off and newer expired checkouts are still swept', async () => {
    const stuck = await create({ expires_in: 60 });
    const stuckOrder = await open(stuck);
    await expireNow(stuck);
    const next = await create({ expires_in: 60 });
    await open(next);
    await expireNow(next);
    await h.db.prisma.checkout.update({ where: { id: next }, data: { expiresAt: new Date(Date.now() - 1000) } }); // newer than `stuck`
    await h.db.prisma.checkout.update({ where: { id: stuck }, data: { expiresAt: new Date(Date.now() - 60_000) } });
    h.sim.control.faults.failNext(10, { pathPrefix: `/v3/pay/transactions/out-trade-no/${stuckOrder.outTradeNo}/close` });
    const backoff = new SweepBackoff();
    const first = await sweepExpiredCheckouts(h.deps, { batch: 1, backoff });
    expect(first.failed).toBe(1);
    await sweepExpiredCheckouts(h.deps, { batch: 1, backoff });
    expect((await checkout(next)).status).toBe('expired');
    expect((await checkout(stuck)).status).toBe('open');
    h.sim.control.faults.clear();
  });

  // Bug (see report): closeOrder's ORDER_NOT_EXIST makes the sweeper fail on this checkout forever.
  it('When the only order never reached WeChat (the order call failed), then the sweeper still expires the checkout', async () => {
    const id = await create({ expires_in: 60 });
    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/pay/transactions/native' });
    await h.http().get(`/checkout/${id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(502);
    const [order] = (await checkout(id)).channelOrders;
    expect(order).toMatchObject({ status: 'created', credentialAt: null });
    expect(h.sim.control.transaction(order!.outTradeNo)).toBeUndefined();
    await expireNow(id);

    await sweepExpiredCheckouts(h.deps);
    await sweepExpiredCheckouts(h.deps);
    expect((await checkout(id)).status).toBe('expired');
  });

  it('When a checkout never opened expires, then it is marked expired without calling WeChat, and open ones are left alone', async () => {
    const expired = await create({ expires_in: 60 });
    const live = await create({ expires_in: 60 });
    await expireNow(expired);
    const mark = h.sim.control.calls.length;

    await sweepExpiredCheckouts(h.deps);
    expect((await checkout(expired)).status).toBe('expired');
    expect((await checkout(live)).status).toBe('open');
    // (Scoped to these checkouts: out_trade_no starts with the checkout id's body.)
    const mine = (c: { path: string }) => [expired, live].some((id) => c.path.includes(id.slice(3)));
    expect(h.sim.control.calls.slice(mark).filter(mine)).toHaveLength(0);
  });

  it('When the background sweeper runs, then an expired checkout gets closed without anyone calling it', async () => {
    const id = await create({ expires_in: 60 });
    const order = await open(id);
    await h.startBackground();
    await expireNow(id);
    await eventually(async () => (await checkout(id)).status === 'expired');
    await eventually(() => h.sim.control.transaction(order.outTradeNo)!.state === 'CLOSED');
  });
});

describe('Merchant close', () => {
  let hc: Harness;
  beforeAll(async () => {
    hc = await startHarness();
  });
  afterAll(async () => hc?.close());

  it('When the merchant closes an unpaid checkout, then its channel orders are closed at WeChat and the checkout is closed', async () => {
    const c = await hc.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
    await hc.http().get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
    const order = await hc.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
    const res = await hc.api('post', `/v1/checkouts/${c.body.id}/close`).expect(200);
    expect(res.body.status).toBe('closed');
    expect(hc.sim.control.transaction(order.outTradeNo)?.state).toBe('CLOSED');
    expect((await hc.db.prisma.channelOrder.findUniqueOrThrow({ where: { id: order.id } })).status).toBe('closed');
    // The page no longer offers payment, and closing again is refused.
    const page = await hc.http().get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
    expect(page.body.status).not.toBe('open');
    expect((await hc.api('post', `/v1/checkouts/${c.body.id}/close`).expect(409)).body.error.code).toBe('CHECKOUT_NOT_OPEN');
  });

  it('When the shopper paid just before the merchant closes, then the close is refused and the payment recorded', async () => {
    const c = await hc.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
    await hc.http().get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
    const order = await hc.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
    hc.sim.control.notifyFaults({ hold: true });
    try {
      hc.sim.control.pay(order.outTradeNo);
      const res = await hc.api('post', `/v1/checkouts/${c.body.id}/close`).expect(409);
      expect(res.body.error.code).toBe('CHECKOUT_NOT_OPEN');
      const got = await hc.api('get', `/v1/checkouts/${c.body.id}`).expect(200);
      expect(got.body.status).toBe('paid');
      expect(got.body.transaction_id).toBe(hc.sim.control.transaction(order.outTradeNo)?.transactionId);
    } finally {
      hc.sim.control.notifyFaults({ hold: false });
    }
  });

  it("When another merchant tries to close it, then it is not found and stays open", async () => {
    const c = await hc.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
    await hc.api('post', `/v1/checkouts/${c.body.id}/close`, OTHER_API_KEY).expect(404);
    expect((await hc.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.body.id } })).status).toBe('open');
  });
});

describe('Reload after paying while the notify is late', () => {
  let hr: Harness;
  let offsetMs = 0;
  beforeAll(async () => {
    hr = await startHarness({ now: () => new Date(Date.now() + offsetMs) });
  });
  afterAll(async () => {
    hr.sim.control.notifyFaults({ hold: false });
    await hr?.close();
  });

  it('When the stale h5_url makes the gateway re-order and WeChat answers ORDERPAID, then the shopper sees the paid page and the payment is recorded', async () => {
    const id = (await hr.api('post', '/v1/checkouts').send(checkoutBody()).expect(201)).body.id as string;
    await hr.http().get(`/checkout/${id}`).set('User-Agent', UA.safariIos).set('Accept', 'application/json').expect(200);
    const order = await hr.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id, tradeType: 'H5' } });
    hr.sim.control.notifyFaults({ hold: true });
    expect(hr.sim.control.pay(order.outTradeNo).ok).toBe(true);

    offsetMs = 5 * 60_000; // h5_url older than its 4-minute reuse window
    const page = await hr.http().get(`/checkout/${id}`).set('User-Agent', UA.safariIos).set('Accept', 'text/html');
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html');
    const row = await hr.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    expect(row.status).toBe('paid');
    expect(row.transactionId).toBe(hr.sim.control.transaction(order.outTradeNo)?.transactionId);
  });
});

describe('QR page and a lost notify', () => {
  let hq: Harness;
  beforeAll(async () => {
    hq = await startHarness({ env: { PAYMENT_QUERY_AFTER_SECONDS: '0' } });
  });
  afterAll(async () => {
    hq.sim.control.notifyFaults({ hold: false });
    await hq?.close();
  });

  it('When a desktop shopper pays the QR and the notify is lost, then the QR page poll finds the payment by a query', async () => {
    const id = (await hq.api('post', '/v1/checkouts').send(checkoutBody()).expect(201)).body.id as string;
    const page = await hq.http().get(`/checkout/${id}`).set('User-Agent', UA.chromeMac).expect(200);
    const statusUrl = /"statusUrl":"([^"]+)"/.exec(page.text)?.[1];
    expect(statusUrl).toBe(`/checkout/${id}/status?waiting=1`);
    const order = await hq.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id } });
    hq.sim.control.notifyFaults({ hold: true });
    expect(hq.sim.control.pay(order.outTradeNo).ok).toBe(true);
    const polled = await hq.http().get(statusUrl!).set('Accept', 'application/json').expect(200);
    expect(polled.body.status).toBe('paid');
    expect((await hq.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).transactionId).toBe(hq.sim.control.transaction(order.outTradeNo)?.transactionId);
  });
});
