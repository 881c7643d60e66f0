import type { ChannelTransaction } from '../../channels/channel';
import { newId } from '../../lib/ids';
import { Prisma, sqlUtc as utc, type PrismaClient } from '../../lib/prisma';
import { checkoutSourcesOf } from '../checkout/checkout.states';
import { publishCheckoutEventCtes, publishEvent } from '../webhooks/webhook.publish';
import { eventsCommitted } from '../webhooks/webhook.wake';
import { channelOrderSourcesOf } from './channel-order.states';
import { rawQuery } from '../../lib/raw-sql';

export type ApplyOutcome = 'applied' | 'duplicate' | 'double_payment';

/** Why a channel transaction cannot be applied to our records: never acknowledge these as success. */
export class PaymentMismatch extends Error {
  constructor(readonly code: 'UNKNOWN_ORDER' | 'ACCOUNT_MISMATCH' | 'SUB_MCHID_MISMATCH' | 'MCHID_MISMATCH' | 'APPID_MISMATCH' | 'AMOUNT_MISMATCH' | 'CURRENCY_MISMATCH' | 'NOT_SUCCESS' | 'NO_TRANSACTION_ID', message: string) {
    super(message);
    this.name = 'PaymentMismatch';
  }
}

/** What the checks need from our channel order and its checkout. */
export interface OrderToCheck {
  channel: string;
  accountId: string | null;
  mchid: string;
  subMchid: string | null;
  appid: string;
  amountFen: number;
  currency: string;
}

const unknownOrder = (tx: ChannelTransaction) => new PaymentMismatch('UNKNOWN_ORDER', `no channel order ${tx.outTradeNo}`);

