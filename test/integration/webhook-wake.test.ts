import { startHarness, type Harness } from '../support/harness';
import { startReceiver } from '../support/webhook-receiver';
import { paidCheckout, waitFor } from './split-support';

/**
 * A payment's checkout.paid event is published by the notify's one statement without a NOTIFY (a
 * NOTIFY serialised every payment's commit on PostgreSQL's notification-queue lock): the process
 * that applied it wakes its own dispatcher. With a one-minute poll, only that wake-up can deliver
 * the event within seconds.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { WEBHOOK_POLL_MS: '60000' } });
  await h.startBackground();
});
afterAll(async () => h?.close());

it('When a notify pays a checkout, then its checkout.paid webhook leaves at once although the dispatcher polls once a minute', async () => {
  const rx = await startReceiver();
  try {
    await h.api('post', '/v1/webhook_endpoints').send({ url: rx.url, events: ['checkout.paid'] }).expect(201);
    // The dispatcher's first poll (at start) is behind us: from here on only a wake-up delivers.
    await new Promise((r) => setTimeout(r, 300));
    const t = Date.now();
    const { id } = await paidCheckout(h, { amount: 321 });
    const got = await waitFor(async () => rx.got.find((g) => g.json.data.object.id === id) ?? null, 10_000, 'the checkout.paid delivery');
    expect(got.json.type).toBe('checkout.paid');
    expect(got.json.data.object).toMatchObject({ id, status: 'paid', amount: 321 });
    expect(Date.now() - t).toBeLessThan(10_000);
  } finally {
    await rx.close();
  }
});
