import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import { isUniqueViolation, Prisma, type PrismaClient } from '../../lib/prisma';
import { closeReceivers } from '../splits/split.budget';
import { unfreezeOutOrderNo } from '../splits/split.rules';
import { explicitReturns, outReturnNo, proportionalReturns, type Holding, type PlannedReturn } from './refund.rules';
import type { SplitReturnInput } from './refund.schemas';

type Tx = Prisma.TransactionClient;

export interface ReservedRefund {
  refundId: string;
  /** True when the Idempotency-Key already had a refund: that one is returned, nothing new reserved. */
  existing: boolean;
}

/**
 * THE money invariant, extended to refunds. With P paid, R refunded (held by refunds not failed or
 * closed), S split money reserved for receivers and T of it returned (return orders not failed):
 *     R ≤ P    and    R + (S − T) ≤ P            (refunds + what receivers keep ≤ paid)
 * and the split reservation (split.budget.ts) checks  (S − T) + n ≤ (P − R) × ratio  on the same row.
 * One conditional UPDATE of the checkout row decides; the row is locked first (FOR UPDATE) so the
 * split batches read for the returns and the cancellations below belong to the same decision, and
 * twenty concurrent refunds serialise on it. A refused reservation rolls everything back.
 *
 * Frozen funds first: a refund that would not fit because split money is still only PROMISED (batches
 * not yet sent to the channel) cancels those batches, newest first and whole, only as many as it needs;
 * their receivers end CLOSED with reason REFUNDED and their money is released. A batch is never shrunk:
 * its amounts are part of its deterministic out_order_no request. A batch already sent is never touched
 * (the split driver marks sent_at by compare-and-set before its first request).
 */
export async function reserveRefund(
  prisma: PrismaClient,
  args: {
    checkoutId: string;
    merchantId: string;
    amountFen: number;
    reason: string | null;
    outRefundNo: string | null;
    splitReturn: SplitReturnInput;
    idempotencyKey: string;
    now: Date;
  },
): Promise<ReservedRefund> {
  try {
    // Concurrent refunds queue on the row lock: give them time to get a connection and the lock.
    return await prisma.$transaction((db) => reserveTx(db, args), { maxWait: 10_000, timeout: 20_000 });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // Lost the race on (checkout_id, idempotency_key): the winner's refund is the answer.
    const existing = await prisma.refund.findUnique({ where: { checkoutId_idempotencyKey: { checkoutId: args.checkoutId, idempotencyKey: args.idempotencyKey } } });
    if (existing) return { refundId: existing.id, existing: true };
    if (args.outRefundNo !== null) throw new AppError('CONFLICT', `out_refund_no ${args.outRefundNo} is already used by another refund`, { field: 'out_refund_no' });
    throw err;
  }
}

async function reserveTx(db: Tx, args: Parameters<typeof reserveRefund>[1]): Promise<ReservedRefund> {
  const { checkoutId, amountFen: n, now } = args;
  const rows = await db.$queryRaw<Array<{ status: string; paid_total_fen: number | null; refunded_fen: number; split_reserved_fen: number; split_returned_fen: number }>>`
    SELECT status, paid_total_fen, refunded_fen, split_reserved_fen, split_returned_fen FROM checkouts WHERE id = ${checkoutId} FOR UPDATE`;
  // Looked up under the row lock: a concurrent duplicate that held it has committed its refund by now.
  // Before the lock, this request would be judged on the budget its own twin just used (a full refund
  // submitted twice: "more than refundable" for a refund that was made).
  const prior = await db.refund.findUnique({ where: { checkoutId_idempotencyKey: { checkoutId, idempotencyKey: args.idempotencyKey } } });
  if (prior) return { refundId: prior.id, existing: true };
  const c = rows[0];
  if (!c) throw new AppError('NOT_FOUND', `No checkout ${checkoutId}`);
  if (c.status !== 'paid' || c.paid_total_fen === null) throw new AppError('REFUND_NOT_ALLOWED', `Checkout is ${c.status}; only a paid checkout can be refunded`);
  const paid = c.paid_total_fen;

  const refundId = newId('re');
  const plan = planReturns(args.splitReturn, n, paid, await holdingsOf(db, checkoutId));
  const t = plan.reduce((s, r) => s + r.amountFen, 0);

  // Money only promised to receivers gives way to the refund (see above).
  let need = c.refunded_fen + n + c.split_reserved_fen - c.split_returned_fen - t - paid;
  if (need > 0 && c.refunded_fen + n <= paid) need -= await cancelUnsentBatches(db, checkoutId, need, now);

  const won = await db.$queryRaw<Array<{ refund_seq: number }>>`
    UPDATE checkouts
       SET refunded_fen       = refunded_fen + ${n},
           split_returned_fen = split_returned_fen + ${t},
           refund_seq         = refund_seq + 1,
           updated_at         = ${now}::timestamp
     WHERE id = ${checkoutId}
       AND status = 'paid'
       AND paid_total_fen IS NOT NULL
       AND paid_at > ${now}::timestamp - interval '1 year'
       AND refunded_fen + ${n} <= paid_total_fen
       AND refunded_fen + ${n} + split_reserved_fen - split_returned_fen - ${t} <= paid_total_fen
    RETURNING refund_seq`;
  if (won.length !== 1) throw await explainRefusal(db, checkoutId, n, t, now);

  await db.refund.create({
    data: {
      id: refundId,
      checkoutId,
      merchantId: args.merchantId,
      seq: won[0]!.refund_seq,
      amountFen: n,
      reason: args.reason,
      outRefundNo: args.outRefundNo ?? refundId,
      channelRefundNo: refundId,
      splitReturn: Array.isArray(args.splitReturn) ? 'explicit' : args.splitReturn,
      idempotencyKey: args.idempotencyKey,
      nextAttemptAt: now,
      createdAt: now,
    },
  });
  if (plan.length > 0)
    await db.refundReturn.createMany({
      data: plan.map((r, position) => ({
        id: newId('rr'),
        refundId,
        checkoutId,
        position,
        account: r.account,
        outOrderNo: r.outOrderNo,
        amountFen: r.amountFen,
        outReturnNo: outReturnNo(refundId, position, 0),
        createdAt: now,
      })),
    });
  return { refundId, existing: false };
}

