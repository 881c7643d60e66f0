/**
 * /v3/refund/domestic/refunds of the WeChat Pay stand-in, and the merchant's balances.
 * https://pay.weixin.qq.com/doc/v3/merchant/4012791862 (申请退款), 4012791863 (查询单笔退款), 4012791865 (退款结果通知).
 *
 * Money model (FACTS §5–§6, SKILLS 分账接入指南.md):
 *   - a payment without profit sharing goes to the merchant's AVAILABLE balance;
 *   - a profit-sharing payment is FROZEN: splits move it to receivers' balances, an unfreeze (or the end
 *     of the split window) moves the remainder to AVAILABLE;
 *   - a refund is taken from the payment's still-frozen funds first, the rest from AVAILABLE; frozen funds
 *     of OTHER payments never pay it. Not enough → 403 NOT_ENOUGH and nothing changes;
 *   - a successful return order moves money from the receiver back to AVAILABLE.
 * Fees are not modelled. Mounted behind the core's auth + fault middleware (req.body is parsed JSON).
 */
import express from 'express';
import { z } from 'zod';
import type { SimContext, SimTransaction } from '../context';
import { checkNotifyUrl, ParamError } from '../payments/validate';
import { committedAmount, getStore, remainderReleased, settle, toCst } from '../profitsharing/store';
import type { SimRuntime } from '../runtime';
import { checkOrderSub } from '../partner/bindings';
import { getLedger, holdsMoney, refundedFromFrozen, refundedTotal, resetLedger, type RefundStatus, type SimRefund } from './ledger';

type Outcome = { ok: true; status: number; body: unknown } | { ok: false; status: number; code: string; message: string };
const ok = (body: unknown): Outcome => ({ ok: true, status: 200, body });
const err = (status: number, code: string, message: string): Outcome => ({ ok: false, status, code, message });

const REFUND_WINDOW_MS = 365 * 86_400_000;
const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;

const refundSchema = z.strictObject({
  /** Service-provider mode: "服务商模式下必须传递此参数" (FACTS-partner-bills §1.7). */
  sub_mchid: z.string().min(1).max(32).optional(),
  transaction_id: z.string().min(1).max(32).optional(),
  out_trade_no: z.string().min(6).max(32).optional(),
  out_refund_no: z.string().regex(OUT_REFUND_NO, 'out_refund_no 格式不正确'),
  reason: z.string().max(80).optional(),
  notify_url: z.string().min(1).max(256).optional(),
  funds_account: z.enum(['AVAILABLE', 'UNSETTLED']).optional(),
  amount: z.strictObject({
    refund: z.number().int().min(1),
    total: z.number().int().min(1),
    currency: z.literal('CNY'),
    from: z.array(z.object({ account: z.enum(['AVAILABLE', 'UNAVAILABLE']), amount: z.number().int().min(1) })).optional(),
  }),
  goods_detail: z.array(z.unknown()).optional(),
});

const SUMMARY: Record<Exclude<RefundStatus, 'PROCESSING'>, string> = { SUCCESS: '退款成功', CLOSED: '退款关闭', ABNORMAL: '退款异常' };

/** The merchant's AVAILABLE balance, derived from every payment, unfreeze, return and refund. */
export function availableBalance(ctx: SimContext): number {
  const ps = getStore(ctx);
  settle(ctx, ps);
  const ledger = getLedger(ctx);
  let sum = ledger.availableAdjustment;
  for (const tx of ctx.transactions.byTransactionId.values()) {
    if (tx.state !== 'SUCCESS' && tx.state !== 'REFUND') continue;
    if (!tx.profitSharing) sum += tx.amountTotal;
    else if (remainderReleased(ctx, ps, tx)) sum += tx.amountTotal - committedAmount(ps, tx.transactionId!) - refundedFromFrozen(ctx, tx.transactionId!);
  }
  for (const r of ps.returns.values()) if (r.result === 'SUCCESS') sum += r.amount;
  for (const r of ledger.refunds.values()) if (holdsMoney(r)) sum -= r.fromAvailable;
  return sum;
}

