/**
 * The split driver, worker and queue driven directly (no background worker), so a fault or a race
 * can be placed exactly between two of the driver's database/channel calls.
 */
import { Queue } from 'bullmq';
import type { PaymentChannel } from '../../src/channels/channel';
import { ChannelError } from '../../src/lib/errors';
import type { PrismaClient } from '../../src/lib/prisma';
import { driveCheckout, LOCK_LOST, type DriverDeps } from '../../src/modules/splits/split.driver';
import type { RateLimiter } from '../../src/modules/splits/split.limiter';
import { createSplitsModule } from '../../src/modules/splits/split.module';
import { createSplitQueue, SPLIT_QUEUE, type SplitQueue } from '../../src/modules/splits/split.queue';
import { kickStalled } from '../../src/modules/splits/split.reconcile';
import { createOnDemandSplit, finishSplits, replaceSplitPlan } from '../../src/modules/splits/split.service';
import { startSplitWorker, type SplitWorker } from '../../src/modules/splits/split.worker';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf, splitRequests, waitFor, waitForSplitStatus } from './split-support';

let h: Harness;
const queuePrefix = `driver-${process.pid}-${Date.now()}`;
const direct: RateLimiter = { run: (_m, fn) => fn() };
const workers: SplitWorker[] = [];

/** A queue that only records what would have been enqueued. */
function recordingQueue(): SplitQueue & { jobs: Array<{ jobId: string; checkoutId: string }> } {
  const jobs: Array<{ jobId: string; checkoutId: string }> = [];
  return { prefix: queuePrefix, jobs, enqueue: async (jobId, data) => void jobs.push({ jobId, checkoutId: data.checkoutId }), close: async () => undefined };
}

beforeAll(async () => {
  const mod = { ...createSplitsModule({ queuePrefix }), startWorkers: undefined };
  h = await startHarness({ modules: [mod], env: { PROFIT_SHARING_RECEIVER_LIMIT: '5', PROFIT_SHARING_POLL_MS: '20' } });
});
afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await h?.close();
});

/** A Prisma client whose `model.method` is replaced; everything else goes to the real client. */
function patchedPrisma(real: PrismaClient, model: string, method: string, impl: (orig: (...a: unknown[]) => unknown, ...a: unknown[]) => unknown): PrismaClient {
  return new Proxy(real, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === model) {
        const m = v as Record<string, unknown>;
        return new Proxy(m, {
          get(t, p) {
            const f = Reflect.get(t, p, t) as unknown;
            if (p === method) return (...a: unknown[]) => impl((f as (...x: unknown[]) => unknown).bind(t), ...a);
            return typeof f === 'function' ? (f as (...x: unknown[]) => unknown).bind(t) : f;
          },
        });
      }
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  }) as PrismaClient;
}

function driverDeps(over: Partial<DriverDeps> = {}): DriverDeps {
  return { ...h.deps, limiter: direct, pollBaseMs: 20, ...over };
}

/** Runs the driver as a worker would (waiting where it says) until it has nothing left to do. */
async function driveToEnd(id: string, over: Partial<DriverDeps> = {}): Promise<void> {
  const end = Date.now() + 15_000;
  for (;;) {
    const step = await driveCheckout(driverDeps(over), id);
    if (step.kind === 'done') return;
    if (Date.now() > end) throw new Error(`driver still waiting: ${step.reason}`);
    await new Promise((r) => setTimeout(r, Math.max(0, step.until - Date.now())));
  }
}

/** What the WeChat adapter throws for a signed 2xx whose body does not match our schema. */
const unreadable2xx = (path: string) =>
  new ChannelError('BAD_RESPONSE', `${path}: answer does not match the expected shape`, { retryable: false, httpStatus: 200, detail: {} });

it('When the plan is replaced (PUT answered 200) after the driver read the old one but before it reserves, then the new plan is the one reserved', async () => {
  const oldPlan = receivers(2, 100, 'old-');
  const newPlan = receivers(2, 200, 'new-');
  const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: oldPlan } });
  let replaced = false;
  // The driver has read the checkout (old plan); the merchant's PUT lands before its reservation UPDATE.
  const racing = patchedPrisma(h.db.prisma, 'checkout', 'findUnique', async (orig, ...a) => {
    const row = await orig(...a);
    if (!replaced) {
      replaced = true;
      await replaceSplitPlan(h.deps, recordingQueue(), 'mch_test', id, newPlan); // resolves: the merchant got 200
    }
    return row;
  });
  await driveCheckout(driverDeps({ prisma: racing }), id, 1);

  expect(replaced).toBe(true);
  const stored = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  expect((stored.splitPlan as Array<{ account: string }>).map((r) => r.account)).toEqual(newPlan.map((r) => r.account));
  const reserved = await h.db.prisma.splitReceiver.findMany({ where: { checkoutId: id }, orderBy: { position: 'asc' } });
  expect(reserved.map((r) => r.account)).toEqual(newPlan.map((r) => r.account));
  expect(stored.splitReservedFen).toBe(400);
}, 30_000);

