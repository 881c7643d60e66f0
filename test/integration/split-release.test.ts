import { closeReceivers } from '../../src/modules/splits/split.budget';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers } from './split-support';

/**
 * Money goes back to the budget once per receiver: closing a receiver that is already CLOSED (a
 * repeated channel answer, two runs racing on one answer) must release nothing. Without workers, so
 * the split stays as reserved.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

it('When the same receiver is closed twice (or by two racing answers), then its money is released once', async () => {
  const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
  await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'release-once').send({ receivers: receivers(2, 500, 'rel-') }).expect(201);
  const [r1] = await h.db.prisma.splitReceiver.findMany({ where: { checkoutId: id }, orderBy: { position: 'asc' } });
  expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(1000);

  const close = () => h.db.prisma.$transaction((db) => closeReceivers(db, { checkoutId: id, closed: [{ id: r1!.id, failReason: 'ACCOUNT_ABNORMAL' }], now: new Date() }));
  const released = await Promise.all([close(), close()]);
  expect(released.sort()).toEqual([0, 500]);
  expect(await close()).toBe(0);
  expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(500);
  expect((await h.db.prisma.splitReceiver.findUniqueOrThrow({ where: { id: r1!.id } })).state).toBe('CLOSED');
});
