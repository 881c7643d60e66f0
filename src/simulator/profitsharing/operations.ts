/**
 * The profit-sharing operations, independent of Express: each takes the parsed request and answers an
 * Outcome (a WeChat answer or a WeChat error). Error codes/messages: "verified" cites where WeChat was seen
 * answering exactly that; everything else is a sensible choice, marked UNVERIFIED.
 */
import type { KeyObject } from 'node:crypto';
import type { Request } from 'express';
import type { z } from 'zod';
import type { SimContext } from '../context';
import type { SimRuntime } from '../runtime';
import {
  addReceiverSchema,
  createOrderSchema,
  deleteReceiverSchema,
  describeIssue,
  returnOrderSchema,
  unfreezeSchema,
} from './schemas';
import { refundedTotal } from '../refunds/ledger';
import { checkOrderSub, isServiceProvider, PARTNER_FIELD_ON_DIRECT, SUB_MCHID_MISSING, subMerchantOf, type Refusal, type SubMerchant } from '../partner/bindings';
import { decryptField, keyForRequest, type SensitiveError } from './sensitive';
import {
  committedAmount,
  findTransaction,
  getStore,
  maxSplittable,
  feeOf,
  nextId,
  paidAtMs,
  receiverBalance,
  relationKey,
  splittingEnded,
  settle,
  toCst,
  unsplitAmount,
  type ProfitSharingOrder,
  type ProfitSharingStore,
  type ReceiverDetail,
  type ReceiverType,
  type ReturnOrder,
} from './store';

export type Outcome =
  | { ok: true; status: number; body: unknown }
  | { ok: false; status: number; code: string; message: string; detail?: unknown };

const ok = (body: unknown, status = 200): Outcome => ({ ok: true, status, body });
const err = (status: number, code: string, message: string, detail?: unknown): Outcome => ({
  ok: false,
  status,
  code,
  message,
  detail,
});
const fromSensitive = (e: SensitiveError): Outcome => err(e.status, e.code, e.message);

function paramError(error: z.ZodError, location = 'body'): Outcome {
  const p = describeIssue(error, location);
  return err(400, 'PARAM_ERROR', p.message, p.detail);
}

// --- error catalogue -------------------------------------------------------------------------------------
/** Verified (official FAQ 000284823e8460aada68dacca5b008: also the answer for a wrong transaction_id); code UNVERIFIED. */
const NOT_SHARING_ORDER = () => err(400, 'INVALID_REQUEST', '非分账订单不支持分账');
/** Verified: developers.weixin.qq.com 000ee87c090d486e996d09ec65bc00 + 0000c03942024043be22d7ff06b400 (400). */
const PROCESSING_RETRY = () => err(400, 'INVALID_REQUEST', '订单处理中，请稍后重试');
/** Verified: developers.weixin.qq.com 0008003fc683f8229193489f961400. */
const OVER_RATIO = () => err(400, 'INVALID_REQUEST', '分账金额超出最大分账比例');
/** Verified message+code: developers.weixin.qq.com 00006a99a38a4025712d7c5c05b800. */
const TOO_MANY_SPLITS = () => err(400, 'INVALID_REQUEST', '分账次数过多');
/** Code from the official error table as quoted by SDKs (NOT_ENOUGH); HTTP 403 UNVERIFIED. */
const NOT_ENOUGH = () => err(403, 'NOT_ENOUGH', '分账金额不足');
/** Message verified (SKILLS 分账常见问题.md "订单已完结分账，不支持分账"); code UNVERIFIED. */
const ALREADY_FINISHED = () => err(400, 'INVALID_REQUEST', '订单已完结分账，不支持分账');
/** Verified wording (v2 answers PARAM_ERROR with it; community threads); v3 code UNVERIFIED. */
const NO_RELATION = () => err(400, 'PARAM_ERROR', '分账接收方关系不存在,请检查参数中每个接收方的关系。');
/** Verified: developers.weixin.qq.com 00064ae7d9c0b853b290766ac6ac00 (PARAM_ERROR). */
const RECEIVERS_DIFFER = () => err(400, 'PARAM_ERROR', '分账接收方与原请求不一致');
/** Verified: 404 {"code":"RESOURCE_NOT_EXISTS","message":"记录不存在"} on GET /v3/profitsharing/orders/{no}. */
const NOT_FOUND = () => err(404, 'RESOURCE_NOT_EXISTS', '记录不存在');
/** Same answer as the core's payments endpoints (UNVERIFIED for profit sharing). */
const APPID_MISMATCH = () => err(400, 'APPID_MCHID_NOT_MATCH', 'AppID和mch_id不匹配');
/** Message from SKILLS 分账常见问题.md ("appid与openid不匹配"); code UNVERIFIED. */
const OPENID_MISMATCH = () => err(400, 'PARAM_ERROR', 'appid与openid不匹配');

