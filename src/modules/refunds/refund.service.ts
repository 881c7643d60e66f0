import type { AppDeps } from '../../app.types';
import type { Refund, RefundReturn } from '../../generated/prisma/client';
import { AppError } from '../../lib/errors';
import type { PrismaClient } from '../../lib/prisma';
import { getCheckout, type CheckoutWithOrders } from '../checkout/checkout.service';
import { reserveRefund } from './refund.budget';
import type { RefundDriverDeps } from './refund.driver';
import { outReturnNo } from './refund.rules';
import { kickRefund } from './refund.runner';
import type { CreateRefundInput } from './refund.schemas';
import { returnSourcesOf } from './refund.states';

type Deps = Pick<AppDeps, 'prisma' | 'config' | 'logger' | 'now' | 'channel'>;
const driverDeps = (deps: Deps): RefundDriverDeps => deps;

/** The refund object of the API (and of refund.* webhook events). */
export function refundJson(r: Refund & { returns: RefundReturn[] }) {
  return {
    id: r.id,
    object: 'refund' as const,
    checkout_id: r.checkoutId,
    amount: r.amountFen,
    reason: r.reason,
    out_refund_no: r.outRefundNo,
    status: r.status,
    split_return: r.splitReturn,
    split_returns: r.returns.map((x) => ({
      account: x.account,
      amount: x.amountFen,
      out_return_no: x.outReturnNo,
      out_order_no: x.outOrderNo,
      state: x.state,
      ...(x.failReason !== null ? { reason: x.failReason } : {}),
    })),
    ...(r.failureReason !== null ? { failure_code: r.failureCode, failure_reason: r.failureReason } : {}),
    created_at: r.createdAt.toISOString(),
    ...(r.succeededAt !== null ? { succeeded_at: r.succeededAt.toISOString() } : {}),
  };
}

const withReturns = { returns: { orderBy: { position: 'asc' as const } } };

export async function loadRefundJson(prisma: PrismaClient, id: string, merchantId?: string) {
  const r = await prisma.refund.findUnique({ where: { id }, include: withReturns });
  if (!r || (merchantId !== undefined && r.merchantId !== merchantId)) throw new AppError('NOT_FOUND', `No refund ${id}`);
  return refundJson(r);
}

/**
 * POST /v1/checkouts/{id}/refunds: the database decides (refund.budget.ts), then the driver runs in the
 * background. The Idempotency-Key is stored on the refund: the same key never refunds twice.
 */
export async function createRefund(deps: Deps, merchantId: string, checkoutId: string, input: CreateRefundInput, idempotencyKey: string) {
  const c = await getCheckout(deps.prisma, checkoutId, merchantId);
  if (c.status !== 'paid') throw new AppError('REFUND_NOT_ALLOWED', `Checkout is ${c.status}; only a paid checkout can be refunded`);
  const r = await reserveRefund(deps.prisma, {
    checkoutId,
    merchantId,
    amountFen: input.amount,
    reason: input.reason ?? null,
    outRefundNo: input.out_refund_no ?? null,
    splitReturn: input.split_return ?? 'none',
    idempotencyKey,
    now: deps.now(),
  });
  kickRefund(driverDeps(deps), r.refundId);
  return loadRefundJson(deps.prisma, r.refundId);
}

/**
 * POST /v1/refunds/{id}/retry: a refund left `returning` because a return failed after others had
 * succeeded. Each failed return is sent again under its next out_return_no (WeChat keeps a FAILED
 * number failed), its money is reserved again, and the driver carries on to the refund.
 */
export async function retryRefund(deps: Deps, merchantId: string, id: string) {
  const r = await deps.prisma.refund.findUnique({ where: { id }, include: withReturns });
  if (!r || r.merchantId !== merchantId) throw new AppError('NOT_FOUND', `No refund ${id}`);
  const failed = r.returns.filter((x) => x.state === 'failed');
  if (r.status !== 'returning' || failed.length === 0) throw new AppError('REFUND_NOT_ALLOWED', `Refund is ${r.status} with nothing to retry`);
  await rearm(deps, r, failed);
  return loadRefundJson(deps.prisma, id);
}

/**
 * The same POST again (same Idempotency-Key) also finishes a refund left `returning`: the stored answer
 * is replayed as usual, and the refund carries on behind it.
 */
export async function retryByKey(deps: Deps, merchantId: string, checkoutId: string, idempotencyKey: string): Promise<void> {
  const r = await deps.prisma.refund.findUnique({ where: { checkoutId_idempotencyKey: { checkoutId, idempotencyKey } }, include: withReturns });
  if (!r || r.merchantId !== merchantId || r.status !== 'returning') return;
  const failed = r.returns.filter((x) => x.state === 'failed');
  if (failed.length > 0) await rearm(deps, r, failed);
}

async function rearm(deps: Deps, r: Refund, failed: RefundReturn[]): Promise<void> {
  const id = r.id;
  const now = deps.now();
  await deps.prisma.$transaction(async (db) => {
    for (const x of failed) {
      const moved = await db.refundReturn.updateMany({
        where: { id: x.id, state: { in: returnSourcesOf('pending') } },
        data: { state: 'pending', attempt: x.attempt + 1, outReturnNo: outReturnNo(r.id, x.position, x.attempt + 1), failReason: null, finishedAt: null },
      });
      // Taking money back from a receiver only lowers what receivers keep: no budget check is needed.
      if (moved.count === 1) await db.$executeRaw`UPDATE checkouts SET split_returned_fen = split_returned_fen + ${x.amountFen} WHERE id = ${r.checkoutId}`;
    }
    await db.refund.update({ where: { id }, data: { failureCode: null, failureReason: null, nextAttemptAt: now } });
  });
  kickRefund(driverDeps(deps), id);
}

/** `refunded_amount` (succeeded), `refundable_amount` and `refunds[]` of GET /v1/checkouts/{id}. */
export async function checkoutRefundsJson(prisma: PrismaClient, c: CheckoutWithOrders) {
  // refund_seq counts refunds ever created: none yet, no query (the create path stays one statement).
  const rows = c.refundSeq === 0 ? [] : await prisma.refund.findMany({ where: { checkoutId: c.id }, orderBy: { seq: 'asc' }, include: withReturns });
  return {
    refunded_amount: rows.filter((r) => r.status === 'succeeded').reduce((s, r) => s + r.amountFen, 0),
    refundable_amount: c.status === 'paid' && c.paidTotalFen !== null ? c.paidTotalFen - c.refundedFen : 0,
    refunds: rows.map(refundJson),
  };
}
