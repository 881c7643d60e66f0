/**
 * Refunds and balances of the simulator app: signed requests through the real endpoints, WeChat's refusals,
 * the REFUND.* notify, and NOT_ENOUGH decided by the available balance, never by other payments' frozen funds.
 */
import { createSign, randomBytes } from 'node:crypto';
import { startSimulator, type RunningSimulator } from '../../src/simulator/app';
import { generateSimKeys, type SandboxKeys } from '../../src/simulator/keys';

let keys: SandboxKeys;
let sim: RunningSimulator;
beforeAll(() => {
  keys = generateSimKeys();
});
beforeEach(async () => {
  sim = await startSimulator({ keys, refundResultDelayMs: 1_000, profitSharing: { resultDelayMs: 0, feeRate: 0 } });
  sim.control.notifyFaults({ hold: true });
});
afterEach(async () => sim.close());

async function call(method: 'GET' | 'POST', path: string, body?: unknown) {
  const text = body === undefined ? '' : JSON.stringify(body);
  const ts = String(Math.floor(sim.ctx.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const signature = createSign('RSA-SHA256').update(`${method}\n${path}\n${ts}\n${nonce}\n${text}\n`).sign(keys.merchantPrivateKey, 'base64');
  const res = await fetch(sim.url + path, {
    method,
    headers: {
      Accept: 'application/json',
      ...(text ? { 'Content-Type': 'application/json' } : {}),
      Authorization: `WECHATPAY2-SHA256-RSA2048 mchid="${sim.ctx.opts.mchid}",nonce_str="${nonce}",timestamp="${ts}",serial_no="${keys.merchantCertSerial}",signature="${signature}"`,
    },
    body: text || undefined,
  });
  const raw = await res.text();
  return { status: res.status, body: raw ? JSON.parse(raw) : undefined };
}

async function paidOrder(outTradeNo: string, total: number, profitSharing: boolean): Promise<string> {
  const o = await call('POST', '/v3/pay/transactions/native', {
    appid: sim.ctx.opts.appid, mchid: sim.ctx.opts.mchid, description: '退款测试', out_trade_no: outTradeNo,
    notify_url: 'https://merchant.example.com/wxpay/notify', amount: { total, currency: 'CNY' }, settle_info: { profit_sharing: profitSharing },
  });
  expect(o.status).toBe(200);
  const paid = sim.control.pay(outTradeNo);
  if (!paid.ok) throw new Error(paid.reason);
  return paid.tx.transactionId!;
}

const refund = (b: Record<string, unknown>) => call('POST', '/v3/refund/domestic/refunds', { notify_url: 'https://merchant.example.com/wxpay/refund', ...b });

it('When a payment is refunded, then it is PROCESSING, then SUCCESS with a REFUND.SUCCESS notify; WeChat refusals come where they would', async () => {
  const txId = await paidOrder('RFSIM0001', 1000, false);
  const r = await refund({ transaction_id: txId, out_refund_no: 'RF1', amount: { refund: 400, total: 1000, currency: 'CNY' } });
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ out_refund_no: 'RF1', status: 'PROCESSING', amount: { refund: 400, total: 1000 } });
  // Same number, same request: the same refund. Same number, other amount: refused.
  expect((await refund({ transaction_id: txId, out_refund_no: 'RF1', amount: { refund: 400, total: 1000, currency: 'CNY' } })).body.refund_id).toBe(r.body.refund_id);
  expect((await refund({ transaction_id: txId, out_refund_no: 'RF1', amount: { refund: 401, total: 1000, currency: 'CNY' } })).body.code).toBe('INVALID_REQUEST');

  const over = await refund({ out_trade_no: 'RFSIM0001', out_refund_no: 'RF2', amount: { refund: 601, total: 1000, currency: 'CNY' } });
  expect(over.body).toEqual({ code: 'INVALID_REQUEST', message: '申请退款金额超过订单可退金额' });
  expect((await refund({ transaction_id: txId, out_refund_no: 'RF3', amount: { refund: 1, total: 999, currency: 'CNY' } })).body.code).toBe('INVALID_REQUEST');
  expect((await refund({ transaction_id: '4200000000000000', out_refund_no: 'RF4', amount: { refund: 1, total: 1000, currency: 'CNY' } })).status).toBe(404);
  expect((await refund({ transaction_id: txId, out_refund_no: 'RF5', amount: { refund: 1, total: 1000, currency: 'CNY' }, notify_url: 'http://127.0.0.1/x' })).body.code).toBe('PARAM_ERROR');

  sim.control.advanceTime(1_000);
  expect((await call('GET', '/v3/refund/domestic/refunds/RF1')).body).toMatchObject({ status: 'SUCCESS', success_time: expect.any(String) });
  const n = sim.control.notifyRecords.filter((x) => x.ref === 'RF1');
  expect(n.map((x) => x.eventType)).toEqual(['REFUND.SUCCESS']);
  expect(JSON.parse(n[0]!.body).resource.original_type).toBe('refund');
  expect(n[0]!.plaintext).toMatchObject({ out_refund_no: 'RF1', refund_status: 'SUCCESS', transaction_id: txId });
  expect((await call('GET', '/v3/refund/domestic/refunds/NOPE')).status).toBe(404);
});

