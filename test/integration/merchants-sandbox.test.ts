import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { SANDBOX_PARTNER_MERCHANT_ID, SANDBOX_SUB_MCHID, seedSandboxMerchants } from '../../src/modules/merchants/sandbox.seed';
import { startHarness, TEST_KEYS_DIR, UA, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ sim: { partner: { subMerchants: { [SANDBOX_SUB_MCHID]: { maxRatioBp: 3000 } } } } });
  await seedSandboxMerchants(h.deps, TEST_KEYS_DIR);
  await seedSandboxMerchants(h.deps, TEST_KEYS_DIR); // a restart seeds again: idempotent
});
afterAll(async () => h?.close());

it('When the sandbox starts, then both demo merchants exist and the demo shop can sell as the partner sub-merchant, paid through the partner endpoints', async () => {
  const res = await request(h.app).post('/demo/checkouts').type('form').send({ amount: '0.05', description: '演示', profitSharing: 'off', merchant: 'partner' }).expect(303);
  const id = res.headers.location!.split('/').pop()!;
  expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).merchantId).toBe(SANDBOX_PARTNER_MERCHANT_ID);
  await h.http().get(`/checkout/${id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
  const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id } });
  expect(order).toMatchObject({ mchid: h.config.WECHATPAY_MCHID, subMchid: SANDBOX_SUB_MCHID });
  h.sim.control.pay(order.outTradeNo);
  await h.sim.control.waitFor(() => h.sim.control.notifies.some((n) => n.ref === order.outTradeNo && n.status === 204), 10_000);
  const api = await request(h.app).get(`/v1/checkouts/${id}`).set('Authorization', `Bearer ${h.config.SANDBOX_PARTNER_API_KEY}`).expect(200);
  expect(api.body).toMatchObject({ status: 'paid', channel_orders: [expect.objectContaining({ sub_mchid: SANDBOX_SUB_MCHID })] });
  // The direct demo merchant's key works as before.
  await request(h.app).get('/v1/checkouts').set('Authorization', `Bearer ${h.config.SANDBOX_API_KEY}`).expect(200);
});
