/**
 * Profit sharing through the real simulator app (createSimulator/startSimulator): signed requests, signed
 * answers, an order placed and paid through the payments endpoints, and the core reset clearing 分账 state.
 */
import { constants, createSign, createVerify, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { startSimulator, type RunningSimulator } from '../../src/simulator/app';
import { generateSimKeys, type SandboxKeys } from '../../src/simulator/keys';
import { profitSharingControl } from '../../src/simulator/profitsharing/router';

let keys: SandboxKeys;
let sim: RunningSimulator;

beforeAll(() => {
  keys = generateSimKeys();
});

beforeEach(async () => {
  sim = await startSimulator({ keys, profitSharing: { resultDelayMs: 1_000 } });
  sim.control.notifyFaults({ hold: true }); // no payment notify leaves the machine
});

afterEach(async () => {
  await sim.close();
});

function authorization(method: string, path: string, body: string): string {
  const ts = String(Math.floor(sim.ctx.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const signature = createSign('RSA-SHA256').update(`${method}\n${path}\n${ts}\n${nonce}\n${body}\n`).sign(keys.merchantPrivateKey, 'base64');
  return `WECHATPAY2-SHA256-RSA2048 mchid="${sim.ctx.opts.mchid}",nonce_str="${nonce}",timestamp="${ts}",serial_no="${keys.merchantCertSerial}",signature="${signature}"`;
}

async function call(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  const res = await fetch(sim.url + path, {
    method,
    headers: {
      Accept: 'application/json',
      ...(text ? { 'Content-Type': 'application/json' } : {}),
      Authorization: authorization(method, path, text),
      ...headers,
    },
    body: text || undefined,
  });
  const raw = await res.text();
  return { status: res.status, raw, body: raw ? JSON.parse(raw) : undefined, headers: res.headers };
}

function enc(plain: string, key: KeyObject): string {
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from(plain)).toString('base64');
}

async function paidProfitSharingOrder(outTradeNo: string): Promise<string> {
  const order = await call('POST', '/v3/pay/transactions/jsapi', {
    appid: sim.ctx.opts.appid,
    mchid: sim.ctx.opts.mchid,
    description: '分账测试商品',
    out_trade_no: outTradeNo,
    notify_url: 'https://merchant.example.com/wxpay/notify',
    amount: { total: 10_000, currency: 'CNY' },
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    settle_info: { profit_sharing: true },
  });
  expect(order.status).toBe(200);
  const paid = sim.control.pay(outTradeNo);
  if (!paid.ok) throw new Error(paid.reason);
  return paid.tx.transactionId!;
}

/** The default fee (0.6% of 10 000 = 60) and the 30% ratio on amount − fee: floor(9 940 × 0.3). */
const FEE = 60;
const MAX = Math.floor((10_000 - FEE) * 0.3);

it('When the gateway splits a paid profit-sharing order through the real app, then answers are signed and results arrive after the delay', async () => {
  const txId = await paidProfitSharingOrder('PSAPP0001');
  // This test is about the ratio and the fee; the per-order second is tested in profitsharing.test.ts.
  sim.control.profitSharing.setOptions({ perOrderRatePerSecond: 0 });
  const serial = { 'Wechatpay-Serial': keys.platformPublicKeyId };
  const add = await call(
    'POST',
    '/v3/profitsharing/receivers/add',
    { appid: sim.ctx.opts.appid, type: 'MERCHANT_ID', account: '1900000201', name: enc('甲有限公司', keys.platformPublicKey), relation_type: 'PARTNER' },
    serial,
  );
  expect(add.status).toBe(200);

  const receivers = [{ type: 'MERCHANT_ID', account: '1900000201', name: enc('甲有限公司', keys.platformPublicKey), amount: MAX, description: '平台佣金' }];
  const early = await call('POST', '/v3/profitsharing/orders', { transaction_id: txId, out_order_no: 'PSO1', receivers, unfreeze_unsplit: false }, serial);
  expect([early.status, early.body.message]).toEqual([400, '订单处理中，请稍后重试']);

  sim.control.advanceTime(60_000);
  const res = await call('POST', '/v3/profitsharing/orders', { transaction_id: txId, out_order_no: 'PSO1', receivers, unfreeze_unsplit: false }, serial);
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ state: 'PROCESSING', receivers: [{ result: 'PENDING', amount: MAX }] });
  // Signed like every WeChat answer: timestamp\nnonce\nbody\n with the platform key.
  const message = `${res.headers.get('wechatpay-timestamp')}\n${res.headers.get('wechatpay-nonce')}\n${res.raw}\n`;
  const verified = createVerify('RSA-SHA256').update(message).verify(keys.platformPublicKey, res.headers.get('wechatpay-signature')!, 'base64');
  expect(verified).toBe(true);
  expect(res.headers.get('wechatpay-serial')).toBe(keys.platformPublicKeyId);

  const over = await call('POST', '/v3/profitsharing/orders', { transaction_id: txId, out_order_no: 'PSO2', receivers: [{ ...receivers[0], amount: 1 }], unfreeze_unsplit: false }, serial);
  expect(over.body).toMatchObject({ code: 'INVALID_REQUEST', message: '分账金额超出最大分账比例' });

  expect((await call('GET', `/v3/profitsharing/orders/PSO1?transaction_id=${txId}`)).body.state).toBe('PROCESSING');
  sim.control.advanceTime(1_000);
  const done = await call('GET', `/v3/profitsharing/orders/PSO1?transaction_id=${txId}`);
  expect(done.body).toMatchObject({ state: 'FINISHED', receivers: [{ result: 'SUCCESS' }] });
  expect((await call('GET', `/v3/profitsharing/transactions/${txId}/amounts`)).body).toEqual({ transaction_id: txId, unsplit_amount: 10_000 - FEE - MAX });

  const unsigned = await fetch(`${sim.url}/v3/profitsharing/transactions/${txId}/amounts`);
  expect(unsigned.status).toBe(401);
});

it('When a name is encrypted with the platform certificate and its serial, then it is accepted too (migration)', async () => {
  const cert = keys.platformCertificate;
  const res = await call(
    'POST',
    '/v3/profitsharing/receivers/add',
    { appid: sim.ctx.opts.appid, type: 'MERCHANT_ID', account: '1900000201', name: enc('甲有限公司', cert.publicKey), relation_type: 'PARTNER' },
    { 'Wechatpay-Serial': cert.serial },
  );
  expect(res.status).toBe(200);
  const mixed = await call(
    'POST',
    '/v3/profitsharing/receivers/add',
    { appid: sim.ctx.opts.appid, type: 'MERCHANT_ID', account: '1900000202', name: enc('乙有限公司', cert.publicKey), relation_type: 'PARTNER' },
    { 'Wechatpay-Serial': keys.platformPublicKeyId },
  );
  expect(mixed.body).toMatchObject({ code: 'PARAM_ERROR', message: '平台私钥解密失败' });
});

it('When the simulator is reset, then profit-sharing receivers, orders and options are reset with it', async () => {
  await call(
    'POST',
    '/v3/profitsharing/receivers/add',
    { appid: sim.ctx.opts.appid, type: 'PERSONAL_OPENID', account: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', relation_type: 'USER' },
  );
  profitSharingControl(sim.ctx).setOptions({ maxRatio: 0.5 });
  expect(profitSharingControl(sim.ctx).receivers()).toHaveLength(1);
  sim.control.reset();
  expect(profitSharingControl(sim.ctx).receivers()).toHaveLength(0);
  expect(sim.ctx.opts.profitSharing.maxRatio).toBe(0.3);
});
