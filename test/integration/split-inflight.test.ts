import { createSplitQueue, type SplitQueue } from '../../src/modules/splits/split.queue';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitRequests, waitForSplitStatus } from './split-support';

/**
 * One batch in flight per payment, judged by the channel's own clock: with a result delay above
 * zero, the simulator finishes a batch `RESULT_DELAY` after it arrived, so the next batch of the
 * same payment may only arrive after that. Sending every pending batch before polling, or a
 * per-payment lock that is not exclusive (SET without NX), breaks it.
 */
const RESULT_DELAY = 600;
let h: Harness;
let queue: SplitQueue;
beforeAll(async () => {
  h = await startHarness({
    env: { PROFIT_SHARING_RECEIVER_LIMIT: '2', PROFIT_SHARING_POLL_MS: '50', PROFIT_SHARING_CONCURRENCY: '8' },
    sim: { profitSharing: { resultDelayMs: RESULT_DELAY } },
  });
  await h.startBackground();
  queue = createSplitQueue(h.deps.redis, h.config.QUEUE_PREFIX);
});
afterAll(async () => {
  await queue?.close();
  await h?.close();
});

it('When a payment has several batches, a result delay and several jobs driving it at once, then each batch arrives once and only after the previous one finished at the channel', async () => {
  const plan = receivers(8, 100, 'inflight-');
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: plan } });
  // More jobs for the same payment, as a due scan, a kick and an API call could add: the lock must serialise them.
  await Promise.all([1, 2, 3, 4].map((i) => queue.enqueue(`extra_${i}_${id}`, { checkoutId: id })));

  const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed'], 30_000);
  expect(s.status).toBe('succeeded');
  expect(s.batches).toHaveLength(4);

  const reqs = splitRequests(h, transactionId);
  // Each out_order_no reached the channel exactly once: no driver sent a batch another was sending.
  expect(reqs.map((r) => r.outOrderNo).sort()).toEqual(s.batches.map((b) => b.out_order_no).sort());
  expect(reqs.every((r) => r.status === 200)).toBe(true);
  // In the order of the plan, each arriving after the previous one's result was due at the channel.
  const arrivals = s.batches.map((b) => reqs.find((r) => r.outOrderNo === b.out_order_no)!.at);
  for (let i = 1; i < arrivals.length; i++) expect(arrivals[i]! - arrivals[i - 1]!).toBeGreaterThanOrEqual(RESULT_DELAY);
}, 60_000);