/** Throws PaymentMismatch unless `tx` is a successful payment of exactly this order; returns its transaction id. */
export function checkPaidTransaction(order: OrderToCheck, channelName: string, tx: ChannelTransaction, accountId?: string | null): string {
  if (order.channel !== channelName) throw unknownOrder(tx);
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
  if (tx.amountTotalFen !== order.amountFen)
    throw new PaymentMismatch('AMOUNT_MISMATCH', `amount.total ${tx.amountTotalFen} != ${order.amountFen}`);
  if (tx.currency !== undefined && tx.currency !== order.currency)
    throw new PaymentMismatch('CURRENCY_MISMATCH', `currency ${tx.currency} != ${order.currency}`);
  return tx.transactionId;
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
  if (!order) throw unknownOrder(tx);
  const transactionId = checkPaidTransaction({ ...order, amountFen: order.checkout.amountFen, currency: order.checkout.currency }, channelName, tx, accountId);
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
          payload: { checkoutId: order.checkoutId, transactionId, outTradeNo: tx.outTradeNo, amountFen: tx.amountTotalFen!, paidAt: paidAt.toISOString(), profitSharing: order.checkout.profitSharing },
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

const ORDER_PAYABLE: string[] = channelOrderSourcesOf('paid');
const CHECKOUT_PAYABLE: string[] = checkoutSourcesOf('paid');

/**
 * `applyPaidTransaction` for a notify whose raw bytes are stored already, in one statement (atomic on
 * its own: no BEGIN/COMMIT round trips) that reads the order with its checkout and, only when the
 * order passes the same checks (`checkPaidTransaction`, written again in SQL as a gate that is never
 * looser: the JS check still decides every refusal), writes:
 *   - order payable: the checkout's compare-and-set, the order's (only if the checkout moved), the
 *     outbox row, the merchant event with its deliveries, and the notify's outcome (the dispatchers
 *     are woken after it, without a NOTIFY: webhook.wake.ts).
 *     Concurrent copies serialise on the checkout's row lock and re-check its status, as in the
 *     transaction: one of them moves it;
 *   - order already `paid` (terminal): only the outcome `duplicate` — the transaction's update would
 *     move nothing, which it reads as a duplicate.
 * The checkout did not move although the order could (another order of it was paid first, or a
 * concurrent copy won): nothing was written, and `applyPaidTransaction` decides (double payment or
 * duplicate) in its transaction, as before. `outcomeStored`: the notify log's outcome was written.
 */
export async function applyNotifiedPayment(
  prisma: PrismaClient,
  channelName: string,
  tx: ChannelTransaction,
  now: Date,
  accountId: string | null,
  notifyLogId: string,
): Promise<{ outcome: ApplyOutcome; checkoutId: string; outcomeStored: boolean }> {
  // The checks that need no order; when one fails, the gate is shut and checkPaidTransaction names it.
  const txOk = (tx.tradeState === 'SUCCESS' || tx.tradeState === 'REFUND') && !!tx.transactionId && tx.amountTotalFen !== undefined;
  const transactionId = tx.transactionId ?? '';
  const amount = tx.amountTotalFen ?? 0;
  const paidAt = (tx.successTime ?? now).toISOString();
  const payload = JSON.stringify({ checkoutId: '', transactionId, outTradeNo: tx.outTradeNo, amountFen: amount, paidAt });
  // updated_at from the wall clock, as the typed client's @updatedAt writes it (paid_at is the channel's time).
  const wall = new Date().toISOString();
  const [row] = await rawQuery<OrderToCheck & { id: string; checkoutId: string; status: string; moved: number; logged: number }>(prisma, Prisma.sql`
    WITH peek AS (
      SELECT o.id, o.checkout_id, o.channel, o.account_id, o.mchid, o.sub_mchid, o.appid, o.status::text AS status, c.amount_fen, c.currency,
        (${txOk} AND o.channel = ${channelName} AND o.account_id IS NOT DISTINCT FROM ${accountId}::text AND o.mchid = ${tx.mchid}
          AND o.sub_mchid IS NOT DISTINCT FROM ${tx.subMchid ?? null}::text AND o.appid = ${tx.appid} AND c.amount_fen = ${amount}
          AND (${tx.currency ?? null}::text IS NULL OR c.currency = ${tx.currency ?? null}::text)) AS matches
      FROM channel_orders o JOIN checkouts c ON c.id = o.checkout_id
      WHERE o.out_trade_no = ${tx.outTradeNo}),
    -- Only a payable order is locked: a paid one is terminal, so WeChat's retries of an applied
    -- notify read it without queueing on its row. The order's row lock first, then the checkout's
    -- (in \`moved\`): the order applyPaidTransaction takes them in, so a notify and a status query of
    -- one order cannot deadlock. A copy that waited here re-reads the order: paid by the other, it
    -- drops out, nothing is written, and applyPaidTransaction names the duplicate.
    ord AS (
      SELECT o.id, o.checkout_id FROM channel_orders o JOIN peek ON peek.id = o.id
      WHERE peek.matches AND o.status::text IN (${Prisma.join(ORDER_PAYABLE)})
      FOR UPDATE OF o),
    moved AS (
      UPDATE checkouts SET status = 'paid', channel = ${channelName}, transaction_id = ${transactionId}, paid_at = ${utc(paidAt)},
        paid_total_fen = ${amount}, payer_total_fen = ${tx.payerTotalFen ?? amount}, merchant_funded_fen = ${Math.min(tx.merchantFundedFen ?? 0, amount)},
        split_due_at = CASE WHEN profit_sharing <> 'none' THEN ${utc(paidAt)} ELSE split_due_at END,
        updated_at = ${utc(wall)}
      FROM ord
      WHERE checkouts.id = ord.checkout_id AND checkouts.status::text IN (${Prisma.join(CHECKOUT_PAYABLE)})
      RETURNING checkouts.id, checkouts.merchant_id, checkouts.profit_sharing::text AS profit_sharing),
    order_moved AS (
      UPDATE channel_orders SET status = 'paid', transaction_id = ${transactionId}, updated_at = ${utc(wall)}
      FROM ord, moved
      WHERE channel_orders.id = ord.id AND channel_orders.status::text IN (${Prisma.join(ORDER_PAYABLE)})
      RETURNING channel_orders.id),
    outbox AS (
      INSERT INTO outbox_events (type, aggregate_id, payload)
      SELECT ${PAYMENT_SUCCEEDED}, id, jsonb_set(${payload}::jsonb, '{checkoutId}', to_jsonb(id)) || jsonb_build_object('profitSharing', profit_sharing) FROM moved RETURNING id),
    ${publishCheckoutEventCtes('moved', 'checkout.paid', newId('evt'))},
    logged AS (
      UPDATE notify_logs SET outcome = CASE WHEN EXISTS (SELECT 1 FROM moved) THEN 'applied' ELSE 'duplicate' END
      WHERE id = ${notifyLogId}
        AND (EXISTS (SELECT 1 FROM moved) OR EXISTS (SELECT 1 FROM peek WHERE matches AND status NOT IN (${Prisma.join(ORDER_PAYABLE)})))
      RETURNING id)
    SELECT peek.id, peek.checkout_id AS "checkoutId", peek.channel, peek.account_id AS "accountId", peek.mchid, peek.sub_mchid AS "subMchid",
      peek.appid, peek.status, peek.amount_fen AS "amountFen", peek.currency,
      (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM logged)::int AS logged
    FROM peek`);
  if (!row) throw unknownOrder(tx);
  const outcomeStored = row.logged === 1;
  if (row.moved === 1) {
    eventsCommitted(); // its checkout.paid event: this process's dispatcher renders it now
    return { outcome: 'applied', checkoutId: row.checkoutId, outcomeStored };
  }
  checkPaidTransaction(row, channelName, tx, accountId);
  if (!ORDER_PAYABLE.includes(row.status)) return { outcome: 'duplicate', checkoutId: row.checkoutId, outcomeStored };
  const r = await applyPaidTransaction(prisma, channelName, tx, now, accountId);
  return { ...r, outcomeStored: false };
}
