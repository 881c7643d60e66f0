import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf } from './split-support';
import { ENV, newKey, postRefund, waitForRefund } from './refund-support';

/** Splits wait an hour after payment here, so on-demand batches stay reserved but unsent. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { ...ENV, PROFIT_SHARING_DELAY: '3600', PROFIT_SHARING_RECEIVER_LIMIT: '1' }, sim: { refundResultDelayMs: 0 } });
});
afterAll(async () => h?.close());

test('When a refund needs money only promised to receivers, then unsent batches are cancelled newest first, whole, and only as many as needed', async () => {
  const c = await paidCheckout(h, { amount: 1000, profit_sharing: { mode: 'on_demand' } });
  await h.api('post', `/v1/checkouts/${c.id}/splits`).set('Idempotency-Key', newKey()).send({ receivers: receivers(3, 100, 'frz') }).expect(201);
  const batches = () => h.db.prisma.splitBatch.findMany({ where: { checkoutId: c.id }, orderBy: { seq: 'asc' }, include: { receivers: true } });
  expect((await batches()).map((b) => [b.state, b.sentAt])).toEqual([['pending', null], ['pending', null], ['pending', null]]);

  // 800 + 300 promised > 1000: 100 must give way → the newest batch (b3) is cancelled.
  const r = await postRefund(h, c.id, { amount: 800 }).expect(201);
  let bs = await batches();
  expect(bs.map((b) => [b.state, b.failCode])).toEqual([['pending', null], ['pending', null], ['failed', 'REFUNDED']]);
  expect(bs[2]!.receivers.map((x) => [x.state, x.failReason])).toEqual([['CLOSED', 'REFUNDED']]);
  let row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.id } });
  expect([row.refundedFen, row.splitReservedFen]).toEqual([800, 200]);
  await waitForRefund(h, r.body.id, ['succeeded']);
  expect((await splitOf(h, c.id)).batches[2]!.receivers[0]!.reason).toBe('REFUNDED');

  // A batch already sent is never taken back: with b2 marked sent, a refund that needs it is refused.
  await h.db.prisma.splitBatch.update({ where: { id: bs[1]!.id }, data: { sentAt: new Date() } });
  const refused = await postRefund(h, c.id, { amount: 150 }).expect(422);
  expect(refused.body.error.code).toBe('REFUND_AMOUNT_EXCEEDED');
  bs = await batches();
  expect(bs.map((b) => b.state)).toEqual(['pending', 'pending', 'failed']);

  // 100 more needs exactly one more batch: the newest unsent one is b1 (b2 is sent).
  const r2 = await postRefund(h, c.id, { amount: 100 }).expect(201);
  bs = await batches();
  expect(bs.map((b) => b.state)).toEqual(['failed', 'pending', 'failed']);
  row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id: c.id } });
  expect([row.refundedFen, row.splitReservedFen]).toEqual([900, 100]);
  await waitForRefund(h, r2.body.id, ['succeeded']);
});
