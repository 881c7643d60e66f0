/**
 * Builds one Beijing day's bills from the simulator's own records (payments, refunds, splits and
 * returns), applying the line fault controls before the file is written and hashed.
 */
import type { SimContext, SimTransaction } from '../context';
import { getLedger } from '../refunds/ledger';
import { feeOf, getStore, paidAtMs, settle } from '../profitsharing/store';
import { formatProfitSharingBill, formatTradeBill, type BillPaymentRow, type BillRefundRow, type BillSplitRow, type TradeBillType } from './format';
import { takeFaults, type BillFault, type BillKind, type BillStore } from './store';

const BEIJING_MS = 8 * 3600_000;

/** `YYYY-MM-DD` of the Beijing day `ms` falls in (bills are per Beijing day, FACTS-partner-bills §2.1). */
export const beijingDay = (ms: number) => new Date(ms + BEIJING_MS).toISOString().slice(0, 10);
const beijingTime = (ms: number) => new Date(ms + BEIJING_MS).toISOString().slice(0, 19).replace('T', ' ');

/** Whose bill: the whole merchant (direct, or an SP without sub_mchid) or one sub-merchant. */
export interface BillScope {
  subMchid?: string;
}

const inScope = (tx: SimTransaction, scope: BillScope) => scope.subMchid === undefined || tx.partner?.subMchid === scope.subMchid;

function paymentRow(ctx: SimContext, tx: SimTransaction): BillPaymentRow {
  return {
    time: beijingTime(paidAtMs(tx)),
    appid: tx.appid,
    mchid: tx.mchid,
    ...(tx.partner ? { subMchid: tx.partner.subMchid } : {}),
    transactionId: tx.transactionId!,
    outTradeNo: tx.outTradeNo,
    openid: tx.payerOpenid ?? '',
    tradeType: tx.tradeType,
    bankType: 'OTHERS',
    totalFen: tx.amountTotal,
    couponFen: Math.max(0, tx.amountTotal - (tx.payerTotal ?? tx.amountTotal)),
    feeFen: feeOf(ctx, tx),
    feeRateBp: Math.round(ctx.opts.profitSharing.feeRate * 10_000),
    description: tx.description,
    attach: tx.attach ?? '',
  };
}

type LineFaults = Record<'drop' | 'amount' | 'state' | 'extra', BillFault[]>;

/** The line faults of one bill, each used up once for this bill. */
function lineFaults(store: BillStore, bill: BillKind): LineFaults {
  return { drop: takeFaults(store, bill, 'drop'), amount: takeFaults(store, bill, 'amount'), state: takeFaults(store, bill, 'state'), extra: takeFaults(store, bill, 'extra') };
}

/** Line faults on rows keyed by `keyOf`: drop, change the amount, change the state. */
function applyLineFaults<R>(faults: LineFaults, rows: R[], keyOf: (r: R) => string, edit: { amount(r: R, delta: number): void; state(r: R, state?: string): void }): R[] {
  const drops = new Set(faults.drop.map((f) => f.ref));
  for (const f of faults.amount) for (const r of rows) if (keyOf(r) === f.ref) edit.amount(r, f.deltaFen ?? 1);
  for (const f of faults.state) for (const r of rows) if (keyOf(r) === f.ref) edit.state(r, f.state);
  return rows.filter((r) => !drops.has(keyOf(r)));
}

