import type { AppDeps } from '../../app.types';
import type { Config } from '../../config/config';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { PrismaClient } from '../../lib/prisma';
import type { ReceiverInput } from '../checkout/checkout.schemas';
import { getCheckout, splitLimitsOf, type CheckoutWithOrders } from '../checkout/checkout.service';
import { reserveSplit } from './split.budget';
import { splitLimitsFor, withAuthorisedRatio } from './split.ratio';
import { channelsOf } from '../merchants/channel-resolver';
import { markSplitDue } from './split.due';
import { mismatchResolution } from './split.reconcile';
import { checkSplit, splitBudget, splitStatus, unfreezeOutOrderNo } from './split.rules';
import type { SplitQueue } from './split.queue';

type Deps = Pick<AppDeps, 'prisma' | 'config' | 'logger' | 'now' | 'channel' | 'channels'>;

/** The limits of this payment's account: a sub-merchant's authorised ratio caps the budget (split.ratio.ts). */
async function limitsOfCheckout(deps: Deps, checkoutId: string) {
  return splitLimitsFor(deps, await channelsOf(deps).forCheckout(checkoutId));
}

/** When the first split request of this payment may go out (WeChat: ≥ 1 min after payment). */
function delayUntilReady(deps: Deps, paidAt: Date | null): number {
  if (!paidAt) return 0;
  return Math.max(0, paidAt.getTime() + deps.config.PROFIT_SHARING_DELAY * 1000 - deps.now().getTime());
}

/** Enqueue after commit; if Redis is down the split is still stored and the sweeper re-kicks it. */
async function kick(deps: Deps, queue: SplitQueue, jobId: string, checkoutId: string, paidAt: Date | null): Promise<void> {
  try {
    await queue.enqueue(jobId, { checkoutId }, delayUntilReady(deps, paidAt));
  } catch (err) {
    deps.logger.error({ err, checkoutId, jobId }, 'could not enqueue split job; the sweeper will pick it up');
  }
}

/**
 * POST /v1/checkouts/{id}/splits: validates (schema: positive integer amounts, no receiver twice),
 * pre-checks the budget for a precise message, then reserves in the database (split.budget.ts),
 * which is what actually decides under concurrency. Nothing is written when refused.
 * `idempotencyKey` is stored on the split: a retry with the same key returns the same split even
 * when the API's stored answer was lost (and even once the budget is used up).
 */
export async function createOnDemandSplit(
  deps: Deps,
  queue: SplitQueue,
  merchantId: string,
  checkoutId: string,
  receivers: ReceiverInput[],
  idempotencyKey: string | null = null,
) {
  const c = await getCheckout(deps.prisma, checkoutId, merchantId);
  if (idempotencyKey !== null) {
    const prior = await deps.prisma.split.findUnique({
      where: { checkoutId_idempotencyKey: { checkoutId, idempotencyKey } },
      select: { id: true },
    });
    if (prior) return replaySplit(deps, queue, prior.id, c.paidAt, receivers);
  }
  const limits = await limitsOfCheckout(deps, checkoutId);
  if (c.status === 'paid' && c.paidTotalFen !== null && c.profitSharing === 'on_demand' && !c.splitFinishedAt)
    checkSplit(receivers, { paidFen: c.paidTotalFen - c.merchantFundedFen - c.refundedFen, alreadyReservedFen: c.splitReservedFen - c.splitReturnedFen, requestsUsed: c.splitRequests }, limits);
  const r = await reserveSplit(deps.prisma, { checkoutId, kind: 'on_demand', receivers, limits, now: deps.now(), unfreezeWithLastBatch: false, idempotencyKey });
  if (r.existing) return replaySplit(deps, queue, r.splitId, c.paidAt, receivers);
  await kick(deps, queue, `split_${r.splitId}`, checkoutId, c.paidAt);
  return splitObjectJson(deps.prisma, r.splitId);
}