/** The sub-merchant has not authorised profit sharing to the SP (GO error table: 403 NO_AUTH "无分账权限"). */
const NO_SHARING_AUTH = () => err(403, 'NO_AUTH', '无分账权限');

/**
 * Partner mode (FACTS-partner-bills §1.8): the same paths with sub_mchid (+ sub_appid). A sub_mchid must be
 * bound to this service provider, a sub_appid to that sub_mchid; a direct merchant may send neither.
 * Without sub_mchid the call is direct mode (the sandbox's merchant is both); calls about an order then
 * check the order's own sub-merchant (checkOrderSub).
 */
function partnerScope(ctx: SimContext, subMchid: unknown, subAppid: unknown): { sub?: SubMerchant } | { refusal: Outcome } {
  if (subMchid === undefined || subMchid === '') {
    if (subAppid === undefined) return {};
    return { refusal: fromRefusal(isServiceProvider(ctx) ? SUB_MCHID_MISSING() : PARTNER_FIELD_ON_DIRECT()) };
  }
  const sub = subMerchantOf(ctx, subMchid);
  if (!sub.ok) return { refusal: fromRefusal(sub) };
  if (typeof subAppid === 'string' && !sub.subAppids.includes(subAppid)) return { refusal: err(400, 'PARAM_ERROR', 'sub_mch_id与sub_appid不匹配') }; // status inferred
  return { sub };
}
const fromRefusal = (r: Refusal): Outcome => err(r.status, r.code, r.message);
const orderSubRefusal = (ctx: SimContext, subOf: string | undefined, subMchid: string | undefined): Outcome | null => {
  const r = checkOrderSub(ctx, subOf ? { partner: { subMchid: subOf } } : {}, subMchid);
  return r ? fromRefusal(r) : null;
};

/** Only openids the simulator issued (core's openidApps) can be checked; unknown ones pass. */
function openidIssuedForOther(ctx: SimContext, openid: string, appid: string | undefined): boolean {
  const issuedFor = (ctx as Partial<SimRuntime>).openidApps?.get(openid);
  return issuedFor !== undefined && issuedFor !== appid;
}

// --- views -----------------------------------------------------------------------------------------------
function receiverView(r: ReceiverDetail): Record<string, unknown> {
  return {
    amount: r.amount,
    description: r.description,
    type: r.type,
    account: r.account,
    result: r.result,
    ...(r.failReason ? { fail_reason: r.failReason } : {}),
    detail_id: r.detailId,
    create_time: toCst(r.createdAtMs),
    ...(r.finishedAtMs !== undefined ? { finish_time: toCst(r.finishedAtMs) } : {}),
  };
}

export function orderView(o: ProfitSharingOrder): Record<string, unknown> {
  return {
    ...(o.subMchid ? { sub_mchid: o.subMchid } : {}),
    transaction_id: o.transactionId,
    out_order_no: o.outOrderNo,
    order_id: o.orderId,
    state: o.state,
    receivers: o.receivers.map(receiverView),
  };
}

export function returnView(r: ReturnOrder): Record<string, unknown> {
  return {
    ...(r.subMchid ? { sub_mchid: r.subMchid } : {}),
    order_id: r.orderId,
    out_order_no: r.outOrderNo,
    out_return_no: r.outReturnNo,
    return_id: r.returnId,
    return_mchid: r.returnMchid,
    amount: r.amount,
    description: r.description,
    result: r.result,
    ...(r.failReason ? { fail_reason: r.failReason } : {}),
    create_time: toCst(r.createdAtMs),
    ...(r.finishedAtMs !== undefined ? { finish_time: toCst(r.finishedAtMs) } : {}),
  };
}

