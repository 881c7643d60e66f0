import request from 'supertest';
import { createMerchant, SANDBOX_MERCHANT_ID } from '../../src/modules/merchants/merchant.service';
import { refundsModule } from '../../src/modules/refunds/refund.module';
import * as webhooks from '../../src/modules/webhooks/webhook.publish';
import { OTHER_API_KEY, startHarness, type Harness } from '../support/harness';
import { paidCheckout, waitFor } from './split-support';
import { buildRefundNotify, ENV, getRefund, newKey, postRefund, refundCalls, waitForRefund } from './refund-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: ENV, sim: { refundResultDelayMs: 0 } });
  await h.startBackground();
});
afterAll(async () => h?.close());
afterEach(() => h.sim.control.faults.clear());

const rows = (checkoutId: string) => h.db.prisma.refund.findMany({ where: { checkoutId } });

describe('refunds through the API', () => {
  test('When a paid checkout is refunded partly, then fully, then once more, then the amounts add up and the last is refused', async () => {
    const c = await paidCheckout(h, { amount: 1000 });
    const a = await postRefund(h, c.id, { amount: 300, reason: '部分退款' }).expect(201);
    expect(a.body).toMatchObject({ checkout_id: c.id, amount: 300, reason: '部分退款', split_returns: [] });
    expect(a.body.id).toMatch(/^re_/);
    expect(['pending', 'processing', 'succeeded']).toContain(a.body.status);
    const done = await waitForRefund(h, a.body.id, ['succeeded']);
    expect(done.succeeded_at).toBeDefined();
    expect(done.out_refund_no).toBe(a.body.id);

    const b = await postRefund(h, c.id, { amount: 700, out_refund_no: `MY-${Date.now()}` }).expect(201);
    await waitForRefund(h, b.body.id, ['succeeded']);
    expect(b.body.out_refund_no).toMatch(/^MY-/);

    const over = await postRefund(h, c.id, { amount: 1 }).expect(422);
    expect(over.body.error.code).toBe('REFUND_AMOUNT_EXCEEDED');

    const co = (await h.api('get', `/v1/checkouts/${c.id}`).expect(200)).body;
    expect(co.refunded_amount).toBe(1000);
    expect(co.refundable_amount).toBe(0);
    expect(co.refunds.map((r: { id: string }) => r.id)).toEqual([a.body.id, b.body.id]);
    expect((await rows(c.id)).length).toBe(2);
    // The channel got each refund once, under the refund's own number.
    const sent = refundCalls(h).filter((x) => (x.body as { transaction_id?: string }).transaction_id === c.transactionId);
    expect(sent.map((x) => (x.body as { out_refund_no: string }).out_refund_no).sort()).toEqual([a.body.id, b.body.id].sort());
    expect(h.sim.control.refunds.refunds().filter((r) => r.transaction_id === c.transactionId).map((r) => r.status)).toEqual(['SUCCESS', 'SUCCESS']);
  });

  test('When a refund is over the paid amount, then it is refused with 422 and nothing is written', async () => {
    const c = await paidCheckout(h, { amount: 500 });
    const r = await postRefund(h, c.id, { amount: 501 }).expect(422);
    expect(r.body.error.code).toBe('REFUND_AMOUNT_EXCEEDED');
    expect(await rows(c.id)).toEqual([]);
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.id } });
    expect(row.refundedFen).toBe(0);
  });

  test('When the same Idempotency-Key is sent again, then the same refund comes back and the channel is asked once', async () => {
    const c = await paidCheckout(h, { amount: 800 });
    const key = newKey();
    const first = await postRefund(h, c.id, { amount: 100 }, key).expect(201);
    const again = await postRefund(h, c.id, { amount: 100 }, key).expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    const other = await postRefund(h, c.id, { amount: 200 }, key).expect(409);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    await waitForRefund(h, first.body.id, ['succeeded']);
    expect((await rows(c.id)).length).toBe(1);
    expect(refundCalls(h).filter((x) => (x.body as { out_refund_no: string }).out_refund_no === first.body.id).length).toBe(1);
  });

  test('When 20 refunds that each fit but together do not arrive at once, then the database lets exactly the ones that fit through', async () => {
    const c = await paidCheckout(h, { amount: 1000 });
    const answers = await Promise.all(Array.from({ length: 20 }, () => postRefund(h, c.id, { amount: 150 })));
    const ok = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status !== 201);
    expect(ok.length).toBe(6); // 6 × 150 = 900 ≤ 1000 < 7 × 150
    for (const a of refused) {
      expect(a.status).toBe(422);
      expect(a.body.error.code).toBe('REFUND_AMOUNT_EXCEEDED');
    }
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.id } });
    expect(row.refundedFen).toBe(900);
    expect((await rows(c.id)).length).toBe(6);
    await Promise.all(ok.map((a) => waitForRefund(h, a.body.id, ['succeeded'])));
  });

  test('When the merchant has not enough available balance, then the refund fails with NOT_ENOUGH, shown, and the budget is released', async () => {
    const c = await paidCheckout(h, { amount: 900 });
    h.sim.control.refunds.setAvailableBalance(100);
    try {
      const r = await postRefund(h, c.id, { amount: 400 }).expect(201);
      const failed = await waitForRefund(h, r.body.id, ['failed']);
      expect(failed.failure_code).toBe('NOT_ENOUGH');
      expect(failed.failure_reason).toContain('余额不足');
      const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.id } });
      expect(row.refundedFen).toBe(0);
    } finally {
      h.sim.control.refunds.setAvailableBalance(10_000_000);
    }
    // With money back, a new refund goes through.
    const again = await postRefund(h, c.id, { amount: 400 }).expect(201);
    await waitForRefund(h, again.body.id, ['succeeded']);
  });

  test('When WeChat reports the refund ABNORMAL, then it is shown as abnormal with a reason; CLOSED releases the amount', async () => {
    const c = await paidCheckout(h, { amount: 600 });
    h.sim.control.refunds.nextOutcome('ABNORMAL');
    const a = await postRefund(h, c.id, { amount: 100 }).expect(201);
    const ab = await waitForRefund(h, a.body.id, ['abnormal']);
    expect(ab.failure_code).toBe('ABNORMAL');
    h.sim.control.refunds.nextOutcome('CLOSED');
    const b = await postRefund(h, c.id, { amount: 200 }).expect(201);
    const cl = await waitForRefund(h, b.body.id, ['closed']);
    expect(cl.failure_code).toBe('CLOSED');
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.id } });
    expect(row.refundedFen).toBe(100); // the abnormal one still holds its amount; the closed one does not
  });

  test('When the channel answers 5xx, then the refund is re-sent with the same out_refund_no and happens once', async () => {
    const c = await paidCheckout(h, { amount: 700 });
    h.sim.control.faults.failNext(1, { pathPrefix: '/v3/refund/domestic/refunds', method: 'POST' });
    const r = await postRefund(h, c.id, { amount: 250 }).expect(201);
    await waitForRefund(h, r.body.id, ['succeeded'], 20_000);
    const sent = refundCalls(h).filter((x) => (x.body as { out_refund_no: string }).out_refund_no === r.body.id);
    expect(sent.length).toBe(2);
    expect(h.sim.control.refunds.refunds().filter((x) => x.out_refund_no === r.body.id).length).toBe(1);
  });

  test('When no notify comes, then the query finds the result', async () => {
    const c = await paidCheckout(h, { amount: 700 });
    h.sim.control.notifyFaults({ hold: true });
    try {
      const r = await postRefund(h, c.id, { amount: 50 }).expect(201);
      const done = await waitForRefund(h, r.body.id, ['succeeded'], 20_000);
      expect(done.status).toBe('succeeded');
      expect(h.sim.control.calls.some((x) => x.method === 'GET' && x.path === `/v3/refund/domestic/refunds/${r.body.id}`)).toBe(true);
    } finally {
      h.sim.control.notifyFaults({ hold: false });
      h.sim.control.releaseNotifies();
    }
  });
});