/** The split already reserved under this key: the same receivers get it back, others a 409. */
async function replaySplit(deps: Deps, queue: SplitQueue, splitId: string, paidAt: Date | null, receivers: ReceiverInput[]) {
  const stored = await deps.prisma.splitReceiver.findMany({
    where: { batch: { splitId } },
    orderBy: [{ batch: { seq: 'asc' } }, { position: 'asc' }],
    select: { type: true, account: true, amountFen: true },
  });
  const same = stored.length === receivers.length &&
    stored.every((s, i) => s.type === receivers[i]!.type && s.account === receivers[i]!.account && s.amountFen === receivers[i]!.amount);
  if (!same) throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used for a split with other receivers');
  const s = await deps.prisma.split.findUniqueOrThrow({ where: { id: splitId }, select: { checkoutId: true } });
  // The first attempt may have failed before its enqueue: kick again (the driver is idempotent).
  await kick(deps, queue, `split_${splitId}`, s.checkoutId, paidAt);
  return splitObjectJson(deps.prisma, splitId);
}

/**
 * POST /v1/checkouts/{id}/splits/finish: no further splits; the remainder is unfrozen (explicit
 * unfreeze with its own out_order_no) once the batches already requested are final. Repeatable.
 */
export async function finishSplits(deps: Deps, queue: SplitQueue, merchantId: string, checkoutId: string) {
  const c = await getCheckout(deps.prisma, checkoutId, merchantId);
  if (c.profitSharing !== 'on_demand')
    throw new AppError('SPLIT_NOT_ALLOWED', c.profitSharing === 'none'
      ? 'Profit sharing is not enabled for this checkout'
      : 'A planned split unfreezes the remainder by itself; finish is for on_demand checkouts');
  if (c.status !== 'paid') throw new AppError('SPLIT_NOT_ALLOWED', `Checkout is ${c.status}; only a paid checkout can be finished`);
  const now = deps.now();
  await deps.prisma.$transaction(async (db) => {
    const moved = await db.checkout.updateMany({
      where: { id: checkoutId, status: 'paid', profitSharing: 'on_demand', splitFinishedAt: null },
      data: { splitFinishedAt: now },
    });
    if (moved.count === 1) {
      await db.splitUnfreeze.create({ data: { id: newId('su'), checkoutId, method: 'explicit', outOrderNo: unfreezeOutOrderNo(checkoutId), createdAt: now } });
      await markSplitDue(db, checkoutId, now);
    }
  });
  await kick(deps, queue, `finish_${checkoutId}`, checkoutId, c.paidAt);
  return splitJson(deps.prisma, deps.config, await getCheckout(deps.prisma, checkoutId, merchantId));
}

/**
 * PUT /v1/checkouts/{id}/split-plan: replaces the plan until splitting has started. The guard
 * `split_seq = 0` is in the same UPDATE the plan's reservation increments, so a replacement and
 * the start of splitting cannot both win. A PLAN_REJECTED alert about the previous plan is cleared
 * in the same transaction and the payment is kicked again.
 */