function withStore(ctx: SimContext): ProfitSharingStore {
  const store = getStore(ctx);
  settle(ctx, store);
  return store;
}

function acceptedSplits(store: ProfitSharingStore, transactionId: string): number {
  let n = 0;
  for (const o of store.orders.values()) if (o.kind === 'split' && o.transactionId === transactionId) n += 1;
  return n;
}

// --- POST /v3/profitsharing/orders ------------------------------------------------------------------------
export function createOrder(ctx: SimContext, req: Request): Outcome {
  const store = withStore(ctx);
  const ps = ctx.opts.profitSharing;
  const parsed = createOrderSchema.safeParse(req.body);
  if (!parsed.success) return paramError(parsed.error);
  const b = parsed.data;
  const scope = partnerScope(ctx, b.sub_mchid, b.sub_appid);
  if ('refusal' in scope) return scope.refusal;

  // UNVERIFIED wordings for the next three structural checks (all PARAM_ERROR).
  if (b.receivers.length > ps.receiverLimit) return err(400, 'PARAM_ERROR', `分账接收方列表不能超过${ps.receiverLimit}个`);
  if (!b.appid && b.receivers.some((r) => r.type === 'PERSONAL_OPENID')) {
    return err(400, 'PARAM_ERROR', '分账接收方类型包含PERSONAL_OPENID时，appid必填');
  }
  if (b.appid !== undefined && b.appid !== ctx.opts.appid) return APPID_MISMATCH();
  const seen = new Set<string>();
  for (const r of b.receivers) {
    if (r.type === 'PERSONAL_OPENID' && openidIssuedForOther(ctx, r.account, b.appid)) return OPENID_MISMATCH();
    const k = `${r.type}|${r.account}`;
    if (seen.has(k)) return err(400, 'PARAM_ERROR', '同一个分账接收方不能在一次请求中重复出现');
    seen.add(k);
  }

  // The serial is checked before the ciphertext (a plain name without the header gets the header error).
  const names: Array<string | undefined> = [];
  let key: KeyObject | undefined;
  if (b.receivers.some((r) => r.name !== undefined)) {
    const k = keyForRequest(ctx, req);
    if ('error' in k) return fromSensitive(k.error);
    key = k.key;
  }
  for (const r of b.receivers) {
    // name is optional on /orders for every receiver type (wechatpay-go services/profitsharing/models.go
    // CreateOrderReceiver.Name is a pointer "可选"); when given it is checked against the added receiver.
    if (r.name === undefined) {
      names.push(undefined);
      continue;
    }
    const d = decryptField(key!, r.name);
    if (!d.ok) return fromSensitive(d.error);
    names.push(d.plain);
  }

  // The request AS SENT (ciphertexts and the Wechatpay-Serial they were made with): a re-send of the
  // same out_order_no must carry the same bytes. Whether WeChat compares ciphertexts or decrypted names
  // is not documented; comparing what was sent is the stricter reading, so a gateway that passes here
  // passes under both (a re-encrypted name differs: RSA-OAEP is randomised).
  const fingerprint = JSON.stringify({
    sub_mchid: b.sub_mchid ?? null,
    sub_appid: b.sub_appid ?? null,
    appid: b.appid ?? null,
    transaction_id: b.transaction_id,
    receivers: b.receivers.map((r) => [r.type, r.account, r.name ?? null, r.amount, r.description]),
    unfreeze_unsplit: b.unfreeze_unsplit,
    serial: b.receivers.some((r) => r.name !== undefined) ? req.get('wechatpay-serial') ?? null : null,
  });
  // out_order_no is the idempotency key: same request -> same order (current state).
  const existing = store.orders.get(b.out_order_no);
  if (existing) return existing.fingerprint === fingerprint ? ok(orderView(existing)) : RECEIVERS_DIFFER();

  const tx = findTransaction(ctx, b.transaction_id);
  if (!tx || !tx.profitSharing) return NOT_SHARING_ORDER();
  const wrongSub = orderSubRefusal(ctx, tx.partner?.subMchid, b.sub_mchid);
  if (wrongSub) return wrongSub;
  // A partner payment splits within the ratio its sub-merchant authorised to the SP (万分比, §1.9).
  // CHOSEN: that grant alone bounds it (the 30% default caps what the sub-merchant can grant in its UI).
  if (scope.sub && scope.sub.maxRatioBp === undefined) return NO_SHARING_AUTH();
  const maxRatio = scope.sub ? scope.sub.maxRatioBp! / 10_000 : ps.maxRatio;
  const now = ctx.now();
  if (tx.state === 'SUCCESS' && now - paidAtMs(tx) < ps.minDelayAfterPayMs) return PROCESSING_RETRY();
  if (splittingEnded(store, b.transaction_id)) return ALREADY_FINISHED();

  for (let i = 0; i < b.receivers.length; i += 1) {
    const r = b.receivers[i]!;
    const rel = store.relations.get(relationKey(r.type, r.account, b.appid, b.sub_mchid));
    if (!rel) return NO_RELATION();
    const name = names[i];
    if (name !== undefined && rel.name !== undefined && name !== rel.name) {
      // Person: verified text (SKILLS 分账常见问题.md); merchant: UNVERIFIED text.
      return r.type === 'PERSONAL_OPENID'
        ? err(400, 'PARAM_ERROR', '微信用户姓名与实名不一致')
        : err(400, 'PARAM_ERROR', '分账接收方全称与商户号不匹配');
    }
  }

  // Requests that were never accepted do not count towards the per-order maximum (SKILLS).
  if (acceptedSplits(store, b.transaction_id) >= ps.maxRequestsPerOrder) return TOO_MANY_SPLITS();
  const sum = b.receivers.reduce((s, r) => s + r.amount, 0);
  // 可分金额 = amount − fee − merchant-funded coupons − what was split (unsplitAmount).
  if (sum > unsplitAmount(ctx, store, tx)) return NOT_ENOUGH();
  // The ratio applies to (amount − fee), cumulatively (SKILLS 分账接入指南.md), and to what is left after refunds.
  if (committedAmount(store, b.transaction_id) + sum > maxSplittable(tx.amountTotal - feeOf(ctx, tx) - refundedTotal(ctx, b.transaction_id), maxRatio)) return OVER_RATIO();

  const order: ProfitSharingOrder = {
    kind: 'split',
    ...(b.sub_mchid ? { subMchid: b.sub_mchid } : {}),
    outOrderNo: b.out_order_no,
    transactionId: b.transaction_id,
    orderId: nextId(store, '3008', now),
    fingerprint,
    unfreezeUnsplit: b.unfreeze_unsplit,
    state: 'PROCESSING',
    receivers: b.receivers.map((r) => ({
      type: r.type,
      account: r.account,
      amount: r.amount,
      description: r.description,
      result: 'PENDING' as const,
      detailId: nextId(store, '3600', now),
      createdAtMs: now,
      plannedFailReason: store.receiverFailures.get(r.account),
    })),
    createdAtMs: now,
    dueAtMs: now + ps.resultDelayMs,
  };
  // unfreeze_unsplit=true ends splitting at once; the remainder is released when the order finishes.
  store.orders.set(order.outOrderNo, order);
  return ok(orderView(order));
}