describe('refund notify', () => {
  async function processingRefund(amount = 100) {
    const c = await paidCheckout(h, { amount: 1000 });
    // Held notifies: the refund stays processing until we deliver a notify ourselves.
    h.sim.control.notifyFaults({ hold: true });
    const r = await postRefund(h, c.id, { amount }).expect(201);
    await waitForRefund(h, r.body.id, ['processing']);
    await h.db.prisma.refund.update({ where: { id: r.body.id }, data: { nextAttemptAt: new Date(Date.now() + 3_600_000) } });
    h.sim.control.notifyFaults({ hold: false });
    return { c, id: r.body.id as string };
  }
  const resource = (h: Harness, c: { transactionId: string; outTradeNo: string }, id: string, amount: number, status = 'SUCCESS') => ({
    mchid: h.config.WECHATPAY_MCHID, out_trade_no: c.outTradeNo, transaction_id: c.transactionId, out_refund_no: id,
    refund_id: '50300000000000000000000000001', refund_status: status, success_time: '2026-11-25T18:00:00+08:00',
    user_received_account: '支付用户零钱', amount: { total: 1000, refund: amount, payer_total: 1000, payer_refund: amount },
  });

  test('When a valid notify arrives 10 times at once, then the refund succeeds once and every copy gets 204', async () => {
    const { c, id } = await processingRefund(120);
    const n = buildRefundNotify(h, resource(h, c, id, 120));
    const answers = await Promise.all(Array.from({ length: 10 }, () => request(h.app).post('/notify/wechatpay/refunds').set(n.headers).send(n.body)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(204));
    const r = await getRefund(h, id);
    expect(r.status).toBe('succeeded');
    const logs = await h.db.prisma.notifyLog.findMany({ where: { kind: 'refund', body: n.body } });
    expect(logs.filter((l) => l.outcome === 'applied').length).toBe(1);
    expect(logs.filter((l) => l.outcome === 'duplicate').length).toBe(9);
    h.sim.control.releaseNotifies();
  });

  test('When a notify is forged, for an unknown refund or with another amount, then it is refused and nothing changes', async () => {
    const { c, id } = await processingRefund(130);
    const forged = buildRefundNotify(h, resource(h, c, id, 130), { badSignature: true });
    expect((await request(h.app).post('/notify/wechatpay/refunds').set(forged.headers).send(forged.body)).status).toBe(401);
    const unknown = buildRefundNotify(h, resource(h, c, 're_00000000000000000000', 130));
    expect((await request(h.app).post('/notify/wechatpay/refunds').set(unknown.headers).send(unknown.body)).status).toBe(404);
    const wrong = buildRefundNotify(h, resource(h, c, id, 131));
    expect((await request(h.app).post('/notify/wechatpay/refunds').set(wrong.headers).send(wrong.body)).status).toBe(400);
    expect((await getRefund(h, id)).status).toBe('processing');
    const abnormal = buildRefundNotify(h, resource(h, c, id, 130, 'ABNORMAL'), { eventType: 'REFUND.ABNORMAL' });
    expect((await request(h.app).post('/notify/wechatpay/refunds').set(abnormal.headers).send(abnormal.body)).status).toBe(204);
    expect((await getRefund(h, id)).status).toBe('abnormal');
    h.sim.control.releaseNotifies();
  });
});

describe('bad input writes nothing', () => {
  test('When the body, key or checkout is wrong, then a 4xx with error.code comes back and no refund exists', async () => {
    const c = await paidCheckout(h, { amount: 300 });
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ amount: 0 }, 400, 'VALIDATION_FAILED'],
      [{ amount: 1.5 }, 400, 'VALIDATION_FAILED'],
      [{ amount: '100' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 100, extra: 1 }, 400, 'VALIDATION_FAILED'],
      [{ amount: 100, out_refund_no: 'has space' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 100, split_return: 'some' }, 400, 'VALIDATION_FAILED'],
      [{ amount: 100, split_return: [{ account: 'a', amount: 1 }, { account: 'a', amount: 1 }] }, 400, 'VALIDATION_FAILED'],
      [{ amount: 100, split_return: [{ account: 'nobody', amount: 10 }] }, 422, 'RETURN_NOT_POSSIBLE'],
    ];
    for (const [body, status, code] of cases) {
      const r = await postRefund(h, c.id, body);
      expect([r.status, r.body.error?.code]).toEqual([status, code]);
    }
    const noKey = await postRefund(h, c.id, { amount: 100 }, null).expect(400);
    expect(noKey.body.error.code).toBe('VALIDATION_FAILED');
    expect((await postRefund(h, 'co_00000000000000000000', { amount: 1 }).expect(404)).body.error.code).toBe('NOT_FOUND');
    expect((await h.api('get', '/v1/refunds/re_nope').expect(404)).body.error.code).toBe('NOT_FOUND');
    const open = await h.api('post', '/v1/checkouts').send({ out_trade_no: `O${Date.now()}`, amount: 100, description: 'x' }).expect(201);
    expect((await postRefund(h, open.body.id, { amount: 1 }).expect(409)).body.error.code).toBe('REFUND_NOT_ALLOWED');
    expect(await rows(c.id)).toEqual([]);
    expect(await rows(open.body.id)).toEqual([]);
  });

  test('When the payment is more than a year old, then the refund is refused', async () => {
    const c = await paidCheckout(h, { amount: 300 });
    await h.db.prisma.checkout.update({ where: { id: c.id }, data: { paidAt: new Date(Date.now() - 366 * 86_400_000) } });
    const r = await postRefund(h, c.id, { amount: 100 }).expect(409);
    expect(r.body.error.code).toBe('REFUND_NOT_ALLOWED');
    expect(await rows(c.id)).toEqual([]);
  });

  test("When another merchant asks for a refund or reads it, then it is not found", async () => {
    const c = await paidCheckout(h, { amount: 300 });
    const r = await postRefund(h, c.id, { amount: 100 }).expect(201);
    await waitFor(async () => (await getRefund(h, r.body.id)).status === 'succeeded', 10_000);
    await h.api('get', `/v1/refunds/${r.body.id}`, OTHER_API_KEY).expect(404);
    await h.api('post', `/v1/checkouts/${c.id}/refunds`, OTHER_API_KEY).set('Idempotency-Key', newKey()).send({ amount: 1 }).expect(404);
  });
});

