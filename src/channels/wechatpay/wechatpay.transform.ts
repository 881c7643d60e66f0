import type {
  ChannelRefund,
  ChannelReturnOrder,
  ChannelTransaction,
  CreateOrderInput,
  SplitOrderResult,
} from '../channel';
import { utf8Bytes } from '../../lib/utf8';
import { invalidInput } from './wechatpay.errors';
import type { WireOrderRequest, WireRefund, WireSplitOrder, WireTransaction } from './wechatpay.wire';
import type { z } from 'zod';
import type { returnOrderSchema } from './wechatpay.wire';

/** Normalised types (channel.ts) ⇄ WeChat wire types. Pure functions. */

const CHINA_OFFSET_MS = 8 * 3600 * 1000;

/** RFC 3339 in +08:00, seconds precision (e.g. 2026-11-25T18:00:00+08:00), as WeChat documents time_expire. */
export function toRfc3339China(d: Date): string {
  if (Number.isNaN(d.getTime())) throw invalidInput('invalid date');
  return `${new Date(d.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 19)}+08:00`;
}

const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;

export function toWireOrderRequest(input: CreateOrderInput, ids: { appid: string; mchid: string }): WireOrderRequest {
  if (!OUT_TRADE_NO.test(input.outTradeNo)) throw invalidInput('out_trade_no must be 6–32 of [0-9A-Za-z_-|*]');
  if (!Number.isSafeInteger(input.amountFen) || input.amountFen < 1) throw invalidInput('amountFen must be an integer ≥ 1');
  // string(127) / string(128) are BYTES of UTF-8 at WeChat (a Chinese character is 3).
  if (input.description.length === 0 || utf8Bytes(input.description) > 127) throw invalidInput('description must be 1–127 bytes of UTF-8');
  if (input.attach !== undefined && utf8Bytes(input.attach) > 128) throw invalidInput('attach must be at most 128 bytes of UTF-8');
  const body: WireOrderRequest = {
    appid: ids.appid,
    mchid: ids.mchid,
    description: input.description,
    out_trade_no: input.outTradeNo,
    time_expire: toRfc3339China(input.expiresAt),
    notify_url: input.notifyUrl,
    amount: { total: input.amountFen, currency: 'CNY' },
    settle_info: { profit_sharing: input.profitSharing },
  };
  if (input.attach !== undefined) body.attach = input.attach;
  switch (input.tradeType) {
    case 'JSAPI':
      if (!input.payerOpenid) throw invalidInput('payerOpenid is required for JSAPI');
      body.payer = { openid: input.payerOpenid };
      if (input.payerClientIp) body.scene_info = { payer_client_ip: input.payerClientIp };
      break;
    case 'H5':
      // h5_info.type is required; 'Wap' = mobile web (FACTS §1).
      if (!input.payerClientIp) throw invalidInput('payerClientIp (the real client IP) is required for H5');
      body.scene_info = { payer_client_ip: input.payerClientIp, h5_info: { type: 'Wap' } };
      break;
    case 'NATIVE':
      if (input.payerClientIp) body.scene_info = { payer_client_ip: input.payerClientIp };
      break;
  }
  return body;
}

function parseTime(s: string | undefined): Date | undefined {
  if (!s) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function toChannelTransaction(w: WireTransaction): ChannelTransaction {
  const t: ChannelTransaction = {
    appid: w.appid,
    mchid: w.mchid,
    outTradeNo: w.out_trade_no,
    tradeState: w.trade_state,
  };
  if (w.transaction_id !== undefined) t.transactionId = w.transaction_id;
  if (w.trade_type !== undefined) t.tradeType = w.trade_type;
  const successTime = parseTime(w.success_time);
  if (successTime) t.successTime = successTime;
  if (w.amount?.total !== undefined) t.amountTotalFen = w.amount.total;
  if (w.amount?.payer_total !== undefined) t.payerTotalFen = w.amount.payer_total;
  if (w.amount?.currency !== undefined) t.currency = w.amount.currency;
  const funded = merchantFundedFen(w);
  if (funded !== undefined) t.merchantFundedFen = funded;
  if (w.payer?.openid !== undefined) t.payerOpenid = w.payer.openid;
  if (w.attach !== undefined) t.attach = w.attach;
  return t;
}

/**
 * What the merchant funded of the discounts, which never reaches its balance and so cannot be split
 * (免充值券 lowers the settlement; 可分金额 = 订单金额 − 手续费 − such coupons). Safe under both readings of
 * CASH coupons: every merchant_contribute counts; without a breakdown, total − payer_total counts whole.
 */
export function merchantFundedFen(w: WireTransaction): number | undefined {
  if (w.promotion_detail && w.promotion_detail.length > 0) {
    return w.promotion_detail.reduce((s, p) => s + (p.merchant_contribute ?? (p.wechatpay_contribute === undefined && p.other_contribute === undefined ? p.amount ?? 0 : 0)), 0);
  }
  if (w.amount?.total !== undefined && w.amount.payer_total !== undefined && w.amount.payer_total < w.amount.total) return w.amount.total - w.amount.payer_total;
  return undefined;
}

export function toSplitOrderResult(w: WireSplitOrder): SplitOrderResult {
  return {
    transactionId: w.transaction_id,
    outOrderNo: w.out_order_no,
    orderId: w.order_id,
    state: w.state,
    receivers: (w.receivers ?? []).map((r) => {
      const out: SplitOrderResult['receivers'][number] = {
        type: r.type,
        account: r.account,
        amountFen: r.amount,
        description: r.description,
        result: r.result,
      };
      if (r.fail_reason !== undefined) out.failReason = r.fail_reason;
      if (r.detail_id !== undefined) out.detailId = r.detail_id;
      if (r.create_time !== undefined) out.createTime = r.create_time;
      if (r.finish_time !== undefined) out.finishTime = r.finish_time;
      return out;
    }),
  };
}

/** The answer's `status` or the notify's `refund_status` (the schema callers require one of them). */
export function toChannelRefund(w: WireRefund): ChannelRefund {
  const r: ChannelRefund = { outRefundNo: w.out_refund_no, refundId: w.refund_id, status: (w.refund_status ?? w.status)! };
  if (w.transaction_id !== undefined) r.transactionId = w.transaction_id;
  if (w.out_trade_no !== undefined) r.outTradeNo = w.out_trade_no;
  if (w.amount?.refund !== undefined) r.refundFen = w.amount.refund;
  if (w.amount?.total !== undefined) r.totalFen = w.amount.total;
  const t = parseTime(w.success_time);
  if (t) r.successTime = t;
  if (w.user_received_account !== undefined) r.userReceivedAccount = w.user_received_account;
  return r;
}

export function toChannelReturnOrder(w: z.infer<typeof returnOrderSchema>): ChannelReturnOrder {
  const r: ChannelReturnOrder = { outOrderNo: w.out_order_no, outReturnNo: w.out_return_no, returnMchid: w.return_mchid, amountFen: w.amount, result: w.result };
  if (w.return_id !== undefined) r.returnId = w.return_id;
  if (w.fail_reason !== undefined) r.failReason = w.fail_reason;
  return r;
}
