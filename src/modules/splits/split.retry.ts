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
 *  - Only within the split window (PROFIT_SHARING_WINDOW_DAYS after payment): after it WeChat has
 *    unfrozen the remainder to the merchant by itself and takes no split.
 *  - Only when the channel itself says the receivers are CLOSED: the batch is queried first. A batch
 *    recorded as refused whose answer was in fact lost (accepted there), or a receiver still PENDING
 *    there (a late success on its way), would otherwise be paid twice; CLOSED is final at WeChat.
 * It makes sense once the cause is fixed (receiver re-added, account repaired, RECEIVER_RECEIPT_LIMIT:
 * next month); the confirm page shows each receiver's reason.
 */
import type { Config } from '../../config/config';
import { AppError, ChannelError } from '../../lib/errors';
import type { PrismaClient } from '../../lib/prisma';
import { channelsOf } from '../merchants/channel-resolver';
import type { ReceiverInput } from '../checkout/checkout.schemas';
import type { SplitBatch, SplitReceiver } from '../../generated/prisma/client';
import { createOnDemandSplit } from './split.service';
import type { SplitQueue } from './split.queue';

type Deps = Parameters<typeof createOnDemandSplit>[0] & Parameters<typeof channelsOf>[0];
/** What the refusal reads: the rows, and the clock and window for the split window. */
type ReadDeps = { prisma: PrismaClient; config: Pick<Config, 'PROFIT_SHARING_WINDOW_DAYS'>; now: () => Date };

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
export async function retryRefusal(deps: ReadDeps, batch: BatchWithReceivers): Promise<string | null> {
  const { prisma } = deps;
  if (batch.state !== 'failed' && batch.state !== 'partially_failed') return `批次状态为 ${batch.state}，只有失败的批次可以重试 · The batch is ${batch.state}; only a failed batch can be retried`;
  const c = await prisma.checkout.findUniqueOrThrow({ where: { id: batch.checkoutId }, select: { profitSharing: true, splitFinishedAt: true, paidAt: true } });
  if (c.profitSharing !== 'on_demand')
    return '按计划分账的订单最后一批已解冻剩余资金，微信不再接受分账 · A planned split released the remainder with its last batch; WeChat takes no further split';
  if (c.splitFinishedAt) return '本订单已完结分账（剩余资金已解冻或正在解冻） · Splitting was finished for this payment (the remainder is being or was unfrozen)';
  const windowEnds = c.paidAt ? c.paidAt.getTime() + deps.config.PROFIT_SHARING_WINDOW_DAYS * 86_400_000 : null;
  if (windowEnds !== null && deps.now().getTime() >= windowEnds)
    return `分账期限已过（支付后 ${deps.config.PROFIT_SHARING_WINDOW_DAYS} 天，${new Date(windowEnds).toISOString()}），微信已将剩余资金解冻给商户 · The split window ended ${new Date(windowEnds).toISOString()} (${deps.config.PROFIT_SHARING_WINDOW_DAYS} days after payment): WeChat has unfrozen the remainder to the merchant`;
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
  // A repeat of the same retry (same key) is answered by the service with the split it made: no
  // refusal to read and nothing to ask the channel.
  const again = await deps.prisma.split.findUnique({ where: { checkoutId_idempotencyKey: { checkoutId: batch.checkoutId, idempotencyKey: retryKeyOf(batch.outOrderNo) } } });
  if (!again) {
    const refusal = await retryRefusal(deps, batch);
    if (refusal) throw new AppError('SPLIT_NOT_ALLOWED', refusal);
    await assertClosedAtChannel(deps, batch);
  }
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

/**
 * The channel's word that every receiver to retry is CLOSED there (final at WeChat). Our `failed` may
 * rest on an answer that was lost or replaced (the channel accepted the request: it pays those
 * receivers itself, perhaps later), and a retry would pay them a second time.
 */
async function assertClosedAtChannel(deps: Deps, batch: BatchWithReceivers): Promise<void> {
  const c = await deps.prisma.checkout.findUniqueOrThrow({ where: { id: batch.checkoutId }, select: { transactionId: true } });
  if (!c.transactionId) throw new AppError('SPLIT_NOT_ALLOWED', 'The payment has no WeChat transaction id');
  const { channel } = await channelsOf(deps).forCheckout(batch.checkoutId);
  let q: Awaited<ReturnType<typeof channel.querySplitOrder>>;
  try {
    q = await channel.querySplitOrder(c.transactionId, batch.outOrderNo);
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    throw new AppError('CHANNEL_UNAVAILABLE', `无法向微信确认原批次 ${batch.outOrderNo} 的结果，请稍后再试 · Could not confirm batch ${batch.outOrderNo} with WeChat (${err.code}): try again later`);
  }
  if (q === null) {
    // Never accepted (refused when sent): the channel rightly does not know it. Accepted here but unknown there: a person must look.
    if (batch.orderId === null) return;
    throw new AppError('SPLIT_NOT_ALLOWED', `微信不认识原批次 ${batch.outOrderNo}，请先对账 · WeChat does not know batch ${batch.outOrderNo}: reconcile it before any retry`);
  }
  const open = retryPlan(batch).receivers.filter((mine) => {
    const theirs = q.receivers.find((r) => r.type === mine.type && r.account === mine.account);
    return !theirs || theirs.result !== 'CLOSED';
  });
  if (open.length > 0)
    throw new AppError(
      'SPLIT_NOT_ALLOWED',
      `微信的原批次 ${batch.outOrderNo} 中这些接收方并未关闭（已分或处理中），重试会重复分账：${open.map((r) => r.account).join(', ')} · ` +
        `In WeChat's batch ${batch.outOrderNo} these receivers are not CLOSED (paid or still processing): a retry would pay them twice: ${open.map((r) => r.account).join(', ')}`,
    );
}