describe('events, OpenAPI and the demo shop', () => {
  test('When refunds end succeeded, failed or abnormal, then the matching merchant event is published with the refund, rendered as GET shows it', async () => {
    const spy = jest.spyOn(webhooks, 'publishEvent');
    try {
      const c = await paidCheckout(h, { amount: 900 });
      const ok = await postRefund(h, c.id, { amount: 100 }).expect(201);
      await waitForRefund(h, ok.body.id, ['succeeded']);
      h.sim.control.refunds.nextOutcome('ABNORMAL');
      const ab = await postRefund(h, c.id, { amount: 100 }).expect(201);
      await waitForRefund(h, ab.body.id, ['abnormal']);
      h.sim.control.refunds.setAvailableBalance(0);
      const nf = await postRefund(h, c.id, { amount: 700 }).expect(201);
      await waitForRefund(h, nf.body.id, ['failed']);
      h.sim.control.refunds.setAvailableBalance(10_000_000);
      const events = spy.mock.calls.map(([, e]) => [e.type, e.object.id]).filter(([, id]) => [ok.body.id, ab.body.id, nf.body.id].includes(id));
      expect(events).toEqual([['refund.succeeded', ok.body.id], ['refund.abnormal', ab.body.id], ['refund.failed', nf.body.id]]);
      expect(spy.mock.calls.find(([, e]) => e.object.id === ok.body.id)![1]).toMatchObject({ merchantId: 'mch_test', checkoutId: c.id, object: { kind: 'refund' } });
    } finally {
      spy.mockRestore();
    }
    const c2 = await paidCheckout(h, { amount: 200 });
    const r = await postRefund(h, c2.id, { amount: 50 }).expect(201);
    await waitForRefund(h, r.body.id, ['succeeded']);
    expect(await refundsModule.eventObjects!(h.deps).refund!(r.body.id)).toEqual(await getRefund(h, r.body.id));
  });

  test('When the OpenAPI document is read, then it has the refund routes generated from their schemas', async () => {
    const doc = (await request(h.app).get('/openapi.json').expect(200)).body;
    const post = doc.paths['/v1/checkouts/{id}/refunds'].post;
    expect(Object.keys(post.requestBody.content['application/json'].schema.properties).sort()).toEqual(['amount', 'out_refund_no', 'reason', 'split_return']);
    expect(doc.paths['/v1/refunds/{id}'].get).toBeDefined();
    expect(doc.components.schemas.Refund.properties.status.enum).toContain('abnormal');
  });

  test('When the sandbox shop refunds a paid checkout with its button, then the refund is made and shown', async () => {
    await createMerchant(h.db.prisma, { id: SANDBOX_MERCHANT_ID, name: '演示商户', apiKey: 'sk_demo_refund_test_00001' });
    const c = await h.api('post', '/v1/checkouts', 'sk_demo_refund_test_00001').send({ out_trade_no: `D${Date.now()}`, amount: 500, description: '演示' }).expect(201);
    await h.http().get(`/checkout/${c.body.id}`).set('User-Agent', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_0) AppleWebKit/537.36 Chrome/84.0 Safari/537.36').set('Accept', 'application/json').expect(200);
    const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
    h.sim.control.pay(order.outTradeNo);
    await waitFor(async () => (await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.body.id } })).status === 'paid', 10_000);
    const shop = await request(h.app).get('/').expect(200);
    expect(shop.text).toContain(`action="/demo/checkouts/${c.body.id}/refunds"`);
    await request(h.app).post(`/demo/checkouts/${c.body.id}/refunds`).type('form').send({ amount: '1.50' }).expect(303);
    const rows = await h.db.prisma.refund.findMany({ where: { checkoutId: c.body.id } });
    expect(rows.map((r) => r.amountFen)).toEqual([150]);
    await waitFor(async () => (await h.db.prisma.refund.findUniqueOrThrow({ where: { id: rows[0]!.id } })).status === 'succeeded', 10_000);
    expect((await request(h.app).get('/').expect(200)).text).toContain('已退款 ¥1.50');
    await request(h.app).post(`/demo/checkouts/${c.body.id}/refunds`).type('form').send({ amount: '9.99' }).expect(422);
  });
});
