import type { PaymentChannel } from '../../src/channels/channel';
import { createSplitsModule } from '../../src/modules/splits/split.module';
import { startSplitWorker, type SplitWorker } from '../../src/modules/splits/split.worker';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf, waitFor, waitForSplitStatus } from './split-support';

/**
 * The module's routes, JSON and outbox handler are mounted as usual, but its workers are started by
 * the test, so one can "die" in the middle of a batch.
 */
const queuePrefix = `crash-${process.pid}-${Date.now()}`;
const workerOpts = { queuePrefix, lockDurationMs: 1000, stalledIntervalMs: 300, pollBaseMs: 20 };
let h: Harness;
const workers: SplitWorker[] = [];
beforeAll(async () => {
  const mod = { ...createSplitsModule({ queuePrefix }), startWorkers: undefined };
  h = await startHarness({ modules: [mod], env: { PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20' } });
  await h.startBackground(); // outbox: payment.succeeded -> the split job
});
afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await h?.close();
});

it('When a worker dies after sending a batch but before storing the answer, then a new worker re-sends the same out_order_no and the channel splits once', async () => {
  let sentFirst!: () => void;
  const firstSent = new Promise<void>((r) => (sentFirst = r));
  const real = h.deps.channel;
  // The request reaches the channel (its effect happens), then this process "dies": no answer is ever stored.
  const dying: PaymentChannel = {
    ...real,
    createSplitOrder: async (input) => {
      await real.createSplitOrder(input);
      sentFirst();
      return new Promise(() => undefined);
    },
  };
  const w1 = await startSplitWorker({ ...h.deps, channel: dying }, workerOpts);
  workers.push(w1);

  const plan = receivers(8, 100, 'crash-');
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: plan } });
  await firstSent;
  await w1.kill();

  const firstBatch = await h.db.prisma.splitBatch.findFirstOrThrow({ where: { checkoutId: id, seq: 1 } });
  expect(firstBatch.state).toBe('pending'); // the answer was never stored
  expect(h.sim.control.profitSharing.orders().filter((o) => o.transaction_id === transactionId)).toHaveLength(1);

  workers.push(await startSplitWorker(h.deps, workerOpts));
  const s = await waitForSplitStatus(h, id, ['succeeded', 'partially_failed', 'failed'], 20_000);

  expect(s.status).toBe('succeeded');
  const orders = h.sim.control.profitSharing.orders().filter((o) => o.transaction_id === transactionId);
  expect(orders).toHaveLength(2); // two batches, no duplicate
  const requestsForFirst = h.sim.control.profitSharing.requests().filter((r) => r.outOrderNo === firstBatch.outOrderNo);
  expect(requestsForFirst.length).toBeGreaterThanOrEqual(2); // re-sent ...
  expect(requestsForFirst.every((r) => r.status === 200)).toBe(true); // ... and answered as the same request
  const channelTotal = orders.flatMap((o) => o.receivers as Array<{ amount: number }>).reduce((a, r) => a + r.amount, 0);
  expect(channelTotal).toBe(800);
  const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  expect(row.splitReservedFen).toBe(800);
  expect(await h.db.prisma.splitReceiver.count({ where: { checkoutId: id, state: 'SUCCESS' } })).toBe(8);
  expect(s.unfrozen_amount).toBe(9200);
  expect(h.sim.control.profitSharing.unsplitAmount(transactionId)).toBe(0);
  expect((await splitOf(h, id)).batches.map((b) => b.state)).toEqual(['succeeded', 'succeeded']);
}, 40_000);