it('When the settle timer fires before the clock reads due (a long tick), then it waits out the rest and the notify still comes unasked', async () => {
  const txId = await paidOrder('RFSIM0009', 1000, false);
  expect((await refund({ transaction_id: txId, out_refund_no: 'RF9', amount: { refund: 100, total: 1000, currency: 'CNY' } })).status).toBe(200);
  // The timer is set for 1 s; the clock now reads 300 ms behind it when it fires. Nobody queries.
  sim.control.advanceTime(-300);
  await sim.control.waitFor(() => sim.control.notifyRecords.some((x) => x.ref === 'RF9'), 3_000);
  expect(sim.control.notifyRecords.find((x) => x.ref === 'RF9')!.plaintext).toMatchObject({ refund_status: 'SUCCESS' });
});

it('When an order is not paid or older than a year, then it cannot be refunded', async () => {
  await call('POST', '/v3/pay/transactions/native', {
    appid: sim.ctx.opts.appid, mchid: sim.ctx.opts.mchid, description: '未支付', out_trade_no: 'RFSIM0002',
    notify_url: 'https://merchant.example.com/wxpay/notify', amount: { total: 100, currency: 'CNY' },
  });
  expect((await refund({ out_trade_no: 'RFSIM0002', out_refund_no: 'RU1', amount: { refund: 1, total: 100, currency: 'CNY' } })).body.code).toBe('INVALID_REQUEST');
  const txId = await paidOrder('RFSIM0003', 100, false);
  sim.control.advanceTime(366 * 86_400_000);
  expect((await refund({ transaction_id: txId, out_refund_no: 'RU2', amount: { refund: 1, total: 100, currency: 'CNY' } })).body.message).toContain('期限');
});

it('When the available balance cannot pay, then NOT_ENOUGH — other payments\' frozen funds do not count, the payment\'s own frozen funds do', async () => {
  const plain = await paidOrder('RFSIM0010', 2000, false);
  const frozen = await paidOrder('RFSIM0011', 10_000, true);
  expect(sim.control.refunds.availableBalance()).toBe(2000);
  expect(sim.control.refunds.frozen(frozen)).toBe(10_000);
  sim.control.refunds.setAvailableBalance(100);
  const no = await refund({ transaction_id: plain, out_refund_no: 'NE1', amount: { refund: 400, total: 2000, currency: 'CNY' } });
  expect([no.status, no.body.code]).toEqual([403, 'NOT_ENOUGH']);
  // Its own frozen funds pay a refund of a profit-sharing payment, and are then no longer splittable.
  const yes = await refund({ transaction_id: frozen, out_refund_no: 'NE2', amount: { refund: 4000, total: 10_000, currency: 'CNY' } });
  expect(yes.status).toBe(200);
  expect(sim.control.refunds.frozen(frozen)).toBe(6000);
  expect(sim.control.profitSharing.unsplitAmount(frozen)).toBe(6000);
  expect(sim.control.refunds.availableBalance()).toBe(100);
});

it('When a refund is set to end ABNORMAL or CLOSED, then that is its result and its notify; CLOSED gives the money back', async () => {
  const txId = await paidOrder('RFSIM0020', 1000, false);
  sim.control.refunds.nextOutcome('ABNORMAL');
  sim.control.refunds.nextOutcome('CLOSED');
  await refund({ transaction_id: txId, out_refund_no: 'AB1', amount: { refund: 100, total: 1000, currency: 'CNY' } });
  await refund({ transaction_id: txId, out_refund_no: 'CL1', amount: { refund: 200, total: 1000, currency: 'CNY' } });
  expect(sim.control.refunds.availableBalance()).toBe(700);
  sim.control.advanceTime(1_000);
  expect((await call('GET', '/v3/refund/domestic/refunds/AB1')).body.status).toBe('ABNORMAL');
  expect((await call('GET', '/v3/refund/domestic/refunds/CL1')).body.status).toBe('CLOSED');
  expect(sim.control.notifyRecords.filter((x) => x.ref === 'AB1' || x.ref === 'CL1').map((x) => x.eventType).sort()).toEqual(['REFUND.ABNORMAL', 'REFUND.CLOSED']);
  expect(sim.control.refunds.availableBalance()).toBe(900);
});
