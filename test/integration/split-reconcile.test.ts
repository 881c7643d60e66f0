import type { PaymentChannel } from '../../src/channels/channel';
import { driveCheckout } from '../../src/modules/splits/split.driver';
import type { RateLimiter } from '../../src/modules/splits/split.limiter';
import type { SplitQueue } from '../../src/modules/splits/split.queue';
import { mismatchCounter, reconcileCheckout } from '../../src/modules/splits/split.reconcile';
import { finishSplits } from '../../src/modules/splits/split.service';
import { startHarness, type Harness } from '../support/harness';
import { paidCheckout, receivers, splitOf, waitFor, waitForSplitStatus } from './split-support';

const INTERVAL = 500;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PROFIT_SHARING_RECEIVER_LIMIT: '2', PROFIT_SHARING_POLL_MS: '20', RECONCILE_INTERVAL_MS: String(INTERVAL) } });
  await h.startBackground();
});
afterAll(async () => h?.close());

it('When the channel agrees with our records, then a reconciliation cycle that checked this payment finds nothing', async () => {
  const { id, transactionId } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: receivers(3, 10, 'ok-') } });
  await waitForSplitStatus(h, id, ['succeeded']);
  const settledAt = Date.now();
  // The unsplit-amount query is made for this payment by reconciliation only, last in its check; a
  // second one means the loop came back for it, so the first check (and its storing) is complete.
  const amountQueries = () => h.sim.control.calls.filter((c) => c.at >= settledAt && c.path.includes(`/transactions/${transactionId}/amounts`)).length;
  await waitFor(async () => amountQueries() >= 2, 20_000, 'two reconciliation cycles on this payment');
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
  // One reconciliation.mismatch event per stored mismatch (not per observation), its object the mismatch.
  const events = await h.db.prisma.merchantEvent.findMany({ where: { checkoutId: id, type: 'reconciliation.mismatch' } });
  expect(events).toHaveLength(3);
  const rows = await h.db.prisma.splitMismatch.findMany({ where: { checkoutId: id } });
  expect(events.map((e) => e.objectId).sort()).toEqual(rows.map((m) => m.id).sort());
  const rendered = await waitFor(async () => {
    const e = await h.db.prisma.merchantEvent.findUniqueOrThrow({ where: { id: events[0]!.id } });
    return e.body ? (JSON.parse(e.body) as { data: { object: Record<string, unknown> } }) : null;
  }, 10_000, 'the event body');
  expect(rendered.data.object).toMatchObject({ object: 'mismatch', checkout_id: id, id: events[0]!.objectId });
  // Our records are not rewritten by reconciliation: a person decides.
  expect((await splitOf(h, id)).batches[0]!.receivers[0]!.state).toBe('SUCCESS');
});

describe('no false positives, and resolution', () => {
  const noQueue: SplitQueue = { prefix: 'unused', enqueue: async () => undefined, close: async () => undefined };
  const direct: RateLimiter = { run: (_m, fn) => fn() };

  it('When the payment progresses (unfreeze) while reconciliation is querying the channel, then no UNSPLIT_AMOUNT_MISMATCH is stored, and the next check agrees', async () => {
    const { id, transactionId } = await paidCheckout(h, { amount: 10_000, profit_sharing: { mode: 'on_demand' } });
    await h.api('post', `/v1/checkouts/${id}/splits`).set('Idempotency-Key', 'rc-progress').send({ receivers: receivers(1, 1000, 'prog-') }).expect(201);
    await waitForSplitStatus(h, id, ['succeeded']);
    let progressed = false;
    // Between the per-batch queries and the unsplit-amount query, the merchant finishes and the remainder is unfrozen.
    const channel: PaymentChannel = {
      ...h.deps.channel,
      querySplitOrder: async (tx, outOrderNo) => {
        const answer = await h.deps.channel.querySplitOrder(tx, outOrderNo);
        if (!progressed && tx === transactionId) {
          progressed = true;
          await finishSplits(h.deps, noQueue, 'mch_test', id);
          for (let i = 0; i < 50 && (await driveCheckout({ ...h.deps, limiter: direct, pollBaseMs: 20 }, id)).kind !== 'done'; i++)
            await new Promise((r) => setTimeout(r, 20));
        }
        return answer;
      },
    };
    const findings = await reconcileCheckout({ ...h.deps, channel }, id);

    expect(progressed).toBe(true);
    expect(h.sim.control.profitSharing.unsplitAmount(transactionId)).toBe(0);
    expect(findings).toEqual([]);
    expect(await reconcileCheckout(h.deps, id)).toEqual([]);
    expect((await splitOf(h, id)).mismatches).toEqual([]);
  }, 30_000);

  it('When a mismatch is no longer seen, then it is marked resolved (still shown); seen again, it is open again', async () => {
    const { id } = await paidCheckout(h, { amount: 1000, profit_sharing: { receivers: receivers(2, 10, 'res-') } });
    const s = await waitForSplitStatus(h, id, ['succeeded']);
    const ref = `${s.batches[0]!.out_order_no}:res-000`;
    // Seen by an earlier cycle (the channel disagreed then); the channel agrees now.
    const seenAt = new Date(Date.now() - 60_000);
    await h.db.prisma.splitMismatch.create({
      data: { id: `sm_test_${Date.now()}`, checkoutId: id, kind: 'RECEIVER_CLOSED_AT_CHANNEL', ref, message: 'earlier', detail: { ours: 'SUCCESS', channel: 'CLOSED' }, firstSeenAt: seenAt, lastSeenAt: seenAt },
    });
    const resolvedBefore = mismatchCounter.resolved;
    expect(await reconcileCheckout(h.deps, id)).toEqual([]);

    type Shown = { kind: string; ref: string; occurrences: number; resolved_at: string | null; detail: unknown };
    const shown = async () => (await splitOf(h, id)).mismatches as unknown as Shown[];
    const resolved = await shown();
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.resolved_at).toEqual(expect.any(String));
    expect(resolved[0]!.detail).toEqual({ ours: 'SUCCESS', channel: 'CLOSED' });
    expect(mismatchCounter.resolved).toBeGreaterThan(resolvedBefore);

    expect(h.sim.control.profitSharing.closeReceiver(s.batches[0]!.out_order_no, 'res-000', 'ACCOUNT_ABNORMAL')).toBe(true);
    const found = await reconcileCheckout(h.deps, id);
    expect(found.map((f) => f.kind)).toEqual(['RECEIVER_CLOSED_AT_CHANNEL']);
    const reopened = await shown();
    expect(reopened).toHaveLength(1);
    expect(reopened[0]).toMatchObject({ kind: 'RECEIVER_CLOSED_AT_CHANNEL', ref, resolved_at: null });
    expect(reopened[0]!.occurrences).toBeGreaterThanOrEqual(2);
  }, 30_000);
});
