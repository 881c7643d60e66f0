import { createCipheriv, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import request from 'supertest';
import type { SandboxKeys } from '../../src/simulator/keys';
import { addDirectAccountOnOwnSimulator, checkoutSteps, type DirectAccountFixture } from '../support/accounts';
import { API_KEY, OTHER_API_KEY, startHarness, UA, type Harness } from '../support/harness';

/** Merchant `mch_other` (OTHER_API_KEY) has its own direct account; `mch_test` stays on the default (env) account. */
let h: Harness;
let b: DirectAccountFixture;
beforeAll(async () => {
  h = await startHarness();
  b = await addDirectAccountOnOwnSimulator(h, 'mch_other');
});
afterAll(async () => {
  await b?.sim.close();
  await h?.close();
});

const { createAs, pageJson, orderOf, statusOf, eventually } = checkoutSteps(() => h);

/** A notify built the way WeChat builds it (independent of src/channels), under the given keys. */
function notify(keys: SandboxKeys, tx: Record<string, unknown>, o: { signWith?: KeyObject; serial?: string } = {}) {
  const nonce = randomBytes(6).toString('hex');
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(keys.apiv3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from('transaction', 'utf8'));
  const ct = Buffer.concat([cipher.update(JSON.stringify(tx), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const body = JSON.stringify({
    id: `EV-${randomBytes(8).toString('hex')}`, create_time: '2026-11-25T18:00:00+08:00', resource_type: 'encrypt-resource', event_type: 'TRANSACTION.SUCCESS', summary: '支付成功',
    resource: { original_type: 'transaction', algorithm: 'AEAD_AES_256_GCM', ciphertext: ct.toString('base64'), associated_data: 'transaction', nonce },
  });
  const ts = String(Math.floor(Date.now() / 1000));
  const hn = randomBytes(16).toString('hex');
  return {
    body,
    headers: {
      'Content-Type': 'application/json', 'Wechatpay-Timestamp': ts, 'Wechatpay-Nonce': hn, 'Wechatpay-Serial': o.serial ?? keys.platformPublicKeyId,
      'Wechatpay-Signature': sign('sha256', Buffer.from(`${ts}\n${hn}\n${body}\n`), o.signWith ?? keys.platformPrivateKey).toString('base64'),
    },
  };
}

describe('a merchant with its own direct account', () => {
  it('When its shopper pays by Native, then the order is placed with its mchid at its WeChat, with its notify URL, and the notify there marks it paid', async () => {
    const id = await createAs(OTHER_API_KEY);
    const res = await pageJson(id, UA.chromeMac).expect(200);
    expect(res.body.channel).toBe('native');
    const order = await orderOf(id);
    expect(order).toMatchObject({ accountId: b.accountId, mchid: b.mchid, appid: b.appid, subMchid: null });
    const tx = b.sim.control.transaction(order.outTradeNo)!;
    expect(tx.notifyUrl).toBe(`${h.gatewayUrl}/notify/wechatpay/${b.accountId}/transactions`);
    expect(h.sim.control.transaction(order.outTradeNo)).toBeUndefined(); // not at the default account's WeChat
    expect(b.sim.control.pay(order.outTradeNo).ok).toBe(true);
    await eventually(async () => (await statusOf(id)) === 'paid');
    const api = await request(h.app).get(`/v1/checkouts/${id}`).set('Authorization', `Bearer ${OTHER_API_KEY}`).expect(200);
    expect(api.body.channel_orders).toEqual([expect.objectContaining({ mchid: b.mchid, appid: b.appid, status: 'paid' })]);
  });

  it('When its shopper pays by JSAPI, then OAuth runs under its appid and paySign is made with its key', async () => {
    const id = await createAs(OTHER_API_KEY);
    const agent = h.http();
    const first = await pageJson(id, UA.wechatIos, agent).expect(200);
    const authorize = new URL(first.body.redirect);
    expect(authorize.origin).toBe(b.sim.url);
    expect(authorize.searchParams.get('appid')).toBe(b.appid);
    const wx = await request(b.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
    const back = new URL(wx.headers.location!);
    await agent.get(back.pathname + back.search).set('User-Agent', UA.wechatIos).redirects(0).expect(302);
    const res = await pageJson(id, UA.wechatIos, agent).expect(200);
    const p = res.body.jsapi_params as Record<string, string>;
    expect(p.appId).toBe(b.appid);
    const message = `${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`;
    expect(verify('sha256', Buffer.from(message), b.keys.merchantPublicKey, Buffer.from(p.paySign!, 'base64'))).toBe(true);
    await request(b.sim.url).post('/_sim/jsapi/pay').set('User-Agent', UA.wechatIos).send(p).expect(200);
    await eventually(async () => (await statusOf(id)) === 'paid');
  });

  it('When its shopper pays by H5, then the h5_url comes from its WeChat and the payment lands on its checkout', async () => {
    const id = await createAs(OTHER_API_KEY);
    const res = await pageJson(id, UA.safariIos).expect(200);
    expect(res.body.channel).toBe('h5');
    expect(res.body.h5_url.startsWith(b.sim.url)).toBe(true);
    const order = await orderOf(id);
    expect(order.accountId).toBe(b.accountId);
    expect(b.sim.control.pay(order.outTradeNo).ok).toBe(true);
    await eventually(async () => (await statusOf(id)) === 'paid');
  });

  it('When its checkout is closed or its notify is lost, then query and close go to its WeChat', async () => {
    const id = await createAs(OTHER_API_KEY);
    await pageJson(id, UA.chromeMac).expect(200);
    const order = await orderOf(id);
    await request(h.app).post(`/v1/checkouts/${id}/close`).set('Authorization', `Bearer ${OTHER_API_KEY}`).expect(200);
    expect(b.sim.control.calls.some((c) => c.path.includes(`${order.outTradeNo}/close`))).toBe(true);
    expect(h.sim.control.calls.some((c) => c.path.includes(order.outTradeNo))).toBe(false);
  });

  it('When the default merchant pays meanwhile, then it still uses the default account and URL', async () => {
    const id = await createAs(API_KEY);
    await pageJson(id, UA.chromeMac).expect(200);
    const order = await orderOf(id);
    expect(order).toMatchObject({ accountId: null, mchid: h.config.WECHATPAY_MCHID });
    expect(h.sim.control.transaction(order.outTradeNo)!.notifyUrl).toBe(`${h.gatewayUrl}/notify/wechatpay/transactions`);
    h.sim.control.pay(order.outTradeNo);
    await eventually(async () => (await statusOf(id)) === 'paid');
  });
});

describe('notifies are checked against the account of their URL', () => {
  async function openOrderOfB() {
    const id = await createAs(OTHER_API_KEY);
    await pageJson(id, UA.chromeMac).expect(200);
    const order = await orderOf(id);
    const tx = {
      mchid: b.mchid, appid: b.appid, out_trade_no: order.outTradeNo, transaction_id: `4200${Date.now()}${Math.floor(Math.random() * 1e6)}`,
      trade_type: 'NATIVE', trade_state: 'SUCCESS', trade_state_desc: '支付成功', bank_type: 'OTHERS', success_time: '2026-11-25T18:00:00+08:00',
      payer: { openid: 'o_someone' }, amount: { total: 1999, payer_total: 1999, currency: 'CNY', payer_currency: 'CNY' },
    };
    return { id, tx };
  }

  it('When a notify for account X is signed with account Y\'s platform key, then it is refused and nothing changes', async () => {
    const { id, tx } = await openOrderOfB();
    const url = `/notify/wechatpay/${b.accountId}/transactions`;
    // Y's key under Y's serial: X does not know that key.
    const r1 = await request(h.app).post(url).set(notify(h.keys, tx).headers).send(notify(h.keys, tx).body);
    expect(r1.status).toBe(401);
    // Y's key under X's serial: the signature does not verify.
    const n2 = notify(b.keys, tx, { signWith: h.keys.platformPrivateKey });
    const r2 = await request(h.app).post(url).set(n2.headers).send(n2.body);
    expect(r2.status).toBe(401);
    expect(r2.body).toEqual({ code: 'FAIL', message: 'BAD_SIGNATURE' });
    // Correctly signed by the default account, but for X's order, at the default URL: not applied.
    const n3 = notify(h.keys, tx);
    const r3 = await request(h.app).post('/notify/wechatpay/transactions').set(n3.headers).send(n3.body);
    expect(r3.status).toBe(400);
    expect(r3.body.message).toBe('ACCOUNT_MISMATCH');
    expect(await statusOf(id)).toBe('open');
    // The genuine one is applied.
    const ok = notify(b.keys, tx);
    await request(h.app).post(url).set(ok.headers).send(ok.body).expect(204);
    expect(await statusOf(id)).toBe('paid');
  });

  it('When a notify comes to an unknown account URL, then 404', async () => {
    await request(h.app).post('/notify/wechatpay/acct_00000000000000000000/transactions').send('{}').expect(404);
    await request(h.app).post('/notify/wechatpay/not-an-id/transactions').send('{}').expect(404);
  });
});
