/**
 * Our side of a day's bills: the records of one channel account that the channel should have billed
 * on one Beijing day, plus the records the bill's lines name (whatever their day), in the shapes the
 * pure matcher (bill.match.ts) compares. Also: which merchant and checkout a mismatch is about.
 */
import type { PrismaClient } from '../../lib/prisma';
import type { OurPayment, OurRefund, OurSplitLine } from './bill.match';

/** [start, end) of a Beijing day `YYYY-MM-DD`. */
export function beijingDayRange(day: string): { start: Date; end: Date } {
  const start = new Date(`${day}T00:00:00+08:00`);
  return { start, end: new Date(start.getTime() + 86_400_000) };
}


const within = (d: Date | null | undefined, r: { start: Date; end: Date }) => !!d && d >= r.start && d < r.end;

/** What the bills name: out_trade_no of payment lines, out_refund_no of refund lines, out_order_no of split lines. */
export interface BilledRefs {
  outTradeNos: string[];
  outRefundNos: string[];
  outOrderNos: string[];
}

export interface OurRecords {
  payments: OurPayment[];
  refunds: OurRefund[];
  splits: OurSplitLine[];
}

const REFUND_SENT = ['processing', 'succeeded', 'abnormal', 'closed'] as const;

/** accountId null = the default (WECHATPAY_* environment) account. */
export async function loadOurRecords(prisma: PrismaClient, accountId: string | null, day: string, billed: BilledRefs): Promise<OurRecords> {
  const range = beijingDayRange(day);
  const paidHere = { channelOrders: { some: { status: 'paid' as const, accountId } } };

  const orders = await prisma.channelOrder.findMany({
    where: {
      accountId,
      OR: [{ outTradeNo: { in: billed.outTradeNos } }, { status: 'paid', checkout: { paidAt: { gte: range.start, lt: range.end } } }],
    },
    include: { checkout: { select: { amountFen: true, paidAt: true, transactionId: true } } },
  });
  const payments: OurPayment[] = orders.map((o) => ({
    outTradeNo: o.outTradeNo,
    transactionId: o.transactionId,
    amountFen: o.checkout.amountFen,
    paid: o.status === 'paid',
    // The checkout's paid_at is the time of the payment that settled it (its transaction id).
    dueOnDay: o.status === 'paid' && o.transactionId === o.checkout.transactionId && within(o.checkout.paidAt, range),
  }));

  const refundRows = await prisma.refund.findMany({
    where: { checkout: paidHere, OR: [{ channelRefundNo: { in: billed.outRefundNos } }, { status: { in: [...REFUND_SENT] }, sentAt: { gte: range.start, lt: range.end } }] },
  });
  // The channel knows a refund by the number we sent it (channel_refund_no), billed the day it accepted it.
  const refunds: OurRefund[] = refundRows.map((r) => ({
    outRefundNo: r.channelRefundNo,
    amountFen: r.amountFen,
    status: r.status,
    dueOnDay: r.channelRefundId !== null && within(r.sentAt, range),
  }));

  const receivers = await prisma.splitReceiver.findMany({
    where: { OR: [{ batch: { outOrderNo: { in: billed.outOrderNos } } }, { batch: { sentAt: { gte: range.start, lt: range.end } } }] },
    include: { batch: { select: { outOrderNo: true, sentAt: true, checkoutId: true } } },
  });
  const returns = await prisma.refundReturn.findMany({
    where: { OR: [{ outReturnNo: { in: billed.outOrderNos } }, { state: 'succeeded', finishedAt: { gte: range.start, lt: range.end } }] },
  });
  // Splits and returns of this account's payments only.
  const checkoutIds = [...new Set([...receivers.map((r) => r.checkoutId), ...returns.map((r) => r.checkoutId)])];
  const ours = new Set(
    (await prisma.checkout.findMany({ where: { id: { in: checkoutIds }, ...paidHere }, select: { id: true } })).map((c) => c.id),
  );
  const splits: OurSplitLine[] = [
    ...receivers
      .filter((r) => ours.has(r.checkoutId))
      .map((r) => ({ outOrderNo: r.batch.outOrderNo, account: r.account, amountFen: r.amountFen, kind: 'split' as const, state: r.state, dueOnDay: within(r.batch.sentAt, range) })),
    ...returns
      .filter((r) => ours.has(r.checkoutId))
      .map((r) => ({
        outOrderNo: r.outReturnNo,
        account: r.account,
        amountFen: r.amountFen,
        kind: 'return' as const,
        state: r.state === 'succeeded' ? 'SUCCESS' : r.state.toUpperCase(),
        dueOnDay: r.state === 'succeeded' && within(r.finishedAt ?? r.createdAt, range),
      })),
  ];
  return { payments, refunds, splits };
}

/** The checkout (and so the merchant) a mismatch's ref names, when one of our records does. */
export async function ownerOf(prisma: PrismaClient, bill: 'trade' | 'profitsharing', kind: string, ref: string): Promise<{ checkoutId: string; merchantId: string } | null> {
  const pick = (c: { id: string; merchantId: string } | null | undefined) => (c ? { checkoutId: c.id, merchantId: c.merchantId } : null);
  const sel = { select: { id: true, merchantId: true } } as const;
  if (bill === 'trade' && kind.startsWith('PAYMENT_'))
    return pick((await prisma.channelOrder.findUnique({ where: { outTradeNo: ref }, include: { checkout: sel } }))?.checkout);
  if (bill === 'trade' && kind.startsWith('REFUND_'))
    return pick((await prisma.refund.findUnique({ where: { channelRefundNo: ref }, include: { checkout: sel } }))?.checkout);
  if (bill === 'profitsharing' && kind.startsWith('SPLIT_')) {
    const outOrderNo = ref.split(':')[0]!;
    const batch = await prisma.splitBatch.findUnique({ where: { outOrderNo }, select: { checkoutId: true } });
    const ret = batch ? null : await prisma.refundReturn.findUnique({ where: { outReturnNo: outOrderNo }, select: { checkoutId: true } });
    const checkoutId = batch?.checkoutId ?? ret?.checkoutId;
    return checkoutId ? pick(await prisma.checkout.findUnique({ where: { id: checkoutId }, ...sel })) : null;
  }
  return null;
}
