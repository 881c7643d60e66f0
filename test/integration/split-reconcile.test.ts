import { mismatchCounter } from '../../src/modules/splits/split.reconcile';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf, waitFor, waitForSplitStatus } from './split-support';

const INTERVAL = 500;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '2', PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: String(INTERVAL) } });
  await h.startBackground();
});
afterAll(async () => h?.close());

it('When the channel agrees with our records, then reconciliation finds nothing', async () => {
  const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: receivers(3, 10, 'ok-') } });
  await waitForSplitStatus(h, id, ['succeeded']);
  await new Promise((r) => setTimeout(r, INTERVAL * 3));
  expect((await splitOf(h, id)).mismatches).toEqual([]);
});

it('When the simulator closes a receiver we recorded as paid and forgets a batch, then both mismatches are found within one cycle, stored once and shown', async () => {
  const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: receivers(4, 10, 'rc-') } });
  const s = await waitForSplitStatus(h, id, ['succeeded']);
  const [b1, b2] = s.batches;
  const before = mismatchCounter.created;

  expect(h.sim.control.profitSharing.closeReceiver(b1!.out_order_no, 'rc-000', 'ACCOUNT_ABNORMAL')).toBe(true);
  expect(h.sim.control.profitSharing.forgetOrder(b2!.out_order_no)).toBe(true);
  const t0 = Date.now();
  const found = await waitFor(async () => {
    const m = (await splitOf(h, id)).mismatches;
    const kinds = m.map((x) => x.kind);
    return kinds.includes('RECEIVER_CLOSED_AT_CHANNEL') && kinds.includes('BATCH_UNKNOWN_AT_CHANNEL') ? m : null;
  }, 10_000, 'mismatches');
  // Within one cycle: the next tick (≤ one interval away) plus the time a tick takes (slack for loaded CI).
  expect(Date.now() - t0).toBeLessThan(INTERVAL + 2500);
  expect(found.find((m) => m.kind === 'RECEIVER_CLOSED_AT_CHANNEL')!.ref).toBe(`${b1!.out_order_no}:rc-000`);
  expect(found.find((m) => m.kind === 'BATCH_UNKNOWN_AT_CHANNEL')!.ref).toBe(b2!.out_order_no);

  // Later cycles count the same mismatch again instead of storing it twice. (Forgetting the batch
  // that carried unfreeze_unsplit also makes the channel report money still frozen: a third finding.)
  const repeated = await waitFor(async () => {
    const m = (await splitOf(h, id)).mismatches;
    return m.every((x) => x.occurrences >= 2) ? m : null;
  }, 10_000, 'repeat');
  expect(repeated.map((m) => m.kind).sort()).toEqual(['BATCH_UNKNOWN_AT_CHANNEL', 'RECEIVER_CLOSED_AT_CHANNEL', 'UNSPLIT_AMOUNT_MISMATCH']);
  expect(await h.db.prisma.splitMismatch.count({ where: { checkoutId: id } })).toBe(3);
  expect(mismatchCounter.created - before).toBe(3);
  // Our records are not rewritten by reconciliation: a person decides.
  expect((await splitOf(h, id)).batches[0]!.receivers[0]!.state).toBe('SUCCESS');
});
