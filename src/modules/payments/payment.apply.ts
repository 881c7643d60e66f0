import type { ChannelTransaction } from '../../channels/channel';
import type { PrismaClient } from '../../lib/prisma';
import { checkoutSourcesOf } from '../checkout/checkout.states';
import { publishEvent } from '../webhooks/webhook.publish';
import { channelOrderSourcesOf } from './channel-order.states';

export type ApplyOutcome = 'applied' | 'duplicate' | 'double_payment';

/** Why a channel transaction cannot be applied to our records: never acknowledge these as success. */
export class PaymentMismatch extends Error {
  constructor(readonly code: 'UNKNOWN_ORDER' | 'ACCOUNT_MISMATCH' | 'SUB_MCHID_MISMATCH' | 'MCHID_MISMATCH' | 'APPID_MISMATCH' | 'AMOUNT_MISMATCH' | 'CURRENCY_MISMATCH' | 'NOT_SUCCESS' | 'NO_TRANSACTION_ID', message: string) {
    super(message);
    this.name = 'PaymentMismatch';
  }
}

export const PAYMENT_SUCCEEDED = 'payment.succeeded';
export const PAYMENT_DOUBLE_PAID = 'payment.double_paid';

/**
 * Records a successful channel transaction exactly once, whoever reports it (notify or query).
 * The checkout transition and its outbox row commit together; concurrent callers serialise on the
 * row lock of the compare-and-set update, so ten identical notifies make one transition.
 */
export async function applyPaidTransaction(
  prisma: PrismaClient,
  channelName: string,
  tx: ChannelTransaction,
  now: Date,
  /** The channel account the transaction was reported for (notify URL / query); undefined = not checked. */
  accountId?: string | null,
): Promise<{ outcome: ApplyOutcome; checkoutId: string }> {
  const order = await prisma.channelOrder.findUnique({ where: { outTradeNo: tx.outTradeNo }, include: { checkout: true } });
  if (!order || order.channel !== channelName) throw new PaymentMismatch('UNKNOWN_ORDER', `no channel order ${tx.outTradeNo}`);
  // A notify verified with account X's keys may only settle account X's orders.
  if (accountId !== undefined && (order.accountId ?? null) !== accountId)
    throw new PaymentMismatch('ACCOUNT_MISMATCH', `order ${tx.outTradeNo} belongs to account ${order.accountId ?? 'default'}, not ${accountId ?? 'default'}`);
  if (tx.mchid !== order.mchid) throw new PaymentMismatch('MCHID_MISMATCH', `mchid ${tx.mchid} != ${order.mchid}`);
  if ((tx.subMchid ?? null) !== (order.subMchid ?? null))
    throw new PaymentMismatch('SUB_MCHID_MISMATCH', `sub_mchid ${tx.subMchid ?? '(none)'} != ${order.subMchid ?? '(none)'}`);
  if (tx.appid !== order.appid) throw new PaymentMismatch('APPID_MISMATCH', `appid ${tx.appid} != ${order.appid}`);
  // REFUND follows SUCCESS only: the order was paid (then a refund started), so it is a payment to record.
  if (tx.tradeState !== 'SUCCESS' && tx.tradeState !== 'REFUND') throw new PaymentMismatch('NOT_SUCCESS', `trade_state ${tx.tradeState}`);
  if (!tx.transactionId) throw new PaymentMismatch('NO_TRANSACTION_ID', 'transaction_id missing');
  if (tx.amountTotalFen !== order.checkout.amountFen)
    throw new PaymentMismatch('AMOUNT_MISMATCH', `amount.total ${tx.amountTotalFen} != ${order.checkout.amountFen}`);
  if (tx.currency !== undefined && tx.currency !== order.checkout.currency)
    throw new PaymentMismatch('CURRENCY_MISMATCH', `currency ${tx.currency} != ${order.checkout.currency}`);

  const transactionId = tx.transactionId;
  const paidAt = tx.successTime ?? now;
  const outcome = await prisma.$transaction(async (db) => {
    const orderMoved = await db.channelOrder.updateMany({
      where: { id: order.id, status: { in: channelOrderSourcesOf('paid') } },
      data: { status: 'paid', transactionId },
    });
    const moved = await db.checkout.updateMany({
      where: { id: order.checkoutId, status: { in: checkoutSourcesOf('paid') } },
      data: {
        status: 'paid',
        channel: channelName,
        transactionId,
        paidAt,
        paidTotalFen: tx.amountTotalFen,
        payerTotalFen: tx.payerTotalFen ?? tx.amountTotalFen,
        merchantFundedFen: Math.min(tx.merchantFundedFen ?? 0, tx.amountTotalFen!),
        // Split work is due from now on, in the payment's own transaction (split.due.ts): the due
        // scan starts it even if the outbox event's handler is held (e.g. claimed by a killed instance).
        ...(order.checkout.profitSharing !== 'none' ? { splitDueAt: paidAt } : {}),
      },
    });
    if (moved.count === 1) {
      await db.outboxEvent.create({
        data: {
          type: PAYMENT_SUCCEEDED,
          aggregateId: order.checkoutId,
          payload: { checkoutId: order.checkoutId, transactionId, outTradeNo: tx.outTradeNo, amountFen: tx.amountTotalFen!, paidAt: paidAt.toISOString() },
        },
      });
      await publishEvent(db, { merchantId: order.checkout.merchantId, type: 'checkout.paid', checkoutId: order.checkoutId, object: { kind: 'checkout', id: order.checkoutId } });
      return 'applied' as const;
    }
    const current = await db.checkout.findUniqueOrThrow({ where: { id: order.checkoutId }, select: { transactionId: true } });
    if (current.transactionId === transactionId || orderMoved.count === 0) return 'duplicate' as const;
    // Another channel order of this checkout was paid first: the shopper paid twice. Record it for a refund.
    const recorded = await db.outboxEvent.createMany({
      data: [{ type: PAYMENT_DOUBLE_PAID, aggregateId: transactionId, payload: { checkoutId: order.checkoutId, transactionId, outTradeNo: tx.outTradeNo } }],
      skipDuplicates: true,
    });
    // Once per second transaction, like its outbox row.
    if (recorded.count === 1)
      await publishEvent(db, { merchantId: order.checkout.merchantId, type: 'checkout.double_paid', checkoutId: order.checkoutId, object: { kind: 'checkout', id: order.checkoutId } });
    return 'double_payment' as const;
  });
  return { outcome, checkoutId: order.checkoutId };
}
