import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import { isUniqueViolation, Prisma, type PrismaClient } from '../../lib/prisma';
import type { ReceiverInput } from '../checkout/checkout.schemas';
import {
  batchOutOrderNo,
  budgetExceeded,
  planBatches,
  ratioBasisPoints,
  requestLimit,
  splitBudget,
  type SplitLimits,
} from './split.rules';
import { markSplitDue } from './split.due';

type Tx = Prisma.TransactionClient;

export interface ReservedSplit {
  splitId: string;
  seq: number;
  batches: Array<{ id: string; outOrderNo: string; amountFen: number; receivers: number }>;
  /** True when the Idempotency-Key already had a split: that one is returned, nothing new reserved. */
  existing: boolean;
}

/**
 * THE money invariant (issue 3 §4), enforced by PostgreSQL: one conditional UPDATE reserves the
 * split's amount and channel requests only if, on the locked row,
 *   status = paid, profit sharing in the expected mode, splitting not finished,
 *   reserved − returned + total ≤ floor((paid_total − merchant-funded coupons − refunded) × ratio),
 *   reserved + total ≤ split_cap_fen (what the channel said it will still take, once known),
 *   and requests + batches ≤ cap
 * (refunded / returned: the refund budget, src/modules/refunds/refund.budget.ts, kept by the same row lock).
 * Concurrent callers serialise on the row lock and PostgreSQL re-checks the WHERE clause on the
 * row version the winner committed, so twenty concurrent splits can never together exceed the
 * budget. The split, its batches and receivers are written in the same transaction: a refused
 * reservation writes nothing. Reserved money is released only when the channel CLOSES a receiver
 * or refuses a whole request (releaseClosed), never on a guess.
 *
 * Idempotency-Key (on-demand): stored on the split in the same transaction, so the same key never
 * reserves twice even when the API lost its stored answer. It is looked up BEFORE the budget UPDATE
 * (a retry after the budget was used up gets its split, not 422); a concurrent duplicate that loses
 * on the unique index (checkout_id, idempotency_key) rolls back and returns the winner's split.
 */
export async function reserveSplit(
  prisma: PrismaClient,
  args: {
    checkoutId: string;
    kind: 'planned' | 'on_demand';
    receivers: ReceiverInput[];
    limits: SplitLimits;
    now: Date;
    /** Planned: the last batch carries unfreeze_unsplit and splitting ends with it (see split.worker.ts). */
    unfreezeWithLastBatch: boolean;
    /**
     * Planned: the stored plan these receivers were read from. The reservation only matches while the
     * row still holds it, so a plan replaced (PUT split-plan) after it was read is never split.
     */
    expectedPlan?: unknown;
    /** The merchant's Idempotency-Key (on-demand splits). */
    idempotencyKey?: string | null;
  },
): Promise<ReservedSplit> {
  const key = args.idempotencyKey ?? null;
  try {
    return await reserveSplitTx(prisma, args, key);
  } catch (err) {
    if (key === null || !isUniqueViolation(err)) throw err;
    // Lost the race on (checkout_id, idempotency_key): our transaction rolled back; the winner's split is the answer.
    const existing = await findByKey(prisma, args.checkoutId, key);
    if (!existing) throw err;
    return existing;
  }
}

