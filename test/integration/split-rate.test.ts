import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';
import { receivers, waitFor } from './split-support';

const RATE = 10;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    env: { PROFIT_SHARING_RATE_PER_SECOND: String(RATE), PROFIT_SHARING_CONCURRENCY: '16', PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: '60000' },
    sim: { profitSharing: { ratePerSecond: RATE } },
  });
  await h.startBackground();
});
afterAll(async () => h?.close());

/** Arrival times (simulator clock) of every split request of the burst, filled by the first test. */
let times: number[] = [];
const worstWindow = () => {
  let worst = 0;
  for (const t of times) worst = Math.max(worst, times.filter((u) => u > t - 1000 && u <= t).length);
  return worst;
};

it('When 50 payments are paid in one burst, then split requests never exceed the configured rate in any 1-second window, and all succeed', async () => {
  // Create and open all checkouts first, then pay them all at once: the burst hits the split pipeline together.
  const opened: Array<{ id: string; outTradeNo: string }> = [];
  for (let i = 0; i < 50; i++) {
    const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 1000, profit_sharing: { receivers: receivers(2, 10, `rate${i}-`) } })).expect(201);
    await h.http().get(`/checkout/${c.body.id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
    const order = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: c.body.id } });
    opened.push({ id: c.body.id, outTradeNo: order.outTradeNo });
  }
  for (const o of opened) expect(h.sim.control.pay(o.outTradeNo).ok).toBe(true);

  await waitFor(async () => {
    const done = await h.db.prisma.splitBatch.count({ where: { checkoutId: { in: opened.map((o) => o.id) }, state: 'succeeded' } });
    return done === 50 ? true : null;
  }, 90_000, '50 split batches');

  const reqs = h.sim.control.profitSharing.requests().filter((r) => r.mchid === h.config.WECHATPAY_MCHID);
  expect(reqs.filter((r) => r.limited)).toEqual([]); // never FREQUENCY_LIMITED
  times = reqs.map((r) => r.at).sort((a, b) => a - b);
  expect(times.length).toBeGreaterThanOrEqual(50);
  // The cap: sound under any load (a slower machine only spreads the requests out).
  expect(worstWindow()).toBeLessThanOrEqual(RATE);
}, 120_000);

// Load-sensitive by nature (a starved process sends less), so apart from the cap check and with a
// wide margin: the limiter lets a burst through at its rate rather than trickling it.
it('When the burst ran, then it used the allowance: some 1-second window holds at least half the cap', () => {
  expect(times.length).toBeGreaterThanOrEqual(50);
  expect(worstWindow()).toBeGreaterThanOrEqual(Math.ceil(RATE / 2));
});
