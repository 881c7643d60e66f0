import { constants, publicEncrypt } from 'node:crypto';
import { createSimulator } from '../../src/simulator/app';
import request from 'supertest';
import { api, APPID, MCHID, nativeOrder, testKeys } from './sim-helpers';

/**
 * The simulator as a service provider (its mchid = sp_mchid): 1900000801 authorised 20% for profit sharing,
 * 1900000802 is bound but authorised none, 1900000803 authorised 30%.
 */
const SUB = '1900000801';
const keys = testKeys();
const { app, control } = createSimulator({
  keys,
  notifyUrlPolicy: 'any-no-query',
  notifyRetryScheduleMs: [],
  refundResultDelayMs: 0,
  partner: { subMerchants: { [SUB]: { maxRatioBp: 2000 }, '1900000802': {}, '1900000803': { maxRatioBp: 3000 } } },
  profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0, feeRate: 0, perOrderRatePerSecond: 0 },
});

let seq = 0;
/** A paid partner order of `sub` with profit sharing (10000 fen); returns its transaction_id. */
async function paidOrder(sub = SUB): Promise<{ outTradeNo: string; transactionId: string }> {
  const outTradeNo = `PS${Date.now()}${++seq}`;
  const { appid, mchid, ...rest } = nativeOrder(outTradeNo, { amount: { total: 10_000, currency: 'CNY' }, settle_info: { profit_sharing: true } });
  const r = await api(app, 'POST', '/v3/pay/partner/transactions/native', { sp_appid: appid, sp_mchid: mchid, sub_mchid: sub, ...rest });
  expect(r.status).toBe(200);
  const paid = control.pay(outTradeNo);
  if (!paid.ok) throw new Error(paid.reason);
  return { outTradeNo, transactionId: paid.tx.transactionId! };
}