/** The payment's funds still frozen for profit sharing (0 for other payments). */
export function frozenOf(ctx: SimContext, tx: SimTransaction): number {
  if (!tx.profitSharing || !tx.transactionId) return 0;
  const ps = getStore(ctx);
  settle(ctx, ps);
  if (remainderReleased(ctx, ps, tx)) return 0;
  return Math.max(0, tx.amountTotal - committedAmount(ps, tx.transactionId) - refundedFromFrozen(ctx, tx.transactionId));
}

export function refundView(r: SimRefund): Record<string, unknown> {
  return {
    refund_id: r.refundId,
    out_refund_no: r.outRefundNo,
    transaction_id: r.transactionId,
    out_trade_no: r.outTradeNo,
    channel: 'ORIGINAL',
    user_received_account: '支付用户零钱',
    ...(r.successAtMs !== undefined ? { success_time: toCst(r.successAtMs) } : {}),
    create_time: toCst(r.createdAtMs),
    status: r.status,
    funds_account: r.fromFrozen > 0 ? 'UNAVAILABLE' : 'AVAILABLE',
    amount: {
      total: r.total,
      refund: r.refund,
      from: [],
      payer_total: r.total,
      payer_refund: r.refund,
      settlement_refund: r.refund,
      settlement_total: r.total,
      discount_refund: 0,
      currency: 'CNY',
      refund_fee: 0,
    },
  };
}

/**
 * The decrypted resource of REFUND.* notifies (退款结果通知). Partner refunds carry sp_mchid and sub_mchid
 * (FACTS-partner-bills §1.7, from the notify's field table); CHOSEN: instead of mchid, as in the partner
 * payment notify (the table's JSON example still shows mchid: UNCONFIRMED).
 */
function notifyResource(r: SimRefund, mchid: string): Record<string, unknown> {
  return {
    ...(r.subMchid ? { sp_mchid: mchid, sub_mchid: r.subMchid } : { mchid }),
    out_trade_no: r.outTradeNo,
    transaction_id: r.transactionId,
    out_refund_no: r.outRefundNo,
    refund_id: r.refundId,
    refund_status: r.status,
    ...(r.successAtMs !== undefined ? { success_time: toCst(r.successAtMs) } : {}),
    user_received_account: '支付用户零钱',
    amount: { total: r.total, refund: r.refund, payer_total: r.total, payer_refund: r.refund },
  };
}

/** Applies the planned outcome of every refund that is due, sending its notify once. */
export function settleRefunds(rt: SimRuntime): void {
  const now = rt.now();
  for (const r of getLedger(rt).refunds.values()) {
    if (r.status !== 'PROCESSING' || now < r.dueAtMs) continue;
    r.status = r.planned;
    if (r.status === 'SUCCESS') r.successAtMs = r.dueAtMs;
    if (r.notifyUrl)
      rt.notifier.send({ url: r.notifyUrl, eventType: `REFUND.${r.status}`, summary: SUMMARY[r.planned], originalType: 'refund', resource: notifyResource(r, rt.opts.mchid), ref: r.outRefundNo });
  }
}