/** The trade bill's text of `day`, or null when the day has no billed line (NO_STATEMENT_EXIST). */
export function buildTradeBill(ctx: SimContext, store: BillStore, day: string, billType: TradeBillType, scope: BillScope): string | null {
  const txs = [...ctx.transactions.byOutTradeNo.values()].filter((tx) => tx.transactionId && (tx.state === 'SUCCESS' || tx.state === 'REFUND') && inScope(tx, scope));
  // Only paid orders are billed, on the day they were paid (FACTS-partner-bills §2.1).
  let payments = txs.filter((tx) => beijingDay(paidAtMs(tx)) === day).map((tx) => paymentRow(ctx, tx));
  const byTxId = new Map(txs.map((tx) => [tx.transactionId!, tx]));
  // A refund is billed on the day it was initiated, with its state as WeChat holds it when the bill is made.
  let refunds: BillRefundRow[] = [...getLedger(ctx).refunds.values()]
    .filter((r) => byTxId.has(r.transactionId) && beijingDay(r.createdAtMs) === day)
    .map((r) => ({
      time: beijingTime(r.createdAtMs),
      payment: paymentRow(ctx, byTxId.get(r.transactionId)!),
      refundId: r.refundId,
      outRefundNo: r.outRefundNo,
      refundFen: r.refund,
      // The refund API answers refund_fee 0 (fees are not modelled on refunds): none is returned.
      feeReturnedFen: 0,
      refundType: 'ORIGINAL',
      refundState: r.status,
      successTime: r.successAtMs !== undefined ? beijingTime(r.successAtMs) : '',
    }));
  const faults = lineFaults(store, 'trade');
  payments = applyLineFaults(faults, payments, (p) => p.outTradeNo, {
    amount: (p, d) => void (p.totalFen += d),
    state: (p, s) => void (p.tradeState = s ?? 'REVOKED'),
  });
  refunds = applyLineFaults(faults, refunds, (r) => r.outRefundNo, {
    amount: (r, d) => void (r.refundFen += d),
    state: (r, s) => void (r.refundState = s ?? 'CLOSED'),
  });
  for (const f of faults.extra) {
    const n = String(Date.now()).slice(-10);
    const template = payments[0] ?? refunds[0]?.payment;
    payments.push({
      ...(template ?? { appid: ctx.opts.appid, mchid: ctx.opts.mchid, openid: '', tradeType: 'NATIVE', bankType: 'OTHERS', couponFen: 0, feeFen: 0, feeRateBp: 0, description: '', attach: '' }),
      time: `${day} 12:00:00`,
      transactionId: `42000${day.replace(/-/g, '')}${n}${String(payments.length).padStart(5, '0')}`.slice(0, 28),
      outTradeNo: f.ref ?? `UNKNOWN${n}`,
      totalFen: f.deltaFen ?? 100,
      couponFen: 0,
      feeFen: 0,
      tradeState: 'SUCCESS',
    });
  }
  if (payments.length + refunds.length === 0) return null;
  return formatTradeBill(billType, payments, refunds);
}

/** The profit-sharing bill's text of `day`, or null when nothing was split or returned that day. */
export function buildProfitSharingBill(ctx: SimContext, store: BillStore, day: string, scope: BillScope): string | null {
  const ps = getStore(ctx);
  settle(ctx, ps);
  const txOf = (transactionId: string) => ctx.transactions.byTransactionId.get(transactionId);
  let rows: BillSplitRow[] = [];
  for (const o of ps.orders.values()) {
    const tx = txOf(o.transactionId);
    if (o.kind !== 'split' || !tx || !inScope(tx, scope) || beijingDay(o.createdAtMs) !== day) continue;
    // Failed splits are absent from the bill (FACTS-partner-bills §2.3): SUCCESS receivers only.
    for (const r of o.receivers) {
      if (r.result !== 'SUCCESS') continue;
      rows.push({
        time: beijingTime(o.createdAtMs),
        initiator: tx.mchid,
        sponsor: tx.partner?.subMchid ?? tx.mchid,
        ...(tx.partner ? { subMchid: tx.partner.subMchid } : {}),
        transactionId: o.transactionId,
        orderId: o.orderId,
        outOrderNo: o.outOrderNo,
        detailId: r.detailId,
        receiverAccount: r.account,
        amountFen: r.amount,
        businessType: '分账',
        status: 'SUCCESS',
        description: r.description,
      });
    }
  }
  for (const r of ps.returns.values()) {
    const order = ps.orders.get(r.outOrderNo);
    const tx = order ? txOf(order.transactionId) : undefined;
    if (r.result !== 'SUCCESS' || !order || !tx || !inScope(tx, scope) || beijingDay(r.createdAtMs) !== day) continue;
    rows.push({
      time: beijingTime(r.createdAtMs),
      initiator: tx.mchid,
      sponsor: r.returnMchid,
      ...(tx.partner ? { subMchid: tx.partner.subMchid } : {}),
      transactionId: order.transactionId,
      orderId: r.returnId,
      outOrderNo: r.outReturnNo,
      detailId: r.returnId,
      receiverAccount: r.returnMchid,
      amountFen: r.amount,
      businessType: '分账回退',
      status: 'SUCCESS',
      description: r.description,
    });
  }
  const faults = lineFaults(store, 'profitsharing');
  rows = applyLineFaults(faults, rows, (r) => r.outOrderNo, {
    amount: (r, d) => void (r.amountFen += d),
    state: (r, s) => void (r.status = s ?? 'CLOSED'),
  });
  for (const f of faults.extra) {
    rows.push({
      time: `${day} 12:00:00`,
      initiator: ctx.opts.mchid,
      sponsor: scope.subMchid ?? ctx.opts.mchid,
      ...(scope.subMchid ? { subMchid: scope.subMchid } : {}),
      transactionId: '4200000000000000000000000000',
      orderId: `30000${Date.now()}`,
      outOrderNo: f.ref ?? `UNKNOWN${Date.now()}`,
      detailId: `36000${Date.now()}`,
      receiverAccount: '1900000999',
      amountFen: f.deltaFen ?? 100,
      businessType: '分账',
      status: 'SUCCESS',
      description: 'extra',
    });
  }
  if (rows.length === 0) return null;
  return formatProfitSharingBill(rows);
}
