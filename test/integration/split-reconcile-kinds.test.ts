import { reconcileCheckout } from '../../src/modules/splits/split.reconcile';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, waitForSplitStatus } from './split-support';

/**
 * Every mismatch kind reconciliation stores (split.reconcile.ts), each from one disagreement made
 * on purpose — at the channel through the simulator's controls, or in our rows — on a payment that
 * was settled correctly. Each test expects exactly the kinds its disagreement implies.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '2', PROFIT_SHARING_POLL_MS: '20' } });
  await h.startBackground();
});
afterAll(async () => h?.close());

/** A planned payment of 100 yuan split to 4 receivers of 1 yuan (2 batches), settled and unfrozen. */
async function settled(tag: string) {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(4, 100, tag) } });
  const s = await waitForSplitStatus(h, id, ['succeeded']);
  expect(await reconcileCheckout(h.deps, id)).toEqual([]); // agrees before we break it
  return { id, transactionId, b1: s.batches[0]!.out_order_no, b2: s.batches[1]!.out_order_no };
}
const kinds = async (id: string, deps = h.deps) => (await reconcileCheckout(deps, id)).map((f) => f.kind).sort();
const ps = () => h.sim.control.profitSharing;

it('When the channel holds another amount for a receiver, then AMOUNT_MISMATCH', async () => {
  const { id, b1 } = await settled('amt-');
  expect(ps().setReceiverAmount(b1, 'amt-000', 150)).toBe(true);
  const found = await reconcileCheckout(h.deps, id);
  expect(found.map((f) => f.kind)).toEqual(['AMOUNT_MISMATCH']);
  expect(found[0]).toMatchObject({ ref: `${b1}:amt-000`, detail: { ours: 100, channel: 150 } });
});

it('When the channel holds more split money than the budget, then OVER_SPLIT_AT_CHANNEL (with the amount that differs)', async () => {
  const { id, b1 } = await settled('ovc-');
  // Budget: 30% of 10 000 fen = 3 000 fen; the channel now holds 5 000 + 300.
  expect(ps().setReceiverAmount(b1, 'ovc-000', 5000)).toBe(true);
  expect(await kinds(id)).toEqual(['AMOUNT_MISMATCH', 'OVER_SPLIT_AT_CHANNEL']);
});

it('When the channel closed a receiver we recorded as paid, then RECEIVER_CLOSED_AT_CHANNEL', async () => {
  const { id, b1 } = await settled('clo-');
  expect(ps().closeReceiver(b1, 'clo-001', 'ACCOUNT_ABNORMAL')).toBe(true);
  expect(await kinds(id)).toEqual(['RECEIVER_CLOSED_AT_CHANNEL']);
});

it('When the channel does not know a batch we sent, then BATCH_UNKNOWN_AT_CHANNEL', async () => {
  const { id, b1 } = await settled('unk-');
  expect(ps().forgetOrder(b1)).toBe(true);
  expect(await kinds(id)).toEqual(['BATCH_UNKNOWN_AT_CHANNEL']);
});

it('When a receiver of ours is missing from the channel answer and the channel has one we do not, then RECEIVER_UNKNOWN_AT_CHANNEL and EXTRA_RECEIVER_AT_CHANNEL', async () => {
  const { id } = await settled('ghost-');
  await h.db.prisma.splitReceiver.updateMany({ where: { checkoutId: id, account: 'ghost-000' }, data: { account: 'ghost-999' } });
  expect(await kinds(id)).toEqual(['EXTRA_RECEIVER_AT_CHANNEL', 'RECEIVER_UNKNOWN_AT_CHANNEL']);
});

it('When our final receiver state differs from the channel (CLOSED here, SUCCESS there), then RECEIVER_STATE_MISMATCH', async () => {
  const { id } = await settled('st-');
  await h.db.prisma.splitReceiver.updateMany({ where: { checkoutId: id, account: 'st-002' }, data: { state: 'CLOSED', failReason: 'ACCOUNT_ABNORMAL' } });
  // Its money released as a CLOSED receiver's is, so our own books still balance.
  await h.db.prisma.checkout.update({ where: { id }, data: { splitReservedFen: { decrement: 100 } } });
  expect(await kinds(id)).toEqual(['RECEIVER_STATE_MISMATCH']);
});

it('When a batch we recorded as refused is known to the channel, then BATCH_ACCEPTED_BUT_FAILED_HERE', async () => {
  const { id, b1 } = await settled('acc-');
  await h.db.prisma.splitBatch.update({ where: { outOrderNo: b1 }, data: { state: 'failed', orderId: null, failCode: 'SYSTEM_ERROR' } });
  expect(await kinds(id)).toEqual(['BATCH_ACCEPTED_BUT_FAILED_HERE']);
});

it('When the reserved column disagrees with the open receivers, then RESERVATION_DRIFT', async () => {
  const { id } = await settled('drift-');
  await h.db.prisma.checkout.update({ where: { id }, data: { splitReservedFen: { increment: 7 } } });
  expect(await kinds(id)).toEqual(['RESERVATION_DRIFT']);
});

it('When our split records exceed the budget (ratio lowered since), then OVER_SPLIT (and the channel over it too)', async () => {
  const { id } = await settled('over-');
  const deps = { ...h.deps, config: { ...h.config, PROFIT_SHARING_MAX_RATIO: 0.01 } };
  expect(await kinds(id, deps)).toEqual(['OVER_SPLIT', 'OVER_SPLIT_AT_CHANNEL']);
});

it('When the remainder was unfrozen at the channel behind our back, then UNSPLIT_AMOUNT_MISMATCH', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
  await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'kinds-unsplit').send({ receivers: receivers(1, 100, 'uns-') }).expect(201);
  await waitForSplitStatus(h, id, ['succeeded']);
  expect(await reconcileCheckout(h.deps, id)).toEqual([]);
  await h.deps.channel.unfreeze({ transactionId, outOrderNo: `manual-${Date.now()}`, description: '解冻全部剩余资金' });
  expect(ps().unsplitAmount(transactionId)).toBe(0);
  const found = await reconcileCheckout(h.deps, id);
  expect(found.map((f) => f.kind)).toEqual(['UNSPLIT_AMOUNT_MISMATCH']);
  expect(found[0]!.detail).toEqual({ channel: 0, expected: 9_900 });
});
