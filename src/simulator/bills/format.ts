/**
 * Bill files (对账单) in the channel's CSV format, built from the simulator's own records.
 * FACTS-partner-bills.md §2.6–2.8: UTF-8 with BOM, CRLF with a final CRLF, header lines plain, every
 * detail and summary field prefixed with a backtick, no quoting; amounts in yuan with 2 decimals,
 * 手续费 with 5, 费率 as `0.60%`. Refunds are rows of their own, timed at initiation.
 *
 * The simulator shares no code with the gateway's parser (src/modules/reconciliation/): two readings
 * of the same format catch each other's mistakes.
 */

export type TradeBillType = 'ALL' | 'SUCCESS' | 'REFUND';

export interface BillPaymentRow {
  /** Pay-success time, Beijing, `yyyy-MM-dd HH:mm:ss`. */
  time: string;
  appid: string;
  mchid: string;
  /** Sub-merchant in service-provider mode; '0' in direct mode. */
  subMchid?: string;
  transactionId: string;
  outTradeNo: string;
  openid: string;
  tradeType: string;
  bankType: string;
  /** amount.total, fen. */
  totalFen: number;
  /** Merchant-funded (免充值) coupon, fen: 应结订单金额 = total − it. */
  couponFen: number;
  feeFen: number;
  /** Basis points ×100 would be odd; WeChat prints the rate as a percentage: 60 = 0.60%. */
  feeRateBp: number;
  description: string;
  attach: string;
  /** 交易状态; SUCCESS unless a fault control alters it. */
  tradeState?: string;
}

export interface BillRefundRow {
  /** Refund initiation time (not success time), Beijing. */
  time: string;
  payment: BillPaymentRow;
  refundId: string;
  outRefundNo: string;
  refundFen: number;
  /** Fee returned with the refund, fen (printed negative). */
  feeReturnedFen: number;
  refundType: string;
  refundState: string;
  /** Refund success time, Beijing; '' while not succeeded (REFUND bills only). */
  successTime: string;
}

const BOM = '\uFEFF';
const CRLF = '\r\n';

export const TRADE_HEADERS: Record<TradeBillType, string[]> = {
  ALL: '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注'.split(','),
  SUCCESS: '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注'.split(','),
  REFUND: '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注'.split(','),
};

const SUMMARY_ALL = '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额'.split(',');
const SUMMARY_SUCCESS = '总交易单数,应结订单总金额,手续费总金额,订单总金额'.split(',');

/** 1234 → "12.34"; negative allowed. */
export function yuan(fen: number, decimals = 2): string {
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  const s = `${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
  return sign + s + '0'.repeat(decimals - 2);
}

const rate = (bp: number) => `${Math.floor(bp / 100)}.${String(bp % 100).padStart(2, '0')}%`;

/** WeChat escapes no field; a comma or line break inside one would break the file, so we replace them (inferred). */
const clean = (s: string) => s.replace(/[,\r\n`]/g, ' ');

function line(fields: string[]): string {
  return fields.map((f) => '`' + f).join(',');
}

function paymentFields(p: BillPaymentRow): Record<string, string> {
  return {
    交易时间: p.time,
    公众账号ID: p.appid,
    商户号: p.mchid,
    特约商户号: p.subMchid ?? '0',
    设备号: '',
    微信订单号: p.transactionId,
    商户订单号: p.outTradeNo,
    用户标识: p.openid,
    交易类型: p.tradeType,
    交易状态: p.tradeState ?? 'SUCCESS',
    付款银行: p.bankType,
    货币种类: 'CNY',
    应结订单金额: yuan(p.totalFen - p.couponFen),
    代金券金额: yuan(p.couponFen),
    微信退款单号: '0',
    商户退款单号: '0',
    退款金额: '0.00',
    充值券退款金额: '0.00',
    退款类型: '',
    退款状态: '',
    退款申请时间: '',
    退款成功时间: '',
    商品名称: clean(p.description),
    商户数据包: clean(p.attach),
    手续费: yuan(p.feeFen, 5),
    费率: rate(p.feeRateBp),
    订单金额: yuan(p.totalFen),
    申请退款金额: '0.00',
    费率备注: '',
  };
}

function refundFields(r: BillRefundRow): Record<string, string> {
  return {
    ...paymentFields(r.payment),
    交易时间: r.time,
    交易状态: 'REFUND',
    应结订单金额: '0.00',
    代金券金额: '0.00',
    微信退款单号: r.refundId,
    商户退款单号: r.outRefundNo,
    退款金额: yuan(r.refundFen),
    充值券退款金额: '0.00',
    退款类型: r.refundType,
    退款状态: r.refundState,
    退款申请时间: r.time,
    退款成功时间: r.successTime,
    手续费: yuan(-r.feeReturnedFen, 5),
    订单金额: '0.00',
    申请退款金额: yuan(r.refundFen),
  };
}