// --- POST /v3/profitsharing/orders/unfreeze ---------------------------------------------------------------
export function unfreezeOrder(ctx: SimContext, req: Request): Outcome {
  const store = withStore(ctx);
  const parsed = unfreezeSchema.safeParse(req.body);
  if (!parsed.success) return paramError(parsed.error);
  const b = parsed.data;
  const scope = partnerScope(ctx, b.sub_mchid, undefined);
  if ('refusal' in scope) return scope.refusal;
  const fingerprint = JSON.stringify({ unfreeze: true, sub_mchid: b.sub_mchid ?? null, transaction_id: b.transaction_id, description: b.description });

  const existing = store.orders.get(b.out_order_no);
  if (existing) {
    if (existing.kind === 'unfreeze') return existing.fingerprint === fingerprint ? ok(orderView(existing)) : RECEIVERS_DIFFER();
    // The trap (SKILLS 分账常见问题.md): reusing a split's out_order_no answers "success" (that same
    // request, as the idempotency rule says) but unfreezes nothing.
    if (existing.transactionId === b.transaction_id) return ok(orderView(existing));
    return RECEIVERS_DIFFER();
  }

  const tx = findTransaction(ctx, b.transaction_id);
  if (!tx || !tx.profitSharing) return NOT_SHARING_ORDER();
  const wrongSub = orderSubRefusal(ctx, tx.partner?.subMchid, b.sub_mchid);
  if (wrongSub) return wrongSub;
  const now = ctx.now();
  if (tx.state === 'SUCCESS' && now - paidAtMs(tx) < ctx.opts.profitSharing.minDelayAfterPayMs) return PROCESSING_RETRY();
  const amount = unsplitAmount(ctx, store, tx);
  // Unfreezing twice / nothing left: the e-commerce finish API was seen answering INVALID_REQUEST
  // "分账金额不足" (developers.weixin.qq.com 00026486604ba045ce7a618885b800); same here, UNVERIFIED for v3 merchant.
  if (splittingEnded(store, b.transaction_id) || amount === 0) return err(400, 'INVALID_REQUEST', '分账金额不足');

  const order: ProfitSharingOrder = {
    kind: 'unfreeze',
    ...(b.sub_mchid ? { subMchid: b.sub_mchid } : {}),
    outOrderNo: b.out_order_no,
    transactionId: b.transaction_id,
    orderId: nextId(store, '3008', now),
    fingerprint,
    unfreezeUnsplit: true,
    state: 'PROCESSING',
    receivers: [
      {
        type: 'MERCHANT_ID',
        // The remainder goes back to whoever was paid: the sub-merchant in partner mode.
        account: b.sub_mchid ?? ctx.opts.mchid,
        amount,
        description: '解冻给分账方',
        result: 'PENDING',
        detailId: nextId(store, '3600', now),
        createdAtMs: now,
      },
    ],
    createdAtMs: now,
    dueAtMs: now + ctx.opts.profitSharing.resultDelayMs,
  };
  // From now on unsplit_amount is 0 and no split is accepted (both derived from this order).
  store.orders.set(order.outOrderNo, order);
  return ok(orderView(order));
}