const receiver = (account: string, amount: number) => ({ type: 'MERCHANT_ID', account, amount, description: '分账' });
/** A merchant receiver's name is required and RSA-OAEP encrypted with the platform key named in Wechatpay-Serial. */
const sealed = (plain: string) => publicEncrypt({ key: keys.platformPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(plain)).toString('base64');
const addReceiver = (account: string, sub: string | null = SUB) =>
  api(app, 'POST', '/v3/profitsharing/receivers/add', { ...(sub ? { sub_mchid: sub } : {}), appid: APPID, type: 'MERCHANT_ID', account, name: sealed('接收方公司'), relation_type: 'PARTNER' }, {}, { 'Wechatpay-Serial': keys.platformPublicKeyId });
const split = (transactionId: string, receivers: object[], extra: Record<string, unknown> = {}) =>
  api(app, 'POST', '/v3/profitsharing/orders', { sub_mchid: SUB, appid: APPID, transaction_id: transactionId, out_order_no: `O${Date.now()}${++seq}`, receivers, unfreeze_unsplit: false, ...extra });
const answer = (r: { status: number; json: any }) => ({ status: r.status, code: r.json?.code, message: r.json?.message });

beforeEach(() => control.profitSharing.reset());

describe('simulator profit sharing in partner (服务商) mode', () => {
  it('When the SP queries merchant-configs, then the ratio each sub-merchant authorised, and WeChat\'s NO_AUTH refusals otherwise', async () => {
    expect((await api(app, 'GET', `/v3/profitsharing/merchant-configs/${SUB}`)).json).toEqual({ sub_mchid: SUB, max_ratio: 2000 });
    expect(answer(await api(app, 'GET', '/v3/profitsharing/merchant-configs/1900000999'))).toEqual({ status: 403, code: 'NO_AUTH', message: '非服务商下的签约子商户' });
    expect(answer(await api(app, 'GET', '/v3/profitsharing/merchant-configs/1900000802'))).toEqual({ status: 403, code: 'NO_AUTH', message: '子商户未开通分账功能' });
    // The control API changes what the sub-merchant authorised.
    await request(app).post('/_sim/partner/sub-merchants').send({ sub_mchid: '1900000802', max_ratio_bp: 1500 }).expect(200);
    expect((await api(app, 'GET', '/v3/profitsharing/merchant-configs/1900000802')).json).toEqual({ sub_mchid: '1900000802', max_ratio: 1500 });
    await request(app).post('/_sim/partner/sub-merchants').send({ sub_mchid: '1900000802', max_ratio_bp: null }).expect(200);
    expect((await api(app, 'GET', '/v3/profitsharing/merchant-configs/1900000802')).status).toBe(403);
  });

  it('When a split is within the sub-merchant\'s authorised ratio, then it is accepted with sub_mchid; one fen above, then 分账金额超出最大分账比例', async () => {
    const { transactionId } = await paidOrder();
    await addReceiver('1900000901');
    const over = await split(transactionId, [receiver('1900000901', 2001)]); // 20% of 10000 = 2000
    expect(answer(over)).toEqual({ status: 400, code: 'INVALID_REQUEST', message: '分账金额超出最大分账比例' });
    const ok = await split(transactionId, [receiver('1900000901', 2000)]);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ sub_mchid: SUB, transaction_id: transactionId });
    const q = await api(app, 'GET', `/v3/profitsharing/orders/${ok.json.out_order_no}?sub_mchid=${SUB}&transaction_id=${transactionId}`);
    expect(q.json).toMatchObject({ sub_mchid: SUB, state: 'FINISHED', receivers: [expect.objectContaining({ result: 'SUCCESS' })] });
    // The query without sub_mchid, or with another sub-merchant's, is refused.
    expect(answer(await api(app, 'GET', `/v3/profitsharing/orders/${ok.json.out_order_no}?transaction_id=${transactionId}`)).message).toBe('受理机构必须传入sub_mch_id');
    expect(answer(await api(app, 'GET', `/v3/profitsharing/orders/${ok.json.out_order_no}?sub_mchid=1900000803&transaction_id=${transactionId}`)).message).toBe('子商户号和订单信息不匹配');
  });

  test.each([
    ['no sub_mchid', { sub_mchid: undefined }, 400, 'PARAM_ERROR', '受理机构必须传入sub_mch_id'],
    ['a sub_mchid not bound to the SP', { sub_mchid: '1900000999' }, 403, 'NO_AUTH', '受理关系不存在'],
    ['another sub-merchant of the SP', { sub_mchid: '1900000803' }, 400, 'INVALID_REQUEST', '子商户号和订单信息不匹配'],
    ['sub_mchid = sp_mchid', { sub_mchid: MCHID }, 400, 'PARAM_ERROR', '子商户mchid不能与自身mchid相同'],
  ])('When a split of a partner payment has %s, then WeChat\'s refusal', async (_n, extra, status, code, message) => {
    const { transactionId } = await paidOrder();
    await addReceiver('1900000901');
    expect(answer(await split(transactionId, [receiver('1900000901', 100)], extra))).toEqual({ status, code, message });
  });

  it('When the sub-merchant authorised no profit sharing, then its split is refused with NO_AUTH', async () => {
    const { transactionId } = await paidOrder('1900000802');
    await addReceiver('1900000901', '1900000802');
    expect(answer(await split(transactionId, [receiver('1900000901', 100)], { sub_mchid: '1900000802' }))).toMatchObject({ status: 403, code: 'NO_AUTH' });
  });

  it('When a receiver was added under another sub-merchant (or directly), then it is not a receiver of this one', async () => {
    const { transactionId } = await paidOrder();
    await addReceiver('1900000902', '1900000803');
    await addReceiver('1900000902', null);
    expect(answer(await split(transactionId, [receiver('1900000902', 100)])).message).toMatch(/分账接收方关系不存在/);
    expect(control.profitSharing.receivers().map((r) => r.subMchid)).toEqual(['1900000803', undefined]);
  });

  it('When a direct merchant (not a service provider) sends sub_mchid, then the field is refused', async () => {
    const direct = createSimulator({ keys, notifyUrlPolicy: 'any-no-query' });
    const r = await api(direct.app, 'POST', '/v3/profitsharing/orders', { sub_mchid: SUB, transaction_id: '4200000000000000000000000001', out_order_no: 'O1', receivers: [receiver('1900000901', 1)], unfreeze_unsplit: false });
    expect(answer(r)).toMatchObject({ status: 400, code: 'PARAM_ERROR' });
    expect(answer(await api(direct.app, 'GET', `/v3/profitsharing/merchant-configs/${SUB}`))).toEqual({ status: 403, code: 'NO_AUTH', message: '服务商未开通分账功能' });
    direct.control.stop();
  });

  it('When the SP unfreezes and returns in partner mode, then the remainder goes to the sub-merchant and the return carries sub_mchid', async () => {
    const { transactionId } = await paidOrder();
    await addReceiver('1900000901');
    const s = await split(transactionId, [receiver('1900000901', 1000)]);
    const ret = await api(app, 'POST', '/v3/profitsharing/return-orders', { sub_mchid: SUB, out_order_no: s.json.out_order_no, out_return_no: `R${seq}`, return_mchid: '1900000901', amount: 300, description: '退款回退' });
    expect(ret.json).toMatchObject({ sub_mchid: SUB, result: 'SUCCESS', amount: 300 });
    const rq = await api(app, 'GET', `/v3/profitsharing/return-orders/R${seq}?sub_mchid=${SUB}&out_order_no=${s.json.out_order_no}`);
    expect(rq.json).toMatchObject({ sub_mchid: SUB, result: 'SUCCESS' });
    expect(answer(await api(app, 'GET', `/v3/profitsharing/return-orders/R${seq}?out_order_no=${s.json.out_order_no}`)).message).toBe('受理机构必须传入sub_mch_id');
    const uf = await api(app, 'POST', '/v3/profitsharing/orders/unfreeze', { sub_mchid: SUB, transaction_id: transactionId, out_order_no: `U${seq}`, description: '解冻' });
    expect(uf.json).toMatchObject({ sub_mchid: SUB, receivers: [expect.objectContaining({ account: SUB, amount: 9000 })] });
  });

  it('When the SP sends split requests, then it is limited per sub-merchant and per SP at once (FREQUENCY_LIMITED)', async () => {
    control.profitSharing.setOptions({ spRatePerSecond: 5, subRatePerSecond: 3 });
    // The limiter answers before the body is looked at: unknown transactions are fine here.
    const send = (sub: string) => api(app, 'POST', '/v3/profitsharing/orders', { sub_mchid: sub, transaction_id: '4200000000000000000000000009', out_order_no: `L${++seq}`, receivers: [receiver('1900000901', 1)], unfreeze_unsplit: false });
    const codes: string[] = [];
    for (const sub of [SUB, SUB, SUB, SUB, '1900000803', '1900000803', '1900000803']) codes.push((await send(sub)).json.code);
    // 4th of sub 801 over its 3/s; 803's first two bring the SP to 5/s; 803's third is over the SP's.
    expect(codes.map((c) => c === 'FREQUENCY_LIMITED')).toEqual([false, false, false, true, false, false, true]);
    expect(control.profitSharing.requests().map((r) => r.subMchid)).toEqual([SUB, SUB, SUB, SUB, '1900000803', '1900000803', '1900000803']);
  });
});

