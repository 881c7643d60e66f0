/**
 * Retrying a failed split batch (a console action, issue 12 §1).
 *
 * What a retry of a terminal failure means. The channel either refused the whole request (NOT_ENOUGH,
 * NO_AUTH, ...: pending -> failed) or took it and CLOSED some receivers (ACCOUNT_ABNORMAL, ...). Sending
 * the same out_order_no again only gets the same answer back: WeChat treats the same number as the
 * same request (FACTS §5). So a retry is a NEW on-demand split of the receivers the channel closed,
 * same amounts, under the next split seq's out_order_no, reserved through the one budget UPDATE
 * (split.budget.ts): it can never split more than the ratio, the channel's cap (split_cap_fen, set
 * from NOT_ENOUGH) or the 50 requests allow; the closed receivers' money was released when they closed.
 *  - Never paid twice: receivers that SUCCEEDED are not in it.
 *  - Left out: RECEIVER_HIGH_RISK (WeChat: do not retry) and REFUNDED (a refund took that money back).
 *  - Only while splitting is open: an on_demand payment not finished. A planned payment releases its
 *    remainder with its last batch (unfreeze_unsplit) and WeChat takes no split after an unfreeze.
 *  - Once per batch: the split's idempotency key is derived from the batch, so a second tab or a repeat
 *    finds the same split. If the retry fails as well, that new batch is the one to retry.
 * It makes sense once the cause is fixed (receiver re-added, account repaired, RECEIVER_RECEIPT_LIMIT:
 * next month); the confirm page shows each receiver's reason.
 */
import { AppError } from '../../lib/errors';
import type { PrismaClient } from '../../lib/prisma';
import type { ReceiverInput } from '../checkout/checkout.schemas';
import type { SplitBatch, SplitReceiver } from '../../generated/prisma/client';
import { createOnDemandSplit } from './split.service';
import type { SplitQueue } from './split.queue';

type Deps = Parameters<typeof createOnDemandSplit>[0];

const NOT_RETRIED = new Set(['RECEIVER_HIGH_RISK', 'REFUNDED']);

/** The split key of a batch's retry (Split.idempotencyKey, unique per checkout). */
export const retryKeyOf = (outOrderNo: string) => `console-retry:${outOrderNo}`;

export type BatchWithReceivers = SplitBatch & { receivers: SplitReceiver[] };

/** The receivers a retry would send again, and those it leaves out (with why). */
export function retryPlan(batch: BatchWithReceivers): { receivers: SplitReceiver[]; skipped: SplitReceiver[] } {
  const closed = batch.receivers.filter((r) => r.state === 'CLOSED');
  return { receivers: closed.filter((r) => !NOT_RETRIED.has(r.failReason ?? '')), skipped: closed.filter((r) => NOT_RETRIED.has(r.failReason ?? '')) };
}

/** Why this batch cannot be retried now, or null. Read for the page; the budget UPDATE decides. */
export async function retryRefusal(prisma: PrismaClient, batch: BatchWithReceivers): Promise<string | null> {
  if (batch.state !== 'failed' && batch.state !== 'partially_failed') return `批次状态为 ${batch.state}，只有失败的批次可以重试 · The batch is ${batch.state}; only a failed batch can be retried`;
  const c = await prisma.checkout.findUniqueOrThrow({ where: { id: batch.checkoutId }, select: { profitSharing: true, splitFinishedAt: true } });
  if (c.profitSharing !== 'on_demand')
    return '按计划分账的订单最后一批已解冻剩余资金，微信不再接受分账 · A planned split released the remainder with its last batch; WeChat takes no further split';
  if (c.splitFinishedAt) return '本订单已完结分账（剩余资金已解冻或正在解冻） · Splitting was finished for this payment (the remainder is being or was unfrozen)';
  const done = await prisma.split.findUnique({
    where: { checkoutId_idempotencyKey: { checkoutId: batch.checkoutId, idempotencyKey: retryKeyOf(batch.outOrderNo) } },
    include: { batches: { select: { outOrderNo: true } } },
  });
  if (done) return `此批次已重试，新批次 ${done.batches.map((b) => b.outOrderNo).join(', ')} · This batch was already retried as ${done.batches.map((b) => b.outOrderNo).join(', ')}`;
  if (retryPlan(batch).receivers.length === 0) return '没有可重试的接收方 · No receiver to retry (high-risk or refunded receivers are never retried)';
  return null;
}

/** The retry itself: one on-demand split of the batch's closed receivers, through the split service. */
export async function retryFailedBatch(deps: Deps, queue: SplitQueue, merchantId: string, batch: BatchWithReceivers) {
  const refusal = await retryRefusal(deps.prisma, batch);
  // A repeat of the same retry (same key) is answered by the service with the split it made.
  const again = await deps.prisma.split.findUnique({ where: { checkoutId_idempotencyKey: { checkoutId: batch.checkoutId, idempotencyKey: retryKeyOf(batch.outOrderNo) } } });
  if (refusal && !again) throw new AppError('SPLIT_NOT_ALLOWED', refusal);
  const receivers: ReceiverInput[] = retryPlan(batch).receivers.map((r) => ({
    type: r.type as ReceiverInput['type'],
    account: r.account,
    ...(r.name !== null ? { name: r.name } : {}),
    amount: r.amountFen,
    description: r.description,
    relation_type: r.relationType as ReceiverInput['relation_type'],
    ...(r.customRelation !== null ? { custom_relation: r.customRelation } : {}),
  }));
  return createOnDemandSplit(deps, queue, merchantId, batch.checkoutId, receivers, retryKeyOf(batch.outOrderNo));
}
