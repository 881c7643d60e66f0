import type { ChannelRefund } from '../../channels/channel';
import type { RefundStatus } from '../../generated/prisma/enums';
import type { Prisma, PrismaClient } from '../../lib/prisma';
import { publishEvent, type MerchantEventType } from '../webhooks/webhook.publish';
import { refundSourcesOf } from './refund.states';

type Tx = Prisma.TransactionClient;

const TO: Record<ChannelRefund['status'], RefundStatus> = { PROCESSING: 'processing', SUCCESS: 'succeeded', CLOSED: 'closed', ABNORMAL: 'abnormal' };
const EVENT: Partial<Record<RefundStatus, MerchantEventType>> = { succeeded: 'refund.succeeded', failed: 'refund.failed', closed: 'refund.failed', abnormal: 'refund.abnormal' };

/** The channel's word about a refund (notify, query or a re-sent request), applied once by compare-and-set. */
export async function applyRefundResult(prisma: PrismaClient, refundId: string, result: ChannelRefund, now: Date): Promise<'applied' | 'duplicate'> {
  const to = TO[result.status];
  return prisma.$transaction(async (db) => {
    const r = await db.refund.findUniqueOrThrow({ where: { id: refundId } });
    const moved = await db.refund.updateMany({
      where: { id: refundId, status: { in: refundSourcesOf(to) } },
      data: {
        status: to,
        channelRefundId: result.refundId,
        sentAt: r.sentAt ?? now,
        ...(to === 'succeeded' ? { succeededAt: result.successTime ?? now, failureCode: null, failureReason: null } : {}),
        ...(to === 'closed' ? { failureCode: 'CLOSED', failureReason: 'WeChat Pay closed the refund (退款关闭): no money moved' } : {}),
        ...(to === 'abnormal'
          ? { failureCode: 'ABNORMAL', failureReason: "WeChat Pay could not credit the payer's account (退款异常): a person must resolve it in the merchant platform" }
          : {}),
        ...(to === 'processing' ? {} : { finishedAt: now, nextAttemptAt: null }),
      },
    });
    if (moved.count !== 1) return 'duplicate';
    // A closed refund moved no money: its share of the budget is free again.
    if (to === 'closed') await releaseRefund(db, r.checkoutId, r.amountFen, now);
    await emit(db, { ...r, status: to });
    return 'applied';
  });
}

/** The refund's event, in the transaction of its state change (refund.succeeded / failed / abnormal). */
export async function emit(db: Tx, r: { id: string; merchantId: string; checkoutId: string; status: RefundStatus }): Promise<void> {
  const type = EVENT[r.status];
  if (type) await publishEvent(db, { merchantId: r.merchantId, type, checkoutId: r.checkoutId, object: { kind: 'refund', id: r.id } });
}

export async function releaseRefund(db: Tx, checkoutId: string, amountFen: number, now: Date): Promise<void> {
  await db.$executeRaw`UPDATE checkouts SET refunded_fen = refunded_fen - ${amountFen}, updated_at = ${now}::timestamp WHERE id = ${checkoutId}`;
}

/** Money of return orders that will not (or no longer) move goes back to what receivers keep. */
export async function releaseReturns(db: Tx, checkoutId: string, amountFen: number, now: Date): Promise<void> {
  if (amountFen !== 0)
    await db.$executeRaw`UPDATE checkouts SET split_returned_fen = split_returned_fen - ${amountFen}, updated_at = ${now}::timestamp WHERE id = ${checkoutId}`;
}