describe('simulator refunds in partner mode', () => {
  it('When the SP refunds with the order\'s sub_mchid, then it succeeds and the notify carries sp_mchid and sub_mchid', async () => {
    const { transactionId, outTradeNo } = await paidOrder();
    const body = { sub_mchid: SUB, transaction_id: transactionId, out_refund_no: `RF${seq}`, notify_url: 'http://127.0.0.1:9/notify/wechatpay/refunds', amount: { refund: 100, total: 10_000, currency: 'CNY' } };
    expect(answer(await api(app, 'POST', '/v3/refund/domestic/refunds', { ...body, sub_mchid: undefined }))).toMatchObject({ status: 400, message: '受理机构必须传入sub_mch_id' });
    expect(answer(await api(app, 'POST', '/v3/refund/domestic/refunds', { ...body, sub_mchid: '1900000803' }))).toMatchObject({ status: 400, message: '子商户号和订单信息不匹配' });
    expect(answer(await api(app, 'POST', '/v3/refund/domestic/refunds', { ...body, sub_mchid: '1900000999' }))).toMatchObject({ status: 403, code: 'NO_AUTH' });
    const r = await api(app, 'POST', '/v3/refund/domestic/refunds', body);
    expect(r.status).toBe(200);
    const q = await api(app, 'GET', `/v3/refund/domestic/refunds/RF${seq}?sub_mchid=${SUB}`);
    expect(q.json).toMatchObject({ out_trade_no: outTradeNo, status: 'SUCCESS' });
    expect(answer(await api(app, 'GET', `/v3/refund/domestic/refunds/RF${seq}?sub_mchid=1900000803`)).message).toBe('子商户号和订单信息不匹配');
    const n = control.notifyRecords.find((x) => x.ref === `RF${seq}`)!;
    expect(n.plaintext).toMatchObject({ sp_mchid: MCHID, sub_mchid: SUB, refund_status: 'SUCCESS' });
    expect(n.plaintext).not.toHaveProperty('mchid');
  });
});

afterAll(() => control.stop());
