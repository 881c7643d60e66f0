import { verify } from 'node:crypto';
import request from 'supertest';
import { addAccount } from '../../src/modules/merchants/account.service';
import { hashApiKey } from '../../src/modules/merchants/merchant.service';
import { addPartnerAccountOnOwnSimulator, checkoutSteps, type PartnerFixture } from '../support/accounts';
import { OTHER_API_KEY, startHarness, UA, type Harness } from '../support/harness';

/** mch_other is a sub-merchant (特约商户) of a service provider whose WeChat is its own simulator. */
let h: Harness;
let p: PartnerFixture;
beforeAll(async () => {
  h = await startHarness();
  p = await addPartnerAccountOnOwnSimulator(h, 'mch_other');
});
afterAll(async () => {
  await p?.sim.close();
  await h?.close();
});

const { createAs, pageJson, orderOf, statusOf, eventually } = checkoutSteps(() => h);
const create = (key = OTHER_API_KEY) => createAs(key);
const partnerCreates = (path: string) => p.sim.control.calls.filter((c) => c.method === 'POST' && c.path === `/v3/pay/partner/transactions/${path}`);

it('When a sub-merchant\'s shopper pays by Native, then the partner endpoint is used, the partner notify is checked against sp_mchid and sub_mchid, and channel_orders shows both', async () => {
  const id = await create();
  await pageJson(id, UA.chromeMac).expect(200);
  const order = await orderOf(id);
  expect(order).toMatchObject({ accountId: p.accountId, mchid: p.spMchid, appid: p.spAppid, subMchid: p.subMchid });
  const call = partnerCreates('native').at(-1)!;
  expect(call.body).toMatchObject({ sp_mchid: p.spMchid, sp_appid: p.spAppid, sub_mchid: p.subMchid, notify_url: `${h.gatewayUrl}/notify/wechatpay/${p.accountId}/transactions` });
  expect(p.sim.control.pay(order.outTradeNo).ok).toBe(true);
  await eventually(async () => (await statusOf(id)) === 'paid');
  const api = await request(h.app).get(`/v1/checkouts/${id}`).set('Authorization', `Bearer ${OTHER_API_KEY}`).expect(200);
  expect(api.body.channel_orders).toEqual([expect.objectContaining({ sp_mchid: p.spMchid, sub_mchid: p.subMchid, sp_appid: p.spAppid, status: 'paid' })]);
});

it('When a sub-merchant\'s shopper pays by JSAPI, then OAuth runs under sp_appid, the order carries sp_openid and paySign uses sp_appid with the SP key', async () => {
  const id = await create();
  const agent = h.http();
  const first = await pageJson(id, UA.wechatAndroid, agent).expect(200);
  const authorize = new URL(first.body.redirect);
  expect(authorize.searchParams.get('appid')).toBe(p.spAppid);
  const wx = await request(p.sim.url).get(authorize.pathname + authorize.search).set('User-Agent', UA.wechatAndroid).redirects(0).expect(302);
  const back = new URL(wx.headers.location!);
  await agent.get(back.pathname + back.search).set('User-Agent', UA.wechatAndroid).redirects(0).expect(302);
  const res = await pageJson(id, UA.wechatAndroid, agent).expect(200);
  const params = res.body.jsapi_params as Record<string, string>;
  expect(params.appId).toBe(p.spAppid);
  expect(partnerCreates('jsapi').at(-1)!.body).toMatchObject({ payer: { sp_openid: expect.any(String) } });
  const message = `${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
  expect(verify('sha256', Buffer.from(message), p.keys.merchantPublicKey, Buffer.from(params.paySign!, 'base64'))).toBe(true);
  await request(p.sim.url).post('/_sim/jsapi/pay').set('User-Agent', UA.wechatAndroid).send(params).expect(200);
  await eventually(async () => (await statusOf(id)) === 'paid');
});

it('When a sub-merchant\'s shopper pays by H5, then the partner H5 order is paid; close goes to the partner close with sp and sub ids', async () => {
  const id = await create();
  const res = await pageJson(id, UA.chromeAndroid).expect(200);
  expect(res.body.channel).toBe('h5');
  const order = await orderOf(id);
  expect(p.sim.control.pay(order.outTradeNo).ok).toBe(true);
  await eventually(async () => (await statusOf(id)) === 'paid');

  const other = await create();
  await pageJson(other, UA.chromeMac).expect(200);
  const o2 = await orderOf(other);
  await request(h.app).post(`/v1/checkouts/${other}/close`).set('Authorization', `Bearer ${OTHER_API_KEY}`).expect(200);
  const close = p.sim.control.calls.find((c) => c.path === `/v3/pay/partner/transactions/out-trade-no/${o2.outTradeNo}/close`)!;
  expect(close.body).toEqual({ sp_mchid: p.spMchid, sub_mchid: p.subMchid });
  expect(close.status).toBe(204);
});

it('When a merchant is a sub-merchant the service provider is not bound to, then WeChat refuses the order and no payment can be made', async () => {
  const m = await h.db.prisma.merchant.create({ data: { id: 'mch_unbound', name: 'Unbound' } });
  await addAccount(h.deps, { merchant_id: m.id, kind: 'partner', service_provider: p.spMchid, sub_mchid: '1900000999' });
  await h.db.prisma.merchantApiKey.create({ data: { id: 'key_unbound', merchantId: m.id, prefix: 'sk_test_unb', keyHash: hashApiKey('sk_test_unbound_key_0001') } });
  const id = await create('sk_test_unbound_key_0001');
  const res = await pageJson(id, UA.chromeMac);
  expect(res.status).toBeGreaterThanOrEqual(400);
  const refused = partnerCreates('native').at(-1)!;
  expect(refused).toMatchObject({ status: 403, body: expect.objectContaining({ sub_mchid: '1900000999' }) });
  expect(await statusOf(id)).toBe('open');
});