export async function replaceSplitPlan(deps: Deps, queue: SplitQueue, merchantId: string, checkoutId: string, receivers: ReceiverInput[]) {
  const c = await getCheckout(deps.prisma, checkoutId, merchantId);
  if (c.profitSharing === 'none')
    throw new AppError('SPLIT_NOT_ALLOWED', 'Profit sharing is not enabled for this checkout: its channel order cannot be split');
  if (c.status === 'expired' || c.status === 'closed') throw new AppError('SPLIT_NOT_ALLOWED', `Checkout is ${c.status}`);
  if (c.profitSharing === 'on_demand' && c.status === 'paid') throw onDemandPaid();
  checkSplit(receivers, { paidFen: c.paidTotalFen ?? c.amountFen, alreadyReservedFen: 0, requestsUsed: 0 }, await limitsOfCheckout(deps, checkoutId));
  const moved = await deps.prisma.$transaction(async (db) => {
    const m = await db.checkout.updateMany({
      // A paid on-demand checkout keeps its mode: the merchant splits it with POST .../splits (the OR
      // also stops a payment that lands between the check above and this update).
      where: {
        id: checkoutId, merchantId, profitSharing: { not: 'none' }, splitSeq: 0, splitFinishedAt: null, status: { in: ['open', 'paid'] },
        OR: [{ profitSharing: 'planned' }, { status: 'open' }],
      },
      data: { splitPlan: receivers as object[], profitSharing: 'planned' },
    });
    // The refusal of the previous plan is resolved by this one (and kickStalled stops skipping the payment).
    if (m.count === 1) {
      await db.splitAlert.deleteMany({ where: { checkoutId, kind: 'PLAN_REJECTED' } });
      await markSplitDue(db, checkoutId, deps.now());
    }
    return m;
  });
  if (moved.count !== 1) {
    const now = await getCheckout(deps.prisma, checkoutId, merchantId);
    if (now.profitSharing === 'on_demand' && now.status === 'paid') throw onDemandPaid();
    throw new AppError('SPLIT_NOT_ALLOWED', 'Splitting has already started for this payment; the plan can no longer be replaced');
  }
  const fresh = await getCheckout(deps.prisma, checkoutId, merchantId);
  if (fresh.status === 'paid') await kick(deps, queue, `plan_${checkoutId}_${Date.now()}`, checkoutId, fresh.paidAt);
  return splitJson(deps.prisma, deps.config, fresh);
}

const onDemandPaid = () =>
  new AppError('SPLIT_MODE_CONFLICT', 'This checkout was paid in on_demand mode: split it with POST /v1/checkouts/{id}/splits; a plan can only be set before payment');

// ---- JSON ---------------------------------------------------------------------------------------

async function loadSplitRecords(prisma: PrismaClient, checkoutId: string) {
  const [batches, unfreeze, mismatches, alerts] = await Promise.all([
    prisma.splitBatch.findMany({
      where: { checkoutId },
      orderBy: [{ split: { seq: 'asc' } }, { seq: 'asc' }],
      include: { receivers: { orderBy: { position: 'asc' } }, split: { select: { seq: true, id: true } } },
    }),
    prisma.splitUnfreeze.findUnique({ where: { checkoutId } }),
    prisma.splitMismatch.findMany({ where: { checkoutId }, orderBy: { firstSeenAt: 'asc' } }),
    prisma.splitAlert.findMany({ where: { checkoutId }, orderBy: { createdAt: 'asc' } }),
  ]);
  return { batches, unfreeze, mismatches, alerts };
}

type Batches = Awaited<ReturnType<typeof loadSplitRecords>>['batches'];
const NO_RECORDS: Awaited<ReturnType<typeof loadSplitRecords>> = { batches: [], unfreeze: null, mismatches: [], alerts: [] };

function batchJson(b: Batches[number]) {
  return {
    out_order_no: b.outOrderNo,
    split_id: b.split.id,
    state: b.state,
    amount: b.amountFen,
    unfreeze_unsplit: b.unfreezeUnsplit,
    order_id: b.orderId,
    receivers: b.receivers.map((r) => ({ type: r.type, account: r.account, amount: r.amountFen, state: r.state, reason: r.failReason })),
    error: b.failCode ? { code: b.failCode, message: b.failMessage } : null,
    attempts: b.attempts,
    last_error: b.lastError,
    sent_at: b.sentAt?.toISOString() ?? null,
    finished_at: b.finishedAt?.toISOString() ?? null,
  };
}

