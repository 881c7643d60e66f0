/**
 * A large merchant's day, seeded twice and independently: paid transactions in the simulator's own
 * records (from which it writes the day's bill) and paid checkouts with their channel orders in our
 * database, with the same numbers and amounts. Used by the large-day reconciliation test and
 * bench/bills.ts.
 */
import { SANDBOX_APPID, SANDBOX_MCHID } from '../../src/config/sandbox';
import type { PrismaClient } from '../../src/lib/prisma';
import type { SimContext, SimTransaction } from '../../src/simulator/context';

export const billedOutTradeNo = (i: number) => `wx_bill_${String(i).padStart(12, '0')}`;
const transactionId = (i: number) => `4200${String(i).padStart(24, '0')}`;
export const billedAmount = (i: number) => 100 + (i % 9900);

/** Payment i (from ≤ i < from + n) on the simulator, paid at `paidAtMs`. */
export function seedSimulatorPayments(ctx: SimContext, from: number, n: number, paidAtMs: number): void {
  for (let i = from; i < from + n; i++) {
    const amount = billedAmount(i);
    const tx: SimTransaction = {
      outTradeNo: billedOutTradeNo(i), transactionId: transactionId(i), tradeType: 'NATIVE', appid: SANDBOX_APPID, mchid: SANDBOX_MCHID,
      description: '账单 一件商品', notifyUrl: 'http://127.0.0.1:1/notify', amountTotal: amount, payerTotal: amount, currency: 'CNY',
      profitSharing: false, state: 'SUCCESS', paidAtMs, requestFingerprint: '', createdAtMs: paidAtMs,
    };
    ctx.transactions.byOutTradeNo.set(tx.outTradeNo, tx);
    ctx.transactions.byTransactionId.set(tx.transactionId!, tx);
  }
}

/** The same payments as ours: paid checkouts of `merchantId` on the default account (SQL; the numbers as above). */
export async function seedOurPayments(prisma: PrismaClient, merchantId: string, from: number, n: number, paidAtMs: number): Promise<void> {
  const paidAt = new Date(paidAtMs);
  const to = from + n - 1;
  await prisma.$executeRawUnsafe(
    `INSERT INTO checkouts (id, merchant_id, out_trade_no, amount_fen, description, expires_at, status, channel, transaction_id, paid_at, paid_total_fen, payer_total_fen, updated_at)
     SELECT 'co_bill_' || i, $1, 'm_bill_' || i, 100 + i % 9900, 'bill', $2, 'paid', 'wechatpay', '4200' || lpad(i::text, 24, '0'), $2, 100 + i % 9900, 100 + i % 9900, now()
     FROM generate_series($3::int, $4::int) i`,
    merchantId, paidAt, from, to,
  );
  await prisma.$executeRawUnsafe(
    `INSERT INTO channel_orders (id, checkout_id, channel, trade_type, out_trade_no, appid, mchid, status, transaction_id, updated_at)
     SELECT 'ord_bill_' || i, 'co_bill_' || i, 'wechatpay', 'NATIVE', 'wx_bill_' || lpad(i::text, 12, '0'), $1, $2, 'paid', '4200' || lpad(i::text, 24, '0'), now()
     FROM generate_series($3::int, $4::int) i`,
    SANDBOX_APPID, SANDBOX_MCHID, from, to,
  );
  await prisma.$executeRawUnsafe('ANALYZE checkouts');
  await prisma.$executeRawUnsafe('ANALYZE channel_orders');
}