function createRefund(rt: SimRuntime, body: unknown): Outcome {
  settleRefunds(rt);
  const parsed = refundSchema.safeParse(body);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return err(400, 'PARAM_ERROR', `输入源"/body/${i?.path.join('/')}"映射到字段失败：${i?.message ?? ''}`);
  }
  const b = parsed.data;
  if (!b.transaction_id && !b.out_trade_no) return err(400, 'PARAM_ERROR', 'transaction_id和out_trade_no必须二选一'); // UNVERIFIED wording
  if (b.notify_url !== undefined) {
    try {
      checkNotifyUrl(b.notify_url, rt.notifyUrlPolicy);
    } catch (e) {
      if (e instanceof ParamError) return err(400, 'PARAM_ERROR', e.message);
      throw e;
    }
  }
  // out_trade_no is unique per sp_mchid across its sub-merchants (the store), then the sub-merchant must be the order's.
  const tx = b.transaction_id ? rt.transactions.byTransactionId.get(b.transaction_id) : rt.transactions.byOutTradeNo.get(b.out_trade_no!);
  if (!tx || (b.out_trade_no && tx.outTradeNo !== b.out_trade_no)) return err(404, 'RESOURCE_NOT_EXISTS', '订单不存在');
  const wrongSub = checkOrderSub(rt, tx, b.sub_mchid);
  if (wrongSub) return wrongSub;
  const ledger = getLedger(rt);
  const fingerprint = JSON.stringify([b.sub_mchid ?? null, tx.transactionId, b.amount.refund, b.amount.total, b.reason ?? '']);
  const existing = ledger.refunds.get(b.out_refund_no);
  if (existing) {
    // Same out_refund_no = the same refund (idempotent re-entry); other parameters are refused.
    if (existing.fingerprint === fingerprint) return ok(refundView(existing));
    return err(400, 'INVALID_REQUEST', '商户退款单号重复，且与原退款请求参数不一致'); // UNVERIFIED wording
  }
  if (tx.state !== 'SUCCESS' && tx.state !== 'REFUND') return err(400, 'INVALID_REQUEST', '订单未支付，不能退款'); // UNVERIFIED wording
  const now = rt.now();
  const paidAt = tx.paidAtMs ?? tx.createdAtMs;
  if (now - paidAt > REFUND_WINDOW_MS) return err(400, 'INVALID_REQUEST', '订单已超过可退款的最大期限'); // 1 year (SKILLS 订单状态流转.md); wording UNVERIFIED
  if (b.amount.total !== tx.amountTotal) return err(400, 'INVALID_REQUEST', '订单金额或退款金额与之前请求不一致，请核实后再试'); // wording seen in community threads, UNVERIFIED code
  // Verified wording (developers.weixin.qq.com 000c86698204e078e252aef9561000).
  if (refundedTotal(rt, tx.transactionId!) + b.amount.refund > tx.amountTotal) return err(400, 'INVALID_REQUEST', '申请退款金额超过订单可退金额');

  const fromFrozen = Math.min(b.amount.refund, frozenOf(rt, tx));
  const fromAvailable = b.amount.refund - fromFrozen;
  // Verified code and wording (community threads: "NOTENOUGH 基本账户余额不足，请充值后重新发起"); HTTP 403 UNVERIFIED.
  if (fromAvailable > 0 && availableBalance(rt) < fromAvailable) return err(403, 'NOT_ENOUGH', '基本账户余额不足，请充值后重新发起');

  ledger.seq += 1;
  const r: SimRefund = {
    refundId: `50300${String(now).slice(-10)}${String(ledger.seq).padStart(14, '0')}`,
    ...(tx.partner ? { subMchid: tx.partner.subMchid } : {}),
    outRefundNo: b.out_refund_no,
    transactionId: tx.transactionId!,
    outTradeNo: tx.outTradeNo,
    reason: b.reason,
    notifyUrl: b.notify_url,
    total: b.amount.total,
    refund: b.amount.refund,
    fromFrozen,
    fromAvailable,
    status: 'PROCESSING',
    planned: ledger.nextOutcomes.shift() ?? 'SUCCESS',
    fingerprint,
    createdAtMs: now,
    dueAtMs: now + (rt.opts.refundResultDelayMs ?? 1_000),
  };
  ledger.refunds.set(r.outRefundNo, r);
  // The result (and its notify) comes by itself when due, even if nobody queries. A timer may fire a
  // little before the clock reads due (Node starts it from the loop's cached time, which a long tick
  // leaves behind): then it is armed again for what is left, or the refund stayed PROCESSING for good.
  const arm = (ms: number) => {
    const t = setTimeout(() => {
      ledger.timers.delete(t);
      settleRefunds(rt);
      if (r.status === 'PROCESSING') arm(Math.max(1, r.dueAtMs - rt.now()));
    }, ms);
    t.unref?.();
    ledger.timers.add(t);
  };
  arm(Math.max(0, r.dueAtMs - now));
  return ok(refundView(r));
}

