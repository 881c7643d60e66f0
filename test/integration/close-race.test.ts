import type { PaymentChannel } from '../../src/channels/channel';
import { closeCheckout } from '../../src/modules/payments/payment.sync';
import { checkoutBody, startHarness, UA, type Harness } from '../support/harness';
import { waitFor } from './split-support';

/**
 * A payment that lands between the close at the channel and the checkout's close/expire update
 * (payment.sync.ts): a page that read the checkout just before its close ordered again, and the
 * shopper paid that order. The update is a compare-and-set on the status, so the payment wins.
 */
let h: Harness;
beforeAll(async () => {
  // No background loops: the sweeper would expire the checkout itself. The notify endpoint applies the payment.
  h = await startHarness();
});
afterAll(async () => h?.close());

for (const to of ['closed', 'expired'] as const) {
  it(`When a payment notify is applied after the channel orders were closed but before the checkout is ${to}, then the checkout stays paid`, async () => {
    const c = await h.api('post', '/v1/checkouts').send(checkoutBody({ amount: 1200 })).expect(201);
    const id = c.body.id as string;
    await h.http().get(`/checkout/${id}`).set('User-Agent', UA.chromeMac).set('Accept', 'application/json').expect(200);
    if (to === 'expired') await h.db.prisma.checkout.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1000) } });

    let raced = false;
    const real = h.deps.channel;
    const channel: PaymentChannel = {
      ...real,
      closeOrder: async (outTradeNo) => {
        await real.closeOrder(outTradeNo);
        if (raced) return;
        raced = true;
        // A page that read the checkout before its close orders by H5 (second channel order) ...
        const { expiresAt } = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
        await h.db.prisma.checkout.update({ where: { id }, data: { expiresAt: new Date(Date.now() + 600_000) } });
        await h.http().get(`/checkout/${id}`).set('User-Agent', UA.safariIos).set('Accept', 'application/json').expect(200);
        await h.db.prisma.checkout.update({ where: { id }, data: { expiresAt } });
        // ... the shopper pays it, and its notify is applied before the close goes on.
        const second = await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id, tradeType: 'H5' } });
        expect(h.sim.control.pay(second.outTradeNo).ok).toBe(true);
        await waitFor(async () => (await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).status === 'paid', 10_000, 'the notify');
      },
    };
    const outcome = await closeCheckout({ ...h.deps, channel }, id, to);

    expect(raced).toBe(true);
    expect(outcome).not.toBe('closed');
    const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
    expect(row.status).toBe('paid');
    expect(row.transactionId).toEqual(expect.any(String));
    const api = await h.api('get', `/v1/checkouts/${id}`).expect(200);
    expect(api.body.status).toBe('paid');
  });
}