async function reserveSplitTx(
  prisma: PrismaClient,
  args: Parameters<typeof reserveSplit>[1],
  key: string | null,
): Promise<ReservedSplit> {
  const { checkoutId, kind, receivers, limits, now } = args;
  const totalFen = receivers.reduce((s, r) => s + r.amount, 0);
  const chunks = planBatches(receivers, limits.receiverLimit);
  const bp = ratioBasisPoints(limits.maxRatio);
  const finish = args.unfreezeWithLastBatch;

  // Concurrent reservations queue on the row lock: on a busy machine the default 2 s to get a
  // connection is not enough (P2028 would turn a budget refusal into a 500).
  return prisma.$transaction(async (db) => {
    if (key !== null) {
      const existing = await findByKey(db, checkoutId, key);
      if (existing) return existing;
    }
    const rows = await db.$queryRaw<Array<{ split_seq: number }>>`
      UPDATE checkouts
         SET split_reserved_fen = split_reserved_fen + ${totalFen},
             split_requests     = split_requests + ${chunks.length},
             split_seq          = split_seq + 1,
             split_finished_at  = CASE WHEN ${finish} THEN ${now}::timestamp ELSE split_finished_at END,
             updated_at         = ${now}::timestamp
       WHERE id = ${checkoutId}
         AND status = 'paid'
         AND profit_sharing = ${kind}::"ProfitSharingMode"
         AND split_finished_at IS NULL
         AND paid_total_fen IS NOT NULL
         AND (${kind} <> 'planned' OR split_seq = 0)
         AND split_reserved_fen - split_returned_fen + ${totalFen} <= ((paid_total_fen - merchant_funded_fen - refunded_fen)::bigint * ${bp}) / 10000
         AND (split_cap_fen IS NULL OR split_reserved_fen + ${totalFen} <= split_cap_fen)
         AND split_requests + ${chunks.length} <= ${limits.maxRequests}
         ${args.expectedPlan === undefined ? Prisma.empty : Prisma.sql`AND split_plan = ${JSON.stringify(args.expectedPlan)}::jsonb`}
      RETURNING split_seq`;
    if (rows.length !== 1) {
      // A concurrent duplicate may have committed while this UPDATE waited on the row lock.
      const existing = key !== null ? await findByKey(db, checkoutId, key) : null;
      if (existing) return existing;
      throw await explainRefusal(db, checkoutId, kind, totalFen, chunks.length, limits);
    }
    const seq = rows[0]!.split_seq;

    const splitId = newId('sp');
    await db.split.create({ data: { id: splitId, checkoutId, seq, kind, totalFen, idempotencyKey: key, createdAt: now } });
    const batches: ReservedSplit['batches'] = [];
    const receiverRows: Prisma.SplitReceiverCreateManyInput[] = [];
    chunks.forEach((chunk, i) => {
      const batchId = newId('sb');
      const outOrderNo = batchOutOrderNo(checkoutId, seq, i + 1);
      const amountFen = chunk.reduce((s, r) => s + r.amount, 0);
      batches.push({ id: batchId, outOrderNo, amountFen, receivers: chunk.length });
      chunk.forEach((r, position) =>
        receiverRows.push({
          id: newId('sr'),
          batchId,
          checkoutId,
          position,
          type: r.type,
          account: r.account,
          name: r.name ?? null,
          amountFen: r.amount,
          description: r.description,
          relationType: r.relation_type,
          customRelation: r.custom_relation ?? null,
        }),
      );
    });
    await db.splitBatch.createMany({
      data: batches.map((b, i) => ({
        id: b.id,
        splitId,
        checkoutId,
        seq: i + 1,
        outOrderNo: b.outOrderNo,
        amountFen: b.amountFen,
        unfreezeUnsplit: finish && i === batches.length - 1,
        createdAt: now,
      })),
    });
    await db.splitReceiver.createMany({ data: receiverRows });
    // On-demand work is due now (split.due.ts); a planned split is reserved by a running driver, which settles its own due time.
    if (kind === 'on_demand') await markSplitDue(db, checkoutId, now);
    if (finish) {
      await db.splitUnfreeze.create({
        data: { id: newId('su'), checkoutId, method: 'last_batch', outOrderNo: batches[batches.length - 1]!.outOrderNo, createdAt: now },
      });
    }
    return { splitId, seq, batches, existing: false };
  }, { maxWait: 10_000, timeout: 20_000 });
}