/** The trade bill of one day: detail header, rows by time, summary header, one summary row. */
export function formatTradeBill(billType: TradeBillType, payments: BillPaymentRow[], refunds: BillRefundRow[]): string {
  const header = TRADE_HEADERS[billType];
  const rows: Array<{ time: string; fields: Record<string, string> }> = [];
  if (billType !== 'REFUND') for (const p of payments) rows.push({ time: p.time, fields: paymentFields(p) });
  if (billType !== 'SUCCESS') for (const r of refunds) rows.push({ time: r.time, fields: refundFields(r) });
  rows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));

  const settled = billType === 'REFUND' ? 0 : payments.reduce((s, p) => s + p.totalFen - p.couponFen, 0);
  const ordered = billType === 'REFUND' ? 0 : payments.reduce((s, p) => s + p.totalFen, 0);
  const refunded = billType === 'SUCCESS' ? 0 : refunds.reduce((s, r) => s + r.refundFen, 0);
  const fees =
    (billType === 'REFUND' ? 0 : payments.reduce((s, p) => s + p.feeFen, 0)) -
    (billType === 'SUCCESS' ? 0 : refunds.reduce((s, r) => s + r.feeReturnedFen, 0));
  const summaryHeader = billType === 'SUCCESS' ? SUMMARY_SUCCESS : SUMMARY_ALL;
  const summaryValues: Record<string, string> = {
    总交易单数: String(rows.length),
    应结订单总金额: yuan(settled),
    退款总金额: yuan(refunded),
    充值券退款总金额: '0.00',
    手续费总金额: yuan(fees, 5),
    订单总金额: yuan(ordered),
    申请退款总金额: yuan(refunded),
  };
  const out = [header.join(','), ...rows.map((r) => line(header.map((h) => r.fields[h] ?? ''))), summaryHeader.join(','), line(summaryHeader.map((h) => summaryValues[h]!))];
  return BOM + out.join(CRLF) + CRLF;
}

export interface BillSplitRow {
  /** Beijing time the split (or return) was created. */
  time: string;
  /** The merchant that initiated it (the mchid), or 'system' for an overdue unfreeze. */
  initiator: string;
  /** The payer of the split: the merchant whose funds were frozen. */
  sponsor: string;
  subMchid?: string;
  transactionId: string;
  /** order_id (split) or return_id (return). */
  orderId: string;
  /** out_order_no (split) or out_return_no (return). */
  outOrderNo: string;
  detailId: string;
  receiverAccount: string;
  amountFen: number;
  businessType: '分账' | '分账回退' | '解冻给分账方';
  /** Always SUCCESS (failed splits are not billed) unless a fault control alters it. */
  status: string;
  description: string;
}

/**
 * The domestic profit-sharing bill's columns are UNCONFIRMED (FACTS-partner-bills.md §2.8: only an xlsx
 * sample exists). CHOSEN: the cross-border bill's columns in the domestic bills' Chinese naming style.
 * Only successful rows are billed ("failed splits are absent"), one per receiver of a split or return.
 * The gateway parses by header name, so a different real order does not break it.
 */
export const SPLIT_HEADER = '分账发起时间,分账发起方,分账出资方,特约商户号,微信订单号,微信分账/回退单号,商户分账/回退单号,分账明细单号,分账接收方,分账金额(元),业务类型,处理状态,分账描述'.split(',');
const SPLIT_SUMMARY = '分账成功总笔数,分账成功总金额(元),分账回退总笔数,分账回退总金额(元)'.split(',');

export function formatProfitSharingBill(rows: BillSplitRow[]): string {
  const sorted = [...rows].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  const detail = sorted.map((r) =>
    line([r.time, r.initiator, r.sponsor, r.subMchid ?? '0', r.transactionId, r.orderId, r.outOrderNo, r.detailId, r.receiverAccount, yuan(r.amountFen), r.businessType, r.status, clean(r.description)]),
  );
  const splits = sorted.filter((r) => r.businessType === '分账');
  const returns = sorted.filter((r) => r.businessType === '分账回退');
  const summary = line([String(splits.length), yuan(splits.reduce((s, r) => s + r.amountFen, 0)), String(returns.length), yuan(returns.reduce((s, r) => s + r.amountFen, 0))]);
  return BOM + [SPLIT_HEADER.join(','), ...detail, SPLIT_SUMMARY.join(','), summary].join(CRLF) + CRLF;
}