it('When the channel accepts a split (2xx) but its answer fails our schema, then the batch stays pending with its budget, and a re-send of the same out_order_no settles it', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
  await createOnDemandSplit(h.deps, recordingQueue(), 'mch_test', id, receivers(2, 1000, 'shape-'));
  const real = h.deps.channel;
  const odd: PaymentChannel = {
    ...real,
    createSplitOrder: async (input) => {
      await real.createSplitOrder(input);
      throw unreadable2xx('POST /v3/profitsharing/orders');
    },
  };
  const step = await driveCheckout(driverDeps({ channel: odd }), id, 3);

  expect(step.kind).toBe('wait'); // retried later, not given up
  const accepted = h.sim.control.profitSharing.orders().filter((o) => o.transaction_id === transactionId);
  expect(accepted).toHaveLength(1); // the money is being split at the channel
  const batch = await h.db.prisma.splitBatch.findFirstOrThrow({ where: { checkoutId: id } });
  expect(batch.state).toBe('pending');
  expect(batch.lastError).toContain('BAD_RESPONSE');
  expect((await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } })).splitReservedFen).toBe(2000);

  // Next run with a readable answer: the same out_order_no again, one order at the channel.
  await driveToEnd(id);
  const s = await splitOf(h, id);
  expect(s.batches.map((b) => b.state)).toEqual(['succeeded']);
  expect(h.sim.control.profitSharing.orders().filter((o) => o.transaction_id === transactionId)).toHaveLength(1);
  expect(new Set(splitRequests(h, transactionId).map((r) => r.outOrderNo)).size).toBe(1);
}, 30_000);

it('When the channel accepts an unfreeze (2xx) but its answer fails our schema, then the unfreeze is not recorded as failed and is re-sent with the same out_order_no', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
  await createOnDemandSplit(h.deps, recordingQueue(), 'mch_test', id, receivers(1, 1000, 'ufz-'));
  await driveToEnd(id);
  await finishSplits(h.deps, recordingQueue(), 'mch_test', id);
  const real = h.deps.channel;
  const odd: PaymentChannel = {
    ...real,
    unfreeze: async (input) => {
      await real.unfreeze(input);
      throw unreadable2xx('POST /v3/profitsharing/orders/unfreeze');
    },
  };
  const step = await driveCheckout(driverDeps({ channel: odd }), id, 5);

  expect(step.kind).toBe('wait');
  const uf = await h.db.prisma.splitUnfreeze.findUniqueOrThrow({ where: { checkoutId: id } });
  expect(uf.state).toBe('pending');
  expect(uf.lastError).toContain('BAD_RESPONSE');

  await driveToEnd(id);
  const s = await waitForSplitStatus(h, id, ['succeeded']);
  expect(s.unfreeze).toMatchObject({ state: 'succeeded', out_order_no: uf.outOrderNo });
  expect(s.unfrozen_amount).toBe(9000);
  expect(h.sim.control.profitSharing.unsplitAmount(transactionId)).toBe(0);
}, 30_000);

it('When a refused plan (PLAN_REJECTED) is replaced by a valid one, then the alert is cleared, the payment is kicked again and the new plan is split', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(2, 100, 'rej-') } });
  // A stored plan that no longer fits (e.g. the ratio was lowered since it was accepted).
  await h.db.prisma.checkout.update({ where: { id }, data: { splitPlan: receivers(2, 2000, 'rej-') } });
  const step = await driveCheckout(driverDeps(), id);
  expect(step).toMatchObject({ kind: 'done', reason: 'plan refused: SPLIT_BUDGET_EXCEEDED' });
  expect((await splitOf(h, id)).alerts.map((a) => a.kind)).toEqual(['PLAN_REJECTED']);
  // The sweeper leaves a refused plan alone (re-running it cannot succeed) ...
  const sweep1 = recordingQueue();
  await kickStalled(h.deps, sweep1, 0);
  expect(sweep1.jobs.some((j) => j.checkoutId === id)).toBe(false);

  const put = recordingQueue();
  const fixed = receivers(2, 500, 'fix-');
  await replaceSplitPlan(h.deps, put, 'mch_test', id, fixed);
  expect((await splitOf(h, id)).alerts).toEqual([]);
  expect(put.jobs.map((j) => j.checkoutId)).toEqual([id]); // kicked by the PUT itself
  // ... and picks it up again once the plan was replaced.
  const sweep2 = recordingQueue();
  await kickStalled(h.deps, sweep2, 0);
  expect(sweep2.jobs.some((j) => j.checkoutId === id)).toBe(true);

  await driveToEnd(id);
  const s = await waitForSplitStatus(h, id, ['succeeded']);
  expect(s.batches.flatMap((b) => b.receivers.map((r) => r.account))).toEqual(fixed.map((r) => r.account));
  expect(h.sim.control.profitSharing.unsplitAmount(transactionId)).toBe(0);
}, 30_000);