// --- GET /v3/profitsharing/orders/{out_order_no}?transaction_id= ----------------------------------------
export function queryOrder(ctx: SimContext, outOrderNo: string, transactionId: unknown, subMchid: unknown): Outcome {
  const store = withStore(ctx);
  const scope = partnerScope(ctx, subMchid, undefined);
  if ('refusal' in scope) return scope.refusal;
  if (typeof transactionId !== 'string' || transactionId.length === 0) {
    return err(400, 'PARAM_ERROR', '输入源"/query/transaction_id"校验失败：transaction_id必填', {
      location: 'query',
      value: '/query/transaction_id',
    });
  }
  const o = store.orders.get(outOrderNo);
  if (!o || o.transactionId !== transactionId) return NOT_FOUND();
  return orderSubRefusal(ctx, o.subMchid, scope.sub?.subMchid) ?? ok(orderView(o));
}

// --- GET /v3/profitsharing/transactions/{transaction_id}/amounts -----------------------------------------
export function queryAmounts(ctx: SimContext, transactionId: string): Outcome {
  const store = withStore(ctx);
  const tx = findTransaction(ctx, transactionId);
  if (!tx) return NOT_FOUND(); // UNVERIFIED for this endpoint
  if (!tx.profitSharing) return NOT_SHARING_ORDER(); // UNVERIFIED for this endpoint
  return ok({ transaction_id: transactionId, unsplit_amount: unsplitAmount(ctx, store, tx) });
}

