import { Pool } from 'pg';
import type { PaymentChannel } from '../../src/channels/channel';
import { ensureChannelOrder } from '../../src/modules/payments/channel-order.service';
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

/** A page that read the checkout while it was open and orders only now (it was slow: a pool wait, a stall). */
async function slowPage(id: string, channel: PaymentChannel = h.deps.channel) {
  const checkout = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  return (ended: () => Promise<unknown>) => ended().then(() => ensureChannelOrder({ prisma: h.deps.prisma, channel, config: h.config, now: h.deps.now }, checkout, 'NATIVE', {}, null));
}

it('When a page that read an open checkout orders after the checkout ended, then no order is made, WeChat is not called, and the page answers CHECKOUT_NOT_OPEN', async () => {
  const id = (await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201)).body.id as string;
  const page = await slowPage(id);
  const mark = h.sim.control.calls.length;
  await expect(page(() => closeCheckout(h.deps, id, 'closed'))).rejects.toMatchObject({ code: 'CHECKOUT_NOT_OPEN' });
  expect(await h.db.prisma.channelOrder.count({ where: { checkoutId: id } })).toBe(0);
  expect(h.sim.control.calls.slice(mark).filter((c) => c.path.startsWith('/v3/pay/transactions/native'))).toHaveLength(0);
});

it('When a close commits while a page is inserting its order, then the insert waits for it and makes no order; when the close rolls back, the order is made', async () => {
  for (const outcome of ['COMMIT', 'ROLLBACK'] as const) {
    const id = (await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201)).body.id as string;
    const page = await slowPage(id);
    const pool = new Pool({ connectionString: h.db.url, max: 1 });
    const closer = await pool.connect();
    try {
      await closer.query('BEGIN');
      await closer.query(`UPDATE checkouts SET status = 'closed' WHERE id = $1`, [id]);
      let settled = false;
      const ordering = page(async () => undefined).finally(() => (settled = true));
      ordering.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toBe(false); // waiting for the close's row lock
      await closer.query(outcome);
      if (outcome === 'COMMIT') await expect(ordering).rejects.toMatchObject({ code: 'CHECKOUT_NOT_OPEN' });
      else expect((await ordering).status).toBe('created');
      expect(await h.db.prisma.channelOrder.count({ where: { checkoutId: id } })).toBe(outcome === 'COMMIT' ? 0 : 1);
    } finally {
      closer.release();
      await pool.end();
    }
  }
});

it('When the checkout\'s orders are closed while a page is ordering at WeChat (the close found no order there yet), then the page closes the order it just made and answers CHECKOUT_NOT_OPEN', async () => {
  const id = (await h.api('post', '/v1/checkouts').send(checkoutBody()).expect(201)).body.id as string;
  const real = h.deps.channel;
  let outTradeNo = '';
  const channel: PaymentChannel = {
    ...real,
    createOrder: async (input) => {
      outTradeNo = input.outTradeNo;
      // The close runs first: WeChat answers "not found", taken as closed, and the checkout ends.
      await closeCheckout(h.deps, id, 'closed');
      expect((await h.db.prisma.channelOrder.findFirstOrThrow({ where: { checkoutId: id } })).status).toBe('closed');
      return real.createOrder(input);
    },
  };
  const page = await slowPage(id, channel);
  await expect(page(async () => undefined)).rejects.toMatchObject({ code: 'CHECKOUT_NOT_OPEN' });
  expect(h.sim.control.transaction(outTradeNo)!.state).toBe('CLOSED');
  expect(h.sim.control.pay(outTradeNo).ok).toBe(false);
});