function queryRefund(rt: SimRuntime, outRefundNo: string, subMchid: unknown): Outcome {
  settleRefunds(rt);
  const r = getLedger(rt).refunds.get(outRefundNo);
  if (!r) return err(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
  // Partner query: ?sub_mchid= of the refund's order (FACTS-partner-bills §1.7).
  const sub = typeof subMchid === 'string' && subMchid !== '' ? subMchid : undefined;
  return checkOrderSub(rt, r.subMchid ? { partner: { subMchid: r.subMchid } } : {}, sub) ?? ok(refundView(r));
}

export function createRefundsRouter(rt: SimRuntime): express.Router {
  const router = express.Router();
  const send = (res: express.Response, o: Outcome) => (o.ok ? rt.reply(res, o.status, o.body) : rt.fail(res, o.status, o.code, o.message));
  router.post('/refunds', (req, res) => send(res, createRefund(rt, req.body)));
  router.get('/refunds/:out_refund_no', (req, res) => send(res, queryRefund(rt, String(req.params.out_refund_no), req.query.sub_mchid)));
  return router;
}

export interface RefundControl {
  /** The next `n` refunds accepted end ABNORMAL or CLOSED instead of SUCCESS. */
  nextOutcome(outcome: 'ABNORMAL' | 'CLOSED', n?: number): void;
  /** Sets the merchant's available balance to exactly `fen` (as if money was withdrawn or topped up). */
  setAvailableBalance(fen: number): void;
  availableBalance(): number;
  frozen(transactionId: string): number | undefined;
  refunds(): Array<Record<string, unknown>>;
  reset(): void;
}

export function refundControl(rt: SimRuntime): RefundControl {
  return {
    nextOutcome: (outcome, n = 1) => void getLedger(rt).nextOutcomes.push(...Array.from({ length: n }, () => outcome)),
    setAvailableBalance(fen) {
      getLedger(rt).availableAdjustment += fen - availableBalance(rt);
    },
    availableBalance: () => availableBalance(rt),
    frozen(transactionId) {
      const tx = rt.transactions.byTransactionId.get(transactionId);
      return tx ? frozenOf(rt, tx) : undefined;
    },
    refunds() {
      settleRefunds(rt);
      return [...getLedger(rt).refunds.values()].map((r) => refundView(r));
    },
    reset: () => resetLedger(rt),
  };
}

/** HTTP controls at /_sim/refunds: POST /next-outcome {outcome, n?}, POST /balance {available}, GET /balance, GET /refunds. */
export function createRefundControlRouter(rt: SimRuntime): express.Router {
  const r = express.Router();
  const c = refundControl(rt);
  r.use(express.json());
  r.post('/next-outcome', (req, res) => {
    const p = z.strictObject({ outcome: z.enum(['ABNORMAL', 'CLOSED']), n: z.number().int().min(1).max(100).optional() }).safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: p.error.issues[0]?.message });
    c.nextOutcome(p.data.outcome, p.data.n);
    res.json({ ok: true });
  });
  r.post('/balance', (req, res) => {
    const p = z.strictObject({ available: z.number().int() }).safeParse(req.body);
    if (!p.success) return res.status(400).json({ error: p.error.issues[0]?.message });
    c.setAvailableBalance(p.data.available);
    res.json({ available: c.availableBalance() });
  });
  r.get('/balance', (_req, res) => res.json({ available: c.availableBalance() }));
  r.get('/refunds', (_req, res) => res.json({ refunds: c.refunds() }));
  return r;
}