// --- POST /v3/profitsharing/receivers/add and /delete ----------------------------------------------------
export function addReceiver(ctx: SimContext, req: Request): Outcome {
  const store = withStore(ctx);
  const parsed = addReceiverSchema.safeParse(req.body);
  if (!parsed.success) return paramError(parsed.error);
  const b = parsed.data;
  const scope = partnerScope(ctx, b.sub_mchid, b.sub_appid);
  if ('refusal' in scope) return scope.refusal;
  if (b.relation_type === 'CUSTOM' && !b.custom_relation) {
    return err(400, 'PARAM_ERROR', '关系类型为CUSTOM时，custom_relation必填'); // UNVERIFIED wording
  }
  if (b.appid !== ctx.opts.appid) return APPID_MISMATCH();
  if (b.type === 'PERSONAL_OPENID' && openidIssuedForOther(ctx, b.account, b.appid)) return OPENID_MISMATCH();
  let name: string | undefined;
  if (b.name !== undefined) {
    const k = keyForRequest(ctx, req);
    if ('error' in k) return fromSensitive(k.error);
    const d = decryptField(k.key, b.name);
    if (!d.ok) return fromSensitive(d.error);
    name = d.plain;
  } else if (b.type === 'MERCHANT_ID') {
    return err(400, 'PARAM_ERROR', '分账接收方类型为MERCHANT_ID时，name必填'); // UNVERIFIED wording
  }

  const key = relationKey(b.type, b.account, b.appid, b.sub_mchid);
  const existing = store.relations.get(key);
  // Adding is idempotent: success again, the first registration is kept (SKILLS 分账常见问题.md).
  const rel = existing ?? {
    ...(b.sub_mchid ? { subMchid: b.sub_mchid } : {}),
    appid: b.appid,
    type: b.type as ReceiverType,
    account: b.account,
    name,
    relationType: b.relation_type,
    customRelation: b.custom_relation,
    addedAtMs: ctx.now(),
  };
  if (!existing) store.relations.set(key, rel);
  return ok({
    ...(b.sub_mchid ? { sub_mchid: b.sub_mchid } : {}),
    type: rel.type,
    account: rel.account,
    ...(b.name !== undefined ? { name: b.name } : {}),
    relation_type: rel.relationType,
    ...(rel.customRelation ? { custom_relation: rel.customRelation } : {}),
  });
}

export function deleteReceiver(ctx: SimContext, req: Request): Outcome {
  const store = withStore(ctx);
  const parsed = deleteReceiverSchema.safeParse(req.body);
  if (!parsed.success) return paramError(parsed.error);
  const b = parsed.data;
  const scope = partnerScope(ctx, b.sub_mchid, b.sub_appid);
  if ('refusal' in scope) return scope.refusal;
  if (b.appid !== ctx.opts.appid) return APPID_MISMATCH();
  // Deleting an unknown receiver answers success too (UNVERIFIED; idempotent like add).
  store.relations.delete(relationKey(b.type, b.account, b.appid, b.sub_mchid));
  return ok({ ...(b.sub_mchid ? { sub_mchid: b.sub_mchid } : {}), type: b.type, account: b.account });
}

// --- POST /v3/profitsharing/return-orders, GET /return-orders/{out_return_no}?out_order_no= ----------------
const MAX_RETURNS_PER_ORDER = 50;
const RETURN_WINDOW_MS = 180 * 86_400_000;

