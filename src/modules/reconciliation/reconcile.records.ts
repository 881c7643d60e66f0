/**
 * Our side of a day's bills: the records of one channel account that the channel should have billed
 * on one Beijing day, plus the records the bill's lines name (whatever their day), in the shapes the
 * pure matcher (bill.match.ts) compares. Also: which merchant and checkout a mismatch is about.
 */
import { Prisma, type PrismaClient } from '../../lib/prisma';
import { rawQuery } from '../../lib/raw-sql';
import type { OurPayment, OurRefund, OurSplitLine } from './bill.match';

/** [start, end) of a Beijing day `YYYY-MM-DD`. */
export function beijingDayRange(day: string): { start: Date; end: Date } {
  const start = new Date(`${day}T00:00:00+08:00`);
  return { start, end: new Date(start.getTime() + 86_400_000) };
}

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
  const onDay = (at: Prisma.Sql) => Prisma.sql`(${at} >= ${range.start} AND ${at} < ${range.end})`;
  // Raw and narrow: a large merchant's day is hundreds of thousands of lines, and the typed client's
  // rows (every column, relations nested) cost ~3 KB each against the heap cap (bench/bills.ts). The
  // billed numbers go as one array parameter, whatever their count. Each read is a UNION of its two
  // legs, the billed numbers (unique indexes) and the day (an index by day each): an OR of them read
  // the account's whole history every day (work-lists.test.ts).
  const account = accountId === null ? Prisma.sql`o.account_id IS NULL` : Prisma.sql`o.account_id = ${accountId}`;
  // Ids of a table's rows that the bill names or that are due on the day: one leg per index.
  const billedOrDue = (table: string, numberColumn: string, numbers: string[], due: Prisma.Sql) => Prisma.sql`
        SELECT id FROM ${Prisma.raw(table)} WHERE ${Prisma.raw(numberColumn)} = ANY(${numbers}::text[])
        UNION
        SELECT id FROM ${Prisma.raw(table)} WHERE ${due}`;
  // A record of this account: its checkout was paid through one of the account's orders.
  const paidOnAccount = (checkoutId: Prisma.Sql) => Prisma.sql`EXISTS (SELECT 1 FROM channel_orders o WHERE o.checkout_id = ${checkoutId} AND o.status = 'paid' AND ${account})`;
  const payments = await rawQuery<OurPayment>(
    prisma,
    Prisma.sql`
      WITH picked AS (
        SELECT o.id FROM channel_orders o WHERE o.out_trade_no = ANY(${billed.outTradeNos}::text[]) AND ${account}
        UNION
        SELECT o.id FROM checkouts c JOIN channel_orders o ON o.checkout_id = c.id
        WHERE ${onDay(Prisma.sql`c.paid_at`)} AND o.status = 'paid' AND ${account})
      SELECT o.out_trade_no AS "outTradeNo", o.transaction_id AS "transactionId", c.amount_fen AS "amountFen",
             o.status = 'paid' AS paid,
             -- The checkout's paid_at is the time of the payment that settled it (its transaction id).
             COALESCE(o.status = 'paid' AND o.transaction_id IS NOT DISTINCT FROM c.transaction_id AND ${onDay(Prisma.sql`c.paid_at`)}, false) AS "dueOnDay"
      FROM picked JOIN channel_orders o ON o.id = picked.id JOIN checkouts c ON c.id = o.checkout_id`,
  );

  // The channel knows a refund by the number we sent it (channel_refund_no), billed the day it accepted it.
  const refunds = await rawQuery<OurRefund>(
    prisma,
    Prisma.sql`
      WITH picked AS (${billedOrDue('refunds', 'channel_refund_no', billed.outRefundNos,
        Prisma.sql`${onDay(Prisma.sql`sent_at`)} AND status = ANY(${[...REFUND_SENT]}::text[]::"RefundStatus"[])`)})
      SELECT f.channel_refund_no AS "outRefundNo", f.amount_fen AS "amountFen", f.status::text AS status,
             (f.channel_refund_id IS NOT NULL AND COALESCE(${onDay(Prisma.sql`f.sent_at`)}, false)) AS "dueOnDay"
      FROM picked JOIN refunds f ON f.id = picked.id
      WHERE ${paidOnAccount(Prisma.sql`f.checkout_id`)}`,
  );

  // Split and return lines of this account's payments, raw and narrow for the same reason.
  const splits = await rawQuery<OurSplitLine>(
    prisma,
    Prisma.sql`
      WITH batches AS (${billedOrDue('split_batches', 'out_order_no', billed.outOrderNos, onDay(Prisma.sql`sent_at`))}),
      returns AS (${billedOrDue('refund_returns', 'out_return_no', billed.outOrderNos, Prisma.sql`state = 'succeeded' AND ${onDay(Prisma.sql`finished_at`)}`)})
      SELECT b.out_order_no AS "outOrderNo", r.account, r.amount_fen AS "amountFen", 'split' AS kind, r.state::text AS state,
             COALESCE(${onDay(Prisma.sql`b.sent_at`)}, false) AS "dueOnDay"
      FROM batches JOIN split_batches b ON b.id = batches.id JOIN split_receivers r ON r.batch_id = b.id
      WHERE ${paidOnAccount(Prisma.sql`r.checkout_id`)}
      UNION ALL
      SELECT t.out_return_no, t.account, t.amount_fen, 'return',
             CASE WHEN t.state = 'succeeded' THEN 'SUCCESS' ELSE upper(t.state::text) END,
             (t.state = 'succeeded' AND ${onDay(Prisma.sql`COALESCE(t.finished_at, t.created_at)`)})
      FROM returns JOIN refund_returns t ON t.id = returns.id
      WHERE ${paidOnAccount(Prisma.sql`t.checkout_id`)}`,
  );
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
