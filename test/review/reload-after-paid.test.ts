import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';

/**
 * Review: a shopper pays by H5, the notify is late, and the shopper reloads the checkout page after
 * the h5_url reuse window (4 min). The gateway re-orders, WeChat answers ORDERPAID, and the shopper
 * gets a raw JSON 409 instead of a page (and the payment is not looked up).
 */
let h: Harness;
let offsetMs = 0;
beforeAll(async () => {
  h = await startHarness({ now: () => new Date(Date.now() + offsetMs) });
});
afterAll(async () => {
  h.sim.control.notifyFaults({ hold: false });
  await h?.close();
});

it('reload after paying (notify late) shows a page, not a JSON 409', async () => {
  const id = (await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201)).body.id as string;
  await h.http().get(`/checkout/${id}`).set('User-Agent', UA.safariIos).set('Accept', 'application/json').expect(200);
  const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id, tradeType: 'H5' } });
  h.sim.control.notifyFaults({ hold: true });
  const paid = h.sim.control.pay(order.outTradeNo);
  if (!paid.ok) throw new Error(paid.reason);

  offsetMs = 5 * 60_000; // h5_url is stale: the page orders again
  const page = await h.http().get(`/checkout/${id}`).set('User-Agent', UA.safariIos).set('Accept', 'text/html');
  // eslint-disable-next-line no-console
  console.log('status', page.status, page.type, page.text.slice(0, 200));
  expect(page.type).toBe('text/html');
  expect(page.status).toBe(200);
});