export function createReturn(ctx: SimContext, req: Request): Outcome {
  const store = withStore(ctx);
  const parsed = returnOrderSchema.safeParse(req.body);
  if (!parsed.success) return paramError(parsed.error);
  const b = parsed.data;
  const scope = partnerScope(ctx, b.sub_mchid, undefined);
  if ('refusal' in scope) return scope.refusal;
  if (!b.order_id && !b.out_order_no) return err(400, 'PARAM_ERROR', 'order_id和out_order_no必须填写其中一个'); // UNVERIFIED

  let order: ProfitSharingOrder | undefined;
  if (b.out_order_no) order = store.orders.get(b.out_order_no);
  else for (const o of store.orders.values()) if (o.orderId === b.order_id) order = o;
  if (!order || order.kind !== 'split' || (b.order_id && order.orderId !== b.order_id)) return NOT_FOUND(); // UNVERIFIED here
  const wrongSub = orderSubRefusal(ctx, order.subMchid, b.sub_mchid);
  if (wrongSub) return wrongSub;

  const fingerprint = JSON.stringify([b.sub_mchid ?? null, order.outOrderNo, b.return_mchid, b.amount, b.description]);
  const existing = store.returns.get(b.out_return_no);
  if (existing) {
    return existing.fingerprint === fingerprint ? ok(returnView(existing)) : err(400, 'PARAM_ERROR', '回退请求与原请求不一致'); // UNVERIFIED
  }

  const now = ctx.now();
  // Only merchant receivers can be reversed, and only what they actually received.
  const receiver = order.receivers.find((r) => r.type === 'MERCHANT_ID' && r.account === b.return_mchid && r.result === 'SUCCESS');
  if (!receiver) return err(400, 'INVALID_REQUEST', '分账并没有分给对应的回退方'); // text from WxJava#3091; code UNVERIFIED
  const previous = [...store.returns.values()].filter((r) => r.outOrderNo === order.outOrderNo);
  if (previous.length >= MAX_RETURNS_PER_ORDER) return err(400, 'INVALID_REQUEST', '分账回退次数超过上限'); // UNVERIFIED
  if (now - order.createdAtMs > RETURN_WINDOW_MS) return err(400, 'INVALID_REQUEST', '超过分账回退期限'); // UNVERIFIED
  const returned = previous
    .filter((r) => r.returnMchid === b.return_mchid && r.result !== 'FAILED')
    .reduce((s, r) => s + r.amount, 0);
  // Verified wording (e-commerce return, developers.weixin.qq.com): INVALID_REQUEST 剩余可回退的金额不足.
  if (returned + b.amount > receiver.amount) return err(400, 'INVALID_REQUEST', '剩余可回退的金额不足');

  // PITFALLS §3.14 wording; code UNVERIFIED.
  if (store.returnsDisabled.has(b.return_mchid)) return err(400, 'INVALID_REQUEST', '回退方没有开通分账回退功能');

  const failReason =
    store.returnFailures.get(b.return_mchid) ?? (receiverBalance(store, b.return_mchid) < b.amount ? ('BALANCE_NOT_ENOUGH' as const) : undefined);
  // result PROCESSING|SUCCESS|FAILED (WXIM return-orders.md; GO ReturnOrder.Result): a return can be
  // PROCESSING first and settle later (after resultDelayMs here); with no delay it is final at once.
  const dueAtMs = now + ctx.opts.profitSharing.resultDelayMs;
  const ret: ReturnOrder = {
    ...(b.sub_mchid ? { subMchid: b.sub_mchid } : {}),
    outReturnNo: b.out_return_no,
    outOrderNo: order.outOrderNo,
    orderId: order.orderId,
    returnId: nextId(store, '3008', now),
    returnMchid: b.return_mchid,
    amount: b.amount,
    description: b.description,
    result: dueAtMs > now ? 'PROCESSING' : failReason ? 'FAILED' : 'SUCCESS',
    failReason: dueAtMs > now ? undefined : failReason,
    plannedFailReason: failReason,
    fingerprint,
    createdAtMs: now,
    finishedAtMs: dueAtMs > now ? undefined : now,
    dueAtMs,
  };
  store.returns.set(ret.outReturnNo, ret);
  return ok(returnView(ret));
}

export function queryReturn(ctx: SimContext, outReturnNo: string, outOrderNo: unknown, subMchid: unknown): Outcome {
  const store = withStore(ctx);
  const scope = partnerScope(ctx, subMchid, undefined);
  if ('refusal' in scope) return scope.refusal;
  if (typeof outOrderNo !== 'string' || outOrderNo.length === 0) {
    return err(400, 'PARAM_ERROR', '输入源"/query/out_order_no"校验失败：out_order_no必填', {
      location: 'query',
      value: '/query/out_order_no',
    });
  }
  const r = store.returns.get(outReturnNo);
  if (!r || r.outOrderNo !== outOrderNo) return NOT_FOUND();
  return orderSubRefusal(ctx, r.subMchid, scope.sub?.subMchid) ?? ok(returnView(r));
}

// --- GET /v3/profitsharing/merchant-configs/{sub_mchid} (partner only) ------------------------------------
/** The ratio the sub-merchant authorised to this SP: {sub_mchid, max_ratio} in 万分比 (FACTS-partner-bills §1.8–1.9). */
export function queryMerchantRatio(ctx: SimContext, subMchid: string): Outcome {
  // All three refusals: wechatpay-go services/profitsharing error table, 403 NO_AUTH.
  if (!isServiceProvider(ctx)) return err(403, 'NO_AUTH', '服务商未开通分账功能');
  const sub = subMerchantOf(ctx, subMchid);
  if (!sub.ok) return sub.status === 403 ? err(403, 'NO_AUTH', '非服务商下的签约子商户') : fromRefusal(sub);
  if (sub.maxRatioBp === undefined) return err(403, 'NO_AUTH', '子商户未开通分账功能');
  return ok({ sub_mchid: subMchid, max_ratio: sub.maxRatioBp });
}
