/**
 * Line-by-line matching of a day's bills against our records (pure: the caller loads the records).
 * The worst case is a payment the channel billed that we never recorded (a lost notify never queried):
 * PAYMENT_MISSING_OURS. Keys are the merchant-side numbers WeChat de-duplicates on: out_trade_no,
 * out_refund_no, out_order_no + receiver account, out_return_no + receiver account.
 */
import { billCount, col, type ParsedBill, yuanToFen } from './bill.parse';

/** The detail columns the matchers (and the run's list of billed numbers) read: all a parsed row keeps. */
export const BILL_COLUMNS = {
  trade: ['交易状态', '商户订单号', '微信订单号', '订单金额', '手续费', '商户退款单号', '退款金额', '退款状态'],
  profitsharing: ['业务类型', '商户分账/回退单号', '分账接收方', '分账金额(元)', '处理状态'],
} as const;

export const BILL_MISMATCH_KINDS = [
  'PAYMENT_MISSING_OURS',
  'PAYMENT_MISSING_CHANNEL',
  'PAYMENT_AMOUNT_DIFFERS',
  'PAYMENT_STATE_DIFFERS',
  'REFUND_MISSING_OURS',
  'REFUND_MISSING_CHANNEL',
  'REFUND_AMOUNT_DIFFERS',
  'REFUND_STATE_DIFFERS',
  'SPLIT_MISSING_OURS',
  'SPLIT_MISSING_CHANNEL',
  'SPLIT_AMOUNT_DIFFERS',
  'SPLIT_STATE_DIFFERS',
  'SUMMARY_DIFFERS',
] as const;
export type BillMismatchKind = (typeof BILL_MISMATCH_KINDS)[number];

export interface BillMismatch {
  kind: BillMismatchKind;
  /** The number the line is keyed on (out_trade_no, out_refund_no, out_order_no:account). */
  ref: string;
  ours?: string;
  theirs?: string;
  detail: string;
}

/** One channel order of ours (the channel's out_trade_no is the channel order's, not the merchant's). */
export interface OurPayment {
  outTradeNo: string;
  transactionId: string | null;
  amountFen: number;
  paid: boolean;
  /** Paid (channel success time) on the bill's day: then the bill must carry it. */
  dueOnDay: boolean;
}

export interface OurRefund {
  outRefundNo: string;
  amountFen: number;
  /** Our refund status: pending | returning | processing | succeeded | failed | abnormal | closed. */
  status: string;
  /** Accepted by the channel on the bill's day: then the bill must carry it. */
  dueOnDay: boolean;
}

export interface OurSplitLine {
  /** out_order_no (split) or out_return_no (return). */
  outOrderNo: string;
  account: string;
  amountFen: number;
  kind: 'split' | 'return';
  /** SUCCESS / CLOSED / PENDING as the channel reported it to us. */
  state: string;
  dueOnDay: boolean;
}

export interface TradeBillResult {
  mismatches: BillMismatch[];
  payments: number;
  refunds: number;
  paidFen: number;
  refundedFen: number;
  /** 手续费 of the day: fees charged minus fees returned with refunds. */
  feesFen: number;
}

function matchKeyed<T, U>(
  theirs: Map<string, T>,
  ours: Map<string, U>,
  dueOnDay: (u: U) => boolean,
  compare: (ref: string, t: T, u: U | undefined) => BillMismatch | null,
  missingTheirs: (ref: string, u: U) => BillMismatch,
): BillMismatch[] {
  const out: BillMismatch[] = [];
  for (const [ref, t] of theirs) {
    const m = compare(ref, t, ours.get(ref));
    if (m) out.push(m);
  }
  for (const [ref, u] of ours) if (dueOnDay(u) && !theirs.has(ref)) out.push(missingTheirs(ref, u));
  return out;
}

const fen = (n: number) => String(n);

