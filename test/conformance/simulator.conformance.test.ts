/**
 * The simulator (src/simulator) against the same official vectors as the channel client
 * (sources in ./vectors.ts): it must accept what WeChat accepts, produce what WeChat produces and
 * refuse with WeChat's statuses and codes.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import request from 'supertest';
import { createSimulator } from '../../src/simulator/app';
import { encryptResource, signSha256Rsa } from '../../src/simulator/sim-crypto';
import { api, APPID, jsapiOrder, MCHID, testKeys } from '../simulator/sim-helpers';
import {
  AEAD_VECTOR,
  BYTE_LIMITS,
  CLOSE_PAID_VECTOR,
  DOC_TEST_MERCHANT_KEY,
  GO_SDK_TEST_KEY,
  GO_SIGNER_VECTOR,
  NOTIFY_VECTOR,
  PAY_SIGN_VECTOR,
  REQUEST_SIGN_VECTOR,
  SPLIT_ERROR_TABLE,
  utf8OfBytes,
} from './vectors';

const DOC_SERIAL = '1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C';
/** A simulator whose merchant is the documentation's test merchant (its public key verifies requests). */
function docMerchantSimulator(o: { mchid: string; appid: string }) {
  const keys = { ...testKeys(), merchantPublicKey: createPublicKey(DOC_TEST_MERCHANT_KEY), merchantCertSerial: DOC_SERIAL };
  const sim = createSimulator({ keys, mchid: o.mchid, appid: o.appid, notifyUrlPolicy: 'https-public' });
  sim.control.advanceTime(Number(REQUEST_SIGN_VECTOR.timestamp) * 1000 - Date.now());
  return sim;
}

describe('simulator: request signing (请求签名)', () => {
  const v = REQUEST_SIGN_VECTOR;
  const auth = (signature: string) =>
    `WECHATPAY2-SHA256-RSA2048 mchid="${v.mchid}",nonce_str="${v.nonce}",timestamp="${v.timestamp}",serial_no="${DOC_SERIAL}",signature="${signature}"`;

  it('When the official JSAPI order example arrives with its documented signature, then it is accepted (prepay_id); a changed signature is 401 SIGN_ERROR', async () => {
    const { app } = docMerchantSimulator({ mchid: v.mchid, appid: v.appid });
    const ok = await request(app).post(v.url).set('Authorization', auth(v.signature)).set('Content-Type', 'application/json').set('Accept', 'application/json').send(v.body);
    expect(ok.status).toBe(200);
    expect(ok.body.prepay_id).toMatch(/^wx/);
    const bad = await request(app).post(v.url).set('Authorization', auth(GO_SIGNER_VECTOR.signature)).set('Content-Type', 'application/json').send(v.body);
    expect([bad.status, bad.body.code]).toEqual([401, 'SIGN_ERROR']);
  });
});

describe('simulator: JSAPI paySign (调起支付签名)', () => {
  it('When WeixinJSBridge is called with the official test parameters and paySign, then the signature is accepted', async () => {
    const p = PAY_SIGN_VECTOR;
    const sim = docMerchantSimulator({ mchid: MCHID, appid: p.appId });
    // An order whose prepay_id is the documentation's (the simulator makes its own ids otherwise).
    sim.ctx.transactions.byOutTradeNo.set('PAYSIGN_0001', {
      outTradeNo: 'PAYSIGN_0001', tradeType: 'JSAPI', appid: p.appId, mchid: MCHID, description: 'x', notifyUrl: 'https://example.com/n',
      amountTotal: 1, currency: 'CNY', payerOpenid: 'o-x', profitSharing: false, state: 'NOTPAY', requestFingerprint: '{}', createdAtMs: sim.ctx.now(),
    });
    sim.ctx.prepayIndex.set(p.prepayId, 'PAYSIGN_0001');
    Object.assign(sim.ctx.extraFor(sim.ctx.transactions.byOutTradeNo.get('PAYSIGN_0001')!), { prepayId: p.prepayId, prepayCreatedAtMs: sim.ctx.now() });
    const body = { appId: p.appId, timeStamp: p.timeStamp, nonceStr: p.nonceStr, package: p.package, signType: 'RSA', paySign: p.paySign };
    const r = await request(sim.app).post('/_sim/jsapi/pay').send(body);
    expect(r.body.err_msg).toBe('get_brand_wcpay_request:ok');
    const wrong = await request(sim.app).post('/_sim/jsapi/pay').send({ ...body, paySign: GO_SIGNER_VECTOR.signature });
    expect(wrong.body.err_msg).toBe('get_brand_wcpay_request:fail');
  });
});

describe('simulator: notify signing and AEAD_AES_256_GCM', () => {
  it('When the simulator signs the official notify with its key, then it produces the documented Wechatpay-Signature', () => {
    const h = NOTIFY_VECTOR.headers;
    expect(signSha256Rsa(`${h['Wechatpay-Timestamp']}\n${h['Wechatpay-Nonce']}\n${NOTIFY_VECTOR.body}\n`, createPrivateKey(GO_SDK_TEST_KEY))).toBe(h['Wechatpay-Signature']);
  });

  it('When the simulator encrypts the official AEAD sample, then it produces the documented ciphertext', () => {
    const v = AEAD_VECTOR;
    expect(encryptResource(v.apiv3Key, v.plaintext, v.associatedData, v.nonce)).toEqual({ algorithm: 'AEAD_AES_256_GCM', ciphertext: v.ciphertext, associated_data: v.associatedData, nonce: v.nonce });
  });
});