/** The split already reserved under this Idempotency-Key, if any. */
async function findByKey(db: Tx | PrismaClient, checkoutId: string, key: string): Promise<ReservedSplit | null> {
  const s = await db.split.findUnique({
    where: { checkoutId_idempotencyKey: { checkoutId, idempotencyKey: key } },
    include: { batches: { orderBy: { seq: 'asc' }, include: { _count: { select: { receivers: true } } } } },
  });
  if (!s) return null;
  return {
    splitId: s.id,
    seq: s.seq,
    batches: s.batches.map((b) => ({ id: b.id, outOrderNo: b.outOrderNo, amountFen: b.amountFen, receivers: b._count.receivers })),
    existing: true,
  };
}

/** Why the reservation matched no row: read after the fact, for the message only (the UPDATE decided). */
async function explainRefusal(
  db: Tx,
  checkoutId: string,
  kind: 'planned' | 'on_demand',
  totalFen: number,
  batches: number,
  limits: SplitLimits,
): Promise<AppError> {
  const c = await db.checkout.findUnique({ where: { id: checkoutId } });
  if (!c) return new AppError('NOT_FOUND', `No checkout ${checkoutId}`);
  if (c.profitSharing === 'none')
    return new AppError('SPLIT_NOT_ALLOWED', 'Profit sharing is not enabled for this checkout (create it with profit_sharing)');
  if (c.profitSharing !== kind)
    return new AppError(
      'SPLIT_NOT_ALLOWED',
      c.profitSharing === 'planned'
        ? 'This checkout splits by its plan (profit_sharing.mode = planned); on-demand splits need mode on_demand'
        : 'This checkout splits on demand (profit_sharing.mode = on_demand)',
    );
  if (c.status !== 'paid' || c.paidTotalFen === null)
    return new AppError('SPLIT_NOT_ALLOWED', `Checkout is ${c.status}; only a paid checkout can be split`);
  if (c.splitFinishedAt || (kind === 'planned' && c.splitSeq > 0))
    return new AppError('SPLIT_NOT_ALLOWED', 'Splitting has finished for this payment (the remainder is being or was unfrozen)');
  const base = c.paidTotalFen - c.merchantFundedFen - c.refundedFen;
  const kept = c.splitReservedFen - c.splitReturnedFen;
  const room = Math.min(splitBudget(base, limits) - kept, c.splitCapFen === null ? Number.MAX_SAFE_INTEGER : c.splitCapFen - c.splitReservedFen);
  if (totalFen > room) return budgetExceeded(totalFen, Math.max(0, room), limits, base);
  if (c.splitRequests + batches > limits.maxRequests)
    return requestLimit(batches, Math.max(0, limits.maxRequests - c.splitRequests), limits.maxRequests);
  return new AppError('CONFLICT', 'The checkout changed while the split was being reserved; retry');
}

/**
 * Receivers the channel CLOSED (or whose request it refused): PENDING -> CLOSED by compare-and-set,
 * and exactly their amounts released from the budget, in the caller's transaction.
 * `releaseRequest`: the request was never accepted, so it does not count toward the cap (FACTS §5).
 */
export async function closeReceivers(
  db: Tx,
  args: { checkoutId: string; closed: Array<{ id: string; failReason: string; detailId?: string | null }>; now: Date; releaseRequest?: boolean },
): Promise<number> {
  let released = 0;
  for (const r of args.closed) {
    const rows = await db.$queryRaw<Array<{ amount_fen: number }>>`
      UPDATE split_receivers
         SET state = 'CLOSED', fail_reason = ${r.failReason}, detail_id = COALESCE(${r.detailId ?? null}, detail_id),
             finished_at = ${args.now}::timestamp, updated_at = ${args.now}::timestamp
       WHERE id = ${r.id} AND state = 'PENDING'
      RETURNING amount_fen`;
    if (rows.length === 1) released += rows[0]!.amount_fen;
  }
  if (released > 0 || args.releaseRequest) {
    await db.$executeRaw`
      UPDATE checkouts
         SET split_reserved_fen = split_reserved_fen - ${released},
             split_requests = split_requests - ${args.releaseRequest ? 1 : 0},
             updated_at = ${args.now}::timestamp
       WHERE id = ${args.checkoutId}`;
  }
  return released;
}