function planReturns(mode: SplitReturnInput, refundFen: number, paidFen: number, holdings: Holding[]): PlannedReturn[] {
  if (mode === 'none') return [];
  if (mode === 'proportional') return proportionalReturns(refundFen, paidFen, holdings);
  return explicitReturns(mode, refundFen, holdings);
}

/** What each receiver still holds per split batch: SUCCESS receipts minus returns not failed/cancelled. */
async function holdingsOf(db: Tx, checkoutId: string): Promise<Holding[]> {
  const received = await db.splitReceiver.findMany({
    where: { checkoutId, state: 'SUCCESS' },
    select: { type: true, account: true, amountFen: true, batch: { select: { outOrderNo: true } } },
    orderBy: [{ batch: { createdAt: 'asc' } }, { batch: { seq: 'asc' } }, { position: 'asc' }],
  });
  const returned = await db.refundReturn.groupBy({
    by: ['account', 'outOrderNo'],
    where: { checkoutId, state: { in: ['pending', 'succeeded'] } },
    _sum: { amountFen: true },
  });
  const back = new Map(returned.map((r) => [`${r.account}|${r.outOrderNo}`, r._sum.amountFen ?? 0]));
  return received.map((r) => ({
    account: r.account,
    type: r.type,
    outOrderNo: r.batch.outOrderNo,
    keptFen: r.amountFen - (back.get(`${r.account}|${r.batch.outOrderNo}`) ?? 0),
  }));
}

/** Cancels never-sent batches, newest first, until `need` fen are released; returns the fen released. */
async function cancelUnsentBatches(db: Tx, checkoutId: string, need: number, now: Date): Promise<number> {
  const candidates = await db.splitBatch.findMany({
    where: { checkoutId, state: 'pending', sentAt: null },
    orderBy: [{ createdAt: 'desc' }, { seq: 'desc' }],
    include: { receivers: { select: { id: true } } },
  });
  let released = 0;
  for (const b of candidates) {
    if (released >= need) break;
    const moved = await db.splitBatch.updateMany({
      where: { id: b.id, state: 'pending', sentAt: null },
      data: { state: 'failed', failCode: 'REFUNDED', failMessage: 'cancelled before it was sent: the payment was refunded', finishedAt: now },
    });
    if (moved.count !== 1) continue;
    released += await closeReceivers(db, { checkoutId, closed: b.receivers.map((r) => ({ id: r.id, failReason: 'REFUNDED' })), now, releaseRequest: true });
    if (b.unfreezeUnsplit) {
      // The batch that was to carry unfreeze_unsplit is gone: the remainder needs an explicit unfreeze.
      await db.splitUnfreeze.updateMany({ where: { checkoutId, method: 'last_batch', state: 'pending' }, data: { method: 'explicit', outOrderNo: unfreezeOutOrderNo(checkoutId) } });
    }
  }
  return released;
}

async function explainRefusal(db: Tx, checkoutId: string, n: number, t: number, now: Date): Promise<AppError> {
  const c = await db.checkout.findUniqueOrThrow({ where: { id: checkoutId } });
  const paid = c.paidTotalFen ?? 0;
  if (!c.paidAt || c.paidAt.getTime() <= now.getTime() - 365 * 86_400_000)
    return new AppError('REFUND_NOT_ALLOWED', 'WeChat Pay refunds a payment only within one year of payment');
  if (c.refundedFen + n > paid)
    return new AppError('REFUND_AMOUNT_EXCEEDED', `${n} fen is more than the ${paid - c.refundedFen} fen left to refund`, { field: 'amount' });
  const kept = c.splitReservedFen - c.splitReturnedFen - t;
  return new AppError(
    'REFUND_AMOUNT_EXCEEDED',
    `${kept} fen of this payment is with (or sent to) receivers: at most ${Math.max(0, paid - c.refundedFen - kept)} fen can be refunded without returns; use split_return`,
    { field: 'amount' },
  );
}