export function matchTradeBill(bill: ParsedBill, ours: { payments: OurPayment[]; refunds: OurRefund[] }): TradeBillResult {
  const theirPayments = new Map<string, Record<string, string>>();
  const theirRefunds = new Map<string, Record<string, string>>();
  let feesFen = 0;
  for (const row of bill.rows) {
    feesFen += yuanToFen(col(row, '手续费'));
    const state = col(row, '交易状态');
    if (state === 'REFUND') theirRefunds.set(col(row, '商户退款单号'), row);
    else theirPayments.set(col(row, '商户订单号'), row);
  }
  const payments = matchKeyed(
    theirPayments,
    new Map(ours.payments.map((p) => [p.outTradeNo, p])),
    (p) => p.dueOnDay,
    (ref, row, p) => {
      const amount = yuanToFen(col(row, '订单金额'));
      const state = col(row, '交易状态');
      if (!p) return { kind: 'PAYMENT_MISSING_OURS', ref, theirs: fen(amount), detail: `the channel billed ${state} ${col(row, '微信订单号')}; we have no such order` };
      if (!p.paid) return { kind: 'PAYMENT_STATE_DIFFERS', ref, ours: 'unpaid', theirs: state, detail: 'the channel billed a payment we have not recorded as paid' };
      // A payment line is SUCCESS; anything else (e.g. REVOKED) contradicts a payment we hold as paid.
      if (state !== 'SUCCESS') return { kind: 'PAYMENT_STATE_DIFFERS', ref, ours: 'paid', theirs: state, detail: `the channel billed the payment as ${state}` };
      if (amount !== p.amountFen) return { kind: 'PAYMENT_AMOUNT_DIFFERS', ref, ours: fen(p.amountFen), theirs: fen(amount), detail: 'order amount differs' };
      if (p.transactionId && p.transactionId !== col(row, '微信订单号'))
        return { kind: 'PAYMENT_STATE_DIFFERS', ref, ours: p.transactionId, theirs: col(row, '微信订单号'), detail: 'transaction id differs' };
      return null;
    },
    (ref, p) => ({ kind: 'PAYMENT_MISSING_CHANNEL', ref, ours: fen(p.amountFen), detail: 'we recorded a payment the channel did not bill' }),
  );
  const refunds = matchKeyed(
    theirRefunds,
    new Map(ours.refunds.map((r) => [r.outRefundNo, r])),
    (r) => r.dueOnDay,
    (ref, row, r) => {
      const amount = yuanToFen(col(row, '退款金额'));
      const state = col(row, '退款状态');
      if (!r) return { kind: 'REFUND_MISSING_OURS', ref, theirs: fen(amount), detail: `the channel billed a refund (${state}) we have no record of` };
      if (r.status === 'failed' || r.status === 'pending' || r.status === 'returning')
        return { kind: 'REFUND_STATE_DIFFERS', ref, ours: r.status, theirs: state, detail: 'the channel accepted a refund we do not consider sent' };
      // The bill keeps the state at initiation (never updated): only a refusal contradicts it, or a
      // closed/abnormal line for a refund we hold as otherwise.
      if ((state === 'CLOSED' || state === 'ABNORMAL') && r.status !== state.toLowerCase())
        return { kind: 'REFUND_STATE_DIFFERS', ref, ours: r.status, theirs: state, detail: `the channel billed the refund as ${state}` };
      if (amount !== r.amountFen) return { kind: 'REFUND_AMOUNT_DIFFERS', ref, ours: fen(r.amountFen), theirs: fen(amount), detail: 'refund amount differs' };
      return null;
    },
    (ref, r) => ({ kind: 'REFUND_MISSING_CHANNEL', ref, ours: fen(r.amountFen), detail: 'we recorded a refund the channel did not bill' }),
  );
  const mismatches = [...payments, ...refunds];
  const paidFen = [...theirPayments.values()].reduce((s, r) => s + yuanToFen(col(r, '订单金额')), 0);
  const refundedFen = [...theirRefunds.values()].reduce((s, r) => s + yuanToFen(col(r, '退款金额')), 0);
  if (bill.summary) {
    const count = billCount(col(bill.summary, '总交易单数'));
    const total = yuanToFen(col(bill.summary, '订单总金额'));
    if (count !== bill.rows.length || total !== paidFen)
      mismatches.push({ kind: 'SUMMARY_DIFFERS', ref: 'summary', ours: `${bill.rows.length} rows, ${paidFen} fen`, theirs: `${count} rows, ${total} fen`, detail: 'the summary line does not add up to the detail lines' });
  }
  return { mismatches, payments: theirPayments.size, refunds: theirRefunds.size, paidFen, refundedFen, feesFen };
}

export interface SplitBillResult {
  mismatches: BillMismatch[];
  splitFen: number;
  returnedFen: number;
}

export function matchProfitSharingBill(bill: ParsedBill, ours: OurSplitLine[]): SplitBillResult {
  const theirs = new Map<string, Record<string, string>>();
  for (const row of bill.rows) {
    const type = col(row, '业务类型');
    if (type !== '分账' && type !== '分账回退') continue; // 解冻给分账方 moves money back to the merchant: nothing of ours to match
    theirs.set(`${col(row, '商户分账/回退单号')}:${col(row, '分账接收方')}`, row);
  }
  const mismatches = matchKeyed(
    theirs,
    new Map(ours.map((l) => [`${l.outOrderNo}:${l.account}`, l])),
    (l) => l.dueOnDay && l.state === 'SUCCESS',
    (ref, row, l) => {
      const amount = yuanToFen(col(row, '分账金额(元)'));
      if (!l) return { kind: 'SPLIT_MISSING_OURS', ref, theirs: fen(amount), detail: `the channel billed a ${col(row, '业务类型')} line we have no record of` };
      const status = col(row, '处理状态');
      if (status !== 'SUCCESS') return { kind: 'SPLIT_STATE_DIFFERS', ref, ours: l.state, theirs: status, detail: `the channel billed the line as ${status}` };
      if (l.state !== 'SUCCESS') return { kind: 'SPLIT_STATE_DIFFERS', ref, ours: l.state, theirs: 'SUCCESS', detail: 'the channel billed as succeeded a line we hold as not succeeded' };
      if (amount !== l.amountFen) return { kind: 'SPLIT_AMOUNT_DIFFERS', ref, ours: fen(l.amountFen), theirs: fen(amount), detail: 'amount differs' };
      return null;
    },
    (ref, l) => ({ kind: 'SPLIT_MISSING_CHANNEL', ref, ours: fen(l.amountFen), detail: `we recorded a succeeded ${l.kind} the channel did not bill` }),
  );
  let splitFen = 0;
  let returnedFen = 0;
  for (const row of theirs.values()) {
    const a = yuanToFen(col(row, '分账金额(元)'));
    if (col(row, '业务类型') === '分账') splitFen += a;
    else returnedFen += a;
  }
  return { mismatches, splitFen, returnedFen };
}
