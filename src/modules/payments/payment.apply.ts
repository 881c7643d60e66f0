import type { ChannelTransaction } from '../../channels/channel';
import type { PrismaClient } from '../../lib/prisma';
import { checkoutSourcesOf } from '../checkout/checkout.states';
import { channelOrderSourcesOf } from './channel-order.states';

export type ApplyOutcome = 'applied' | 'duplicate' | 'double_payment';

/** Why a channel transaction cannot be applied to our records: never acknowledge these as success. */
export class PaymentMismatch extends Error {
  constructor(readonly code: 'UNKNOWN_ORDER' | 'MCHID_MISMATCH' | 'APPID_MISMATCH' | 'AMOUNT_MISMATCH' | 'CURRENCY_MISMATCH' | 'NOT_SUCCESS' | 'NO_TRANSACTION_ID', message: string) {
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
): Promise<{ outcome: ApplyOutcome; checkoutId: string }> {
  const order = await prisma.channelOrder.findUnique({ where: { outTradeNo: tx.outTradeNo }, include: { checkout: true } });
  if (!order || order.channel !== channelName) throw new PaymentMismatch('UNKNOWN_ORDER', `no channel order ${tx.outTradeNo}`);
  if (tx.mchid !== order.mchid) throw new PaymentMismatch('MCHID_MISMATCH', `mchid ${tx.mchid} != ${order.mchid}`);
  if (tx.appid !== order.appid) throw new PaymentMismatch('APPID_MISMATCH', `appid ${tx.appid} != ${order.appid}`);
  if (tx.tradeState !== 'SUCCESS') throw new PaymentMismatch('NOT_SUCCESS', `trade_state ${tx.tradeState}`);
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
      return 'applied' as const;
    }
    const current = await db.checkout.findUniqueOrThrow({ where: { id: order.checkoutId }, select: { transactionId: true } });
    if (current.transactionId === transactionId || orderMoved.count === 0) return 'duplicate' as const;
    // Another channel order of this checkout was paid first: the shopper paid twice. Record it for a refund.
    await db.outboxEvent.createMany({
      data: [{ type: PAYMENT_DOUBLE_PAID, aggregateId: transactionId, payload: { checkoutId: order.checkoutId, transactionId, outTradeNo: tx.outTradeNo } }],
      skipDuplicates: true,
    });
    return 'double_payment' as const;
  });
  return { outcome, checkoutId: order.checkoutId };
}
