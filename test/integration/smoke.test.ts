import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

it('When a desktop shopper pays the Native QR, then the notify marks the checkout paid', async () => {
  const created = await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201);
  const page = await h.http().get(`/checkout/${created.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
  expect(page.body.channel).toBe('native');
  const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: created.body.id } });
  h.sim.control.pay(order.outTradeNo);
  await h.sim.control.waitFor(() => h.sim.control.notifies.some((n) => n.status === 204 || n.status === 200), 5000);
  const got = await h.api('get', `/v1/checkouts/${created.body.id}`).expect(200);
  expect(got.body.status).toBe('paid');
});