it('When the plan is replaced while the driver is refusing the old one, then no PLAN_REJECTED alert is left about the new plan', async () => {
  const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(2, 100, 'late-') } });
  await h.db.prisma.checkout.update({ where: { id }, data: { splitPlan: receivers(2, 2000, 'late-') } });
  const fixed = receivers(2, 300, 'late-ok-');
  let replaced = false;
  // The refusal is explained (read after the UPDATE matched nothing); the PUT lands right then.
  const racing = patchedPrisma(h.db.prisma, 'checkout', 'findUnique', async (orig, ...a) => {
    const row = await orig(...a);
    const arg = a[0] as { include?: unknown };
    if (!replaced && arg.include === undefined) {
      replaced = true;
      await replaceSplitPlan(h.deps, recordingQueue(), 'mch_test', id, fixed);
    }
    return row;
  });
  await driveCheckout(driverDeps({ prisma: racing }), id, 3);

  expect(replaced).toBe(true);
  expect((await splitOf(h, id)).alerts).toEqual([]);
  const reserved = await h.db.prisma.splitReceiver.findMany({ where: { checkoutId: id }, orderBy: { position: 'asc' } });
  expect(reserved.map((r) => r.account)).toEqual(fixed.map((r) => r.account));
}, 30_000);

it('When PROFIT_SHARING_DELAY is 70 (seconds), then a planned payment waits until paid_at + 70 s before anything is reserved', async () => {
  const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(2, 100, 'dly-') } });
  const row = await h.db.prisma.checkout.findUniqueOrThrow({ where: { id } });
  const step = await driveCheckout(driverDeps({ config: { ...h.config, PROFIT_SHARING_DELAY: 70 }, now: () => new Date(row.paidAt!.getTime() + 69_000) }), id);

  expect(step).toEqual({ kind: 'wait', until: row.paidAt!.getTime() + 70_000, reason: 'wait after payment' });
  expect(await h.db.prisma.split.count({ where: { checkoutId: id } })).toBe(0);
}, 30_000);

it('When the per-payment lock is reported lost between two steps, then the driver stops before the next channel request', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(8, 100, 'lk-') } });
  let calls = 0;
  // Steps: 1 reserve the plan, 2 send batch 1; before step 3 the lock is gone.
  const step = await driveCheckout(driverDeps(), id, 500, { beforeStep: async () => ++calls <= 2 });

  expect(step).toMatchObject({ kind: 'wait', reason: LOCK_LOST });
  expect(calls).toBe(3);
  expect(splitRequests(h, transactionId)).toHaveLength(1);
}, 30_000);

it('When one worker run takes longer than the per-payment lock TTL, then the lock is renewed inside the run and never lapses', async () => {
  const prefix = `${queuePrefix}-lock`;
  const real = h.deps.channel;
  // 6 batches × 1.2 s per request: one driver run of ~7 s, longer than the 5 s lock TTL.
  const slow: PaymentChannel = {
    ...real,
    createSplitOrder: async (input) => {
      await new Promise((r) => setTimeout(r, 1200));
      return real.createSplitOrder(input);
    },
  };
  const { id } = await paidCheckout(h, { amount: 10_000, profit_sharing: { receivers: receivers(30, 10, 'ttl-') } });
  const w = await startSplitWorker({ ...h.deps, channel: slow }, { queuePrefix: prefix, lockDurationMs: 1000, stalledIntervalMs: 300, pollBaseMs: 20 });
  workers.push(w);
  const queue = createSplitQueue(h.deps.redis, prefix);
  await queue.enqueue(`pay_${id}`, { checkoutId: id });
  const lockKey = `${prefix}:split-lock:${id}`;
  await waitFor(async () => (await h.deps.redis.exists(lockKey)) === 1, 5_000, 'the lock');

  const lapses: number[] = [];
  for (;;) {
    const s = await splitOf(h, id);
    if (s.status === 'succeeded') break;
    if ((await h.deps.redis.exists(lockKey)) !== 1 && (await splitOf(h, id)).status !== 'succeeded') lapses.push(Date.now());
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(lapses).toEqual([]);
  expect((await splitOf(h, id)).batches).toHaveLength(6);
  await w.stop();
  await queue.close();
}, 40_000);

it('When a job with a fixed id failed for good, then the same id can be enqueued again', async () => {
  const prefix = `${queuePrefix}-fail`;
  const queue = createSplitQueue(h.deps.redis, prefix);
  const raw = new Queue(SPLIT_QUEUE, { connection: h.deps.redis as never, prefix });
  const w = await startSplitWorker(h.deps, { queuePrefix: prefix, pollBaseMs: 20 });
  workers.push(w);
  // A payload that can never be valid: the worker fails it at once (UnrecoverableError).
  await queue.enqueue('kick_sticky', { checkoutId: 'not-a-checkout' });
  await waitFor(async () => (await raw.getJob('kick_sticky')) === undefined, 10_000, 'the failed job to go');
  await w.stop();

  await queue.enqueue('kick_sticky', { checkoutId: 'co_00000000000000000000' }, 60_000);
  const again = await raw.getJob('kick_sticky');
  expect(again?.data).toEqual({ checkoutId: 'co_00000000000000000000' });
  expect(await again?.getState()).toBe('delayed');
  await raw.obliterate({ force: true });
  await raw.close();
  await queue.close();
}, 30_000);