/** The `split` section of GET /v1/checkouts/{id}. */
export async function splitJson(prisma: PrismaClient, config: Config, c: CheckoutWithOrders) {
  // No records to read: never paid and never split (e.g. just created), or never split and without
  // profit sharing (batches, unfreezes, alerts and mismatches all come from split work, which a
  // checkout with mode `none` only gets through a split, counted in split_seq). Saves four reads per
  // checkout.paid event of such a checkout.
  const none = c.splitSeq === 0 && (c.paidAt === null || c.profitSharing === 'none');
  const { batches, unfreeze, mismatches, alerts } = none ? NO_RECORDS : await loadSplitRecords(prisma, c.id);
  // A GET never asks the channel: the budget shown uses the ratio remembered for the paying account.
  const accountId = c.profitSharing === 'none' ? null : (c.channelOrders.find((o) => o.status === 'paid')?.accountId ?? null);
  const stored = accountId === null ? null : await prisma.channelAccount.findUnique({ where: { id: accountId }, select: { maxRatioBp: true } });
  const limits = withAuthorisedRatio(splitLimitsOf(config), stored?.maxRatioBp ?? null);
  const paid = c.paidTotalFen ?? null;
  return {
    status: splitStatus({
      planWaiting: c.profitSharing === 'planned' && c.splitSeq === 0 && c.splitPlan !== null && c.status !== 'expired' && c.status !== 'closed',
      batches,
      unfreezeState: unfreeze?.state ?? null,
    }),
    mode: c.profitSharing,
    plan: c.profitSharing === 'planned' ? c.splitPlan : null,
    budget: {
      // Net of merchant-funded coupons and refunds, never above what the channel said it will still take;
      // against what receivers keep (reserved − returned).
      max_amount: Math.min(splitBudget((paid ?? c.amountFen) - c.merchantFundedFen - c.refundedFen, limits), c.splitCapFen ?? Number.MAX_SAFE_INTEGER),
      reserved_amount: c.splitReservedFen - c.splitReturnedFen,
      requests_used: c.splitRequests,
      max_requests: limits.maxRequests,
    },
    finished: c.splitFinishedAt !== null,
    batches: batches.map(batchJson),
    unfreeze: unfreeze
      ? { out_order_no: unfreeze.outOrderNo, method: unfreeze.method, state: unfreeze.state, amount: unfreeze.amountFen,
          error: unfreeze.failCode ? { code: unfreeze.failCode, message: unfreeze.failMessage } : null, last_error: unfreeze.lastError }
      : null,
    unfrozen_amount: unfreeze?.state === 'succeeded' ? (unfreeze.amountFen ?? 0) : 0,
    mismatches: mismatches.map(mismatchJson),
    alerts: alerts.map((a) => ({ kind: a.kind, message: a.message, created_at: a.createdAt.toISOString() })),
  };
}

type MismatchRow = Awaited<ReturnType<typeof loadSplitRecords>>['mismatches'][number];

function mismatchJson(m: MismatchRow) {
  const { detail, resolvedAt } = mismatchResolution(m.detail);
  return {
    kind: m.kind, ref: m.ref, message: m.message, detail, occurrences: m.occurrences,
    first_seen_at: m.firstSeenAt.toISOString(), last_seen_at: m.lastSeenAt.toISOString(),
    // Set once a later reconciliation no longer sees it; null while it is open.
    resolved_at: resolvedAt,
  };
}

/** data.object of reconciliation.mismatch: the item of `split.mismatches`, with its id and checkout. */
export async function mismatchObjectJson(prisma: PrismaClient, id: string) {
  const m = await prisma.splitMismatch.findUniqueOrThrow({ where: { id } });
  return { id: m.id, object: 'mismatch' as const, checkout_id: m.checkoutId, ...mismatchJson(m) };
}

/** The answer of POST .../splits: one split and its batches. */
export async function splitObjectJson(prisma: PrismaClient, splitId: string) {
  const s = await prisma.split.findUniqueOrThrow({
    where: { id: splitId },
    include: { batches: { orderBy: { seq: 'asc' }, include: { receivers: { orderBy: { position: 'asc' } }, split: { select: { seq: true, id: true } } } } },
  });
  return {
    id: s.id,
    object: 'split' as const,
    checkout_id: s.checkoutId,
    seq: s.seq,
    kind: s.kind,
    amount: s.totalFen,
    status: splitStatus({ planWaiting: false, batches: s.batches }),
    batches: s.batches.map(batchJson),
    created_at: s.createdAt.toISOString(),
  };
}