describe('simulator: official error answers and byte limits', () => {
  const keys = testKeys();
  const mk = () => createSimulator({ keys, notifyUrlPolicy: 'any-no-query', profitSharing: { minDelayAfterPayMs: 0, resultDelayMs: 0 } });
  async function paid(sim: ReturnType<typeof mk>, no: string, profitSharing = true) {
    await api(sim.app, 'POST', '/v3/pay/transactions/jsapi', jsapiOrder(no, { amount: { total: 10_000, currency: 'CNY' }, settle_info: { profit_sharing: profitSharing } }));
    const r = sim.control.pay(no);
    if (!r.ok) throw new Error(r.reason);
    return r.tx.transactionId!;
  }
  const person = 'o-conformance-person-0001';
  const split = (sim: ReturnType<typeof mk>, tx: string, outOrderNo: string, amount: number, description = '分账') =>
    api(sim.app, 'POST', '/v3/profitsharing/orders', { appid: APPID, transaction_id: tx, out_order_no: outOrderNo, receivers: [{ type: 'PERSONAL_OPENID', account: person, amount, description }], unfreeze_unsplit: false });

  const expected = (code: string) => SPLIT_ERROR_TABLE.find((e) => e.code === code)!;

  it('When 请求分账 meets each documented refusal the simulator models, then it answers the table status and code', async () => {
    const sim = mk();
    await api(sim.app, 'POST', '/v3/profitsharing/receivers/add', { appid: APPID, type: 'PERSONAL_OPENID', account: person, relation_type: 'USER' });
    const plain = await paid(sim, 'CONF_PLAIN_01', false);
    const notShared = await split(sim, plain, 'CONF-1', 1);
    expect([notShared.status, notShared.json.code, notShared.json.message]).toEqual([expected('INVALID_REQUEST').status, 'INVALID_REQUEST', '非分账订单不支持分账']);
    const tx = await paid(sim, 'CONF_SHARED_1');
    const badNo = await split(sim, tx, 'CONF#1', 1);
    expect([badNo.status, badNo.json.code]).toEqual([expected('PARAM_ERROR').status, 'PARAM_ERROR']);
    sim.control.profitSharing.setOptions({ maxRatio: 1 });
    sim.control.advanceTime(1_000); // WeChat takes about one split request per second per order
    const notEnough = await split(sim, tx, 'CONF-2', 10_001);
    expect([notEnough.status, notEnough.json.code]).toEqual([expected('NOT_ENOUGH').status, 'NOT_ENOUGH']);
    sim.control.advanceTime(1_000);
    expect((await split(sim, tx, 'CONF-3', 1)).status).toBe(200);
    const tooFast = await split(sim, tx, 'CONF-4', 1);
    expect([tooFast.status, tooFast.json.code, tooFast.json.message]).toEqual([expected('RATELIMIT_EXCEED').status, 'RATELIMIT_EXCEED', '对同笔订单分账频率过高']);
  });

  it('When a paid order is closed, then 400 ORDER_PAID (排障手册)', async () => {
    const sim = mk();
    await paid(sim, 'CONF_CLOSE_01');
    const r = await api(sim.app, 'POST', '/v3/pay/transactions/out-trade-no/CONF_CLOSE_01/close', { mchid: MCHID });
    expect([r.status, r.json.code]).toEqual([CLOSE_PAID_VECTOR.status, CLOSE_PAID_VECTOR.code]);
  });

  it('When description, attach and receiver description are at their byte limits they pass; one byte more is PARAM_ERROR', async () => {
    const sim = mk();
    const order = (no: string, over: Record<string, unknown>) => api(sim.app, 'POST', '/v3/pay/transactions/jsapi', jsapiOrder(no, over));
    expect((await order('CONF_BYTES_1', { description: utf8OfBytes(BYTE_LIMITS.description) })).status).toBe(200);
    expect((await order('CONF_BYTES_2', { description: utf8OfBytes(BYTE_LIMITS.description + 1) })).json.code).toBe('PARAM_ERROR');
    expect((await order('CONF_BYTES_3', { attach: utf8OfBytes(BYTE_LIMITS.attach) })).status).toBe(200);
    expect((await order('CONF_BYTES_4', { attach: utf8OfBytes(BYTE_LIMITS.attach + 1) })).json.code).toBe('PARAM_ERROR');
    await api(sim.app, 'POST', '/v3/profitsharing/receivers/add', { appid: APPID, type: 'PERSONAL_OPENID', account: person, relation_type: 'USER' });
    const tx = await paid(sim, 'CONF_BYTES_5');
    const over = await split(sim, tx, 'CONF-B1', 1, utf8OfBytes(BYTE_LIMITS.receiverDescription + 1));
    expect([over.status, over.json.code]).toEqual([400, 'PARAM_ERROR']);
    sim.control.advanceTime(1_000);
    expect((await split(sim, tx, 'CONF-B2', 1, utf8OfBytes(BYTE_LIMITS.receiverDescription))).status).toBe(200);
  });
});
