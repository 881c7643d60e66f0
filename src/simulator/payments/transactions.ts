/** Transaction shape (query answer and notify plaintext) and the act of paying. */
import { createHmac } from 'node:crypto';
import type { SimTransaction } from '../context';
import { randomDigits, rfc3339Beijing, nowBeijingCompact } from '../sim-crypto';
import type { SimRuntime } from '../runtime';

const STATE_DESC: Record<SimTransaction['state'], string> = {
  NOTPAY: '订单未支付',
  SUCCESS: '支付成功',
  CLOSED: '订单已关闭',
  REFUND: '转入退款',
};

/** WXIM query answer. Unpaid/closed orders carry no transaction_id, success_time or bank_type. */
export function transactionView(tx: SimTransaction): Record<string, unknown> {
  const paid = tx.state === 'SUCCESS' || tx.state === 'REFUND';
  const view: Record<string, unknown> = {
    appid: tx.appid,
    mchid: tx.mchid,
    out_trade_no: tx.outTradeNo,
    trade_state: tx.state,
    trade_state_desc: STATE_DESC[tx.state],
    attach: tx.attach ?? '',
    payer: paid && tx.payerOpenid ? { openid: tx.payerOpenid } : {},
    amount: paid
      ? { total: tx.amountTotal, payer_total: tx.payerTotal ?? tx.amountTotal, currency: tx.currency, payer_currency: 'CNY' }
      : { total: tx.amountTotal, currency: tx.currency, payer_currency: 'CNY' },
  };
  if (tx.partner) {
    // FACTS-partner-bills §1.5/§1.6: partner answers name sp_* and sub_*; sub_appid / sub_openid only if sent.
    delete view.appid;
    delete view.mchid;
    view.sp_appid = tx.appid;
    view.sp_mchid = tx.mchid;
    view.sub_mchid = tx.partner.subMchid;
    if (tx.partner.subAppid) view.sub_appid = tx.partner.subAppid;
    view.payer = paid && tx.payerOpenid ? (tx.partner.subOpenid ? { sub_openid: tx.payerOpenid } : { sp_openid: tx.payerOpenid }) : {};
  }
  if (paid) {
    view.transaction_id = tx.transactionId;
    view.trade_type = tx.tradeType === 'H5' ? 'MWEB' : tx.tradeType;
    view.bank_type = 'OTHERS';
    view.success_time = tx.successTime;
    const discount = tx.amountTotal - (tx.payerTotal ?? tx.amountTotal);
    if (discount > 0) {
      view.promotion_detail = [
        {
          coupon_id: '109519',
          name: '模拟器优惠券',
          scope: 'GLOBAL',
          // 免充值券 (NOCASH): funded by the merchant, so it lowers what the merchant settles and can split.
          type: 'NOCASH',
          amount: discount,
          stock_id: '8' + tx.transactionId!.slice(-7),
          wechatpay_contribute: 0,
          merchant_contribute: discount,
          other_contribute: 0,
          currency: 'CNY',
        },
      ];
    }
  }
  return view;
}

/** A stable openid for `appid` and a browser/user key (28 chars starting with "o", like WeChat's). */
export function openidFor(rt: SimRuntime, appid: string, userKey: string): string {
  const d = createHmac('sha256', rt.userSecret).update(`${appid}\n${userKey}`).digest('base64url');
  const openid = 'o' + d.slice(0, 27);
  rt.openidApps.set(openid, appid);
  return openid;
}

export type PayOutcome = { ok: true; tx: SimTransaction } | { ok: false; status: number; reason: string };

/** Marks the order paid and sends TRANSACTION.SUCCESS; refuses what WeChat's cashier would refuse. */
export function payTransaction(rt: SimRuntime, tx: SimTransaction, o: { payerTotal?: number; openid?: string } = {}): PayOutcome {
  if (tx.state === 'SUCCESS' || tx.state === 'REFUND') return { ok: false, status: 409, reason: '该订单已支付' };
  if (tx.state === 'CLOSED') return { ok: false, status: 409, reason: '该订单已关闭' };
  const now = rt.now();
  const expireMs = tx.expireAtMs ?? (tx.timeExpire ? Date.parse(tx.timeExpire) : tx.createdAtMs + 7 * 86400_000);
  if (now > expireMs) return { ok: false, status: 409, reason: '订单已过期，请重新下单' };
  const payerTotal = o.payerTotal ?? tx.amountTotal;
  if (!Number.isInteger(payerTotal) || payerTotal < 1 || payerTotal > tx.amountTotal)
    return { ok: false, status: 400, reason: 'payer_total 必须是 1..total 的整数' };

  tx.state = 'SUCCESS';
  tx.transactionId = `4200${nowBeijingCompact(now).slice(0, 8)}${randomDigits(16)}`;
  tx.successTime = rfc3339Beijing(now);
  tx.paidAtMs = now;
  tx.payerTotal = payerTotal;
  tx.payerOpenid = o.openid ?? tx.payerOpenid ?? openidFor(rt, tx.appid, 'default-payer');
  rt.transactions.byTransactionId.set(tx.transactionId, tx);
  rt.notifier.send({
    url: tx.notifyUrl,
    eventType: 'TRANSACTION.SUCCESS',
    summary: '支付成功',
    originalType: 'transaction',
    resource: transactionView(tx),
    ref: tx.outTradeNo,
  });
  return { ok: true, tx };
}
