/**
 * Per-simulator state of the profit-sharing (分账) stand-in. One store per SimContext (WeakMap), so two
 * simulators in one test process never share receivers, orders or rate windows.
 *
 * Results are computed lazily from ctx.now(): every handler calls settle() first, so a PENDING receiver
 * turns SUCCESS/CLOSED on the first read at or after its due time (resultDelayMs 0 = the next read).
 */
import type { SimContext, SimTransaction } from '../context';
import { refundedFromFrozen } from '../refunds/ledger';

export type ReceiverType = 'MERCHANT_ID' | 'PERSONAL_OPENID';
export type DetailResult = 'PENDING' | 'SUCCESS' | 'CLOSED';
export type OrderState = 'PROCESSING' | 'FINISHED';

/** receivers[].fail_reason values of the query API (SKILLS 分账常见问题.md, GO sample DetailFailReason). */
export const FAIL_REASONS = [
  'ACCOUNT_ABNORMAL',
  'NO_RELATION',
  'RECEIVER_HIGH_RISK',
  'RECEIVER_REAL_NAME_NOT_VERIFIED',
  'NO_AUTH',
  'RECEIVER_RECEIPT_LIMIT',
  'PAYER_ACCOUNT_ABNORMAL',
  'INVALID_REQUEST',
] as const;
export type FailReason = (typeof FAIL_REASONS)[number];

/** Return-order fail_reason values (GO sample ReturnOrderFailReason). */
export const RETURN_FAIL_REASONS = [
  'ACCOUNT_ABNORMAL',
  'BALANCE_NOT_ENOUGH',
  'TIME_OUT_CLOSED',
  'PAYER_ACCOUNT_ABNORMAL',
  'INVALID_REQUEST',
] as const;
export type ReturnFailReason = (typeof RETURN_FAIL_REASONS)[number];

export interface Relation {
  /** Partner mode: receivers are added per sub-merchant (FACTS-partner-bills §1.8). */
  subMchid?: string;
  appid: string;
  type: ReceiverType;
  account: string;
  /** Decrypted name (full legal name for MERCHANT_ID; real name for a person when given). */
  name?: string;
  relationType: string;
  customRelation?: string;
  addedAtMs: number;
}

export interface ReceiverDetail {
  type: ReceiverType;
  account: string;
  amount: number;
  description: string;
  result: DetailResult;
  failReason?: FailReason;
  detailId: string;
  createdAtMs: number;
  finishedAtMs?: number;
  /** Chosen by a control when the request was accepted; applied when the result is due. */
  plannedFailReason?: FailReason;
}

export interface ProfitSharingOrder {
  kind: 'split' | 'unfreeze';
  /** Partner mode: the sub-merchant whose payment this splits (the order's own). */
  subMchid?: string;
  outOrderNo: string;
  transactionId: string;
  orderId: string;
  /** Canonical request (names decrypted) for "same out_order_no, same request" checks. */
  fingerprint: string;
  unfreezeUnsplit: boolean;
  state: OrderState;
  receivers: ReceiverDetail[];
  createdAtMs: number;
  dueAtMs: number;
}

export interface ReturnOrder {
  subMchid?: string;
  outReturnNo: string;
  outOrderNo: string;
  orderId: string;
  returnId: string;
  returnMchid: string;
  amount: number;
  description: string;
  result: 'PROCESSING' | 'SUCCESS' | 'FAILED';
  failReason?: ReturnFailReason;
  /** Chosen by a control when the return was accepted; applied when it settles. */
  plannedFailReason?: ReturnFailReason;
  fingerprint: string;
  createdAtMs: number;
  finishedAtMs?: number;
  dueAtMs: number;
}

export interface SplitRequestRecord {
  at: number;
  kind: 'split' | 'unfreeze';
  mchid: string;
  /** Partner mode: the sub_mchid sent (WeChat limits per service provider and per sub-merchant). */
  subMchid?: string;
  outOrderNo?: string;
  transactionId?: string;
  status: number;
  code?: string;
  /** true when answered 429 by the rate limiter (not counted in the window). */
  limited: boolean;
}

export interface ProfitSharingStore {
  relations: Map<string, Relation>;
  orders: Map<string, ProfitSharingOrder>;
  returns: Map<string, ReturnOrder>;
  /** account -> fail_reason for receivers of FUTURE split requests. */
  receiverFailures: Map<string, FailReason>;
  /** return_mchid -> fail_reason for future return orders. */
  returnFailures: Map<string, ReturnFailReason>;
  /** Merchant receivers that have not enabled returns (回退方没有开通分账回退功能). */
  returnsDisabled: Set<string>;
  /** account -> fen added to its computed balance (control: the receiver spent or received money elsewhere). */
  receiverBalanceAdjustments: Map<string, number>;
  requests: SplitRequestRecord[];
  /** Raw request bodies (as sent: ciphertexts and Wechatpay-Serial included) per out_order_no. */
  bodies: Map<string, string>;
  seq: number;
  /** ctx.opts.profitSharing as first seen, restored by reset (controls change the live options). */
  initialOptions: SimContext['opts']['profitSharing'];
}

const stores = new WeakMap<SimContext, ProfitSharingStore>();

function emptyStore(initialOptions: SimContext['opts']['profitSharing']): ProfitSharingStore {
  return {
    relations: new Map(),
    orders: new Map(),
    returns: new Map(),
    receiverFailures: new Map(),
    returnFailures: new Map(),
    returnsDisabled: new Set(),
    receiverBalanceAdjustments: new Map(),
    requests: [],
    bodies: new Map(),
    seq: 0,
    initialOptions,
  };
}

export function getStore(ctx: SimContext): ProfitSharingStore {
  let s = stores.get(ctx);
  if (!s) {
    s = emptyStore({ ...ctx.opts.profitSharing });
    stores.set(ctx, s);
  }
  return s;
}

/** Forgets all profit-sharing state and restores the options the simulator started with. */
export function resetStore(ctx: SimContext): void {
  const initial = getStore(ctx).initialOptions;
  Object.assign(ctx.opts.profitSharing, initial);
  stores.set(ctx, emptyStore(initial));
}

export function relationKey(type: ReceiverType, account: string, appid?: string, subMchid?: string): string {
  // An openid only means something under the appid it was issued for; a merchant id is global.
  // Partner mode: each sub-merchant has its own receivers.
  const own = type === 'PERSONAL_OPENID' ? `${type}|${appid ?? ''}|${account}` : `${type}||${account}`;
  return subMchid ? `${subMchid}#${own}` : own;
}

/*
 * Both flags are derived from the orders, so forgetting an order (control) also forgets its effect.
 */

/** No further split is accepted: an unfreeze, or a split with unfreeze_unsplit=true, was accepted. */
export function splittingEnded(store: ProfitSharingStore, transactionId: string): boolean {
  for (const o of store.orders.values()) {
    if (o.transactionId === transactionId && (o.kind === 'unfreeze' || o.unfreezeUnsplit)) return true;
  }
  return false;
}

/** The remainder went back to the merchant (unfreeze accepted, or an unfreeze_unsplit split finished). */
export function remainderUnfrozen(store: ProfitSharingStore, transactionId: string): boolean {
  for (const o of store.orders.values()) {
    if (o.transactionId !== transactionId) continue;
    if (o.kind === 'unfreeze' || (o.unfreezeUnsplit && o.state === 'FINISHED')) return true;
  }
  return false;
}

/** WeChat-looking numeric ids: a prefix, the CST date and a per-store sequence. */
export function nextId(store: ProfitSharingStore, prefix: string, nowMs: number, width = 28): string {
  store.seq += 1;
  const date = toCst(nowMs).slice(0, 10).replace(/-/g, '');
  const head = `${prefix}${date}`;
  return head + String(store.seq).padStart(Math.max(1, width - head.length), '0');
}

/** RFC 3339 in China Standard Time, as WeChat writes times: 2024-01-02T03:04:05+08:00. */
export function toCst(ms: number): string {
  return new Date(ms + 8 * 3600_000).toISOString().slice(0, 19) + '+08:00';
}

export function paidAtMs(tx: SimTransaction): number {
  if (tx.paidAtMs !== undefined) return tx.paidAtMs;
  if (tx.successTime) {
    const t = Date.parse(tx.successTime);
    if (!Number.isNaN(t)) return t;
  }
  return tx.createdAtMs;
}

/** floor(total × ratio) with the ratio taken to 1/10000ths, like WeChat's max_ratio (万分比). */
export function maxSplittable(total: number, ratio: number): number {
  const bp = Math.round(ratio * 10_000);
  return Math.floor((total * bp) / 10_000);
}

/** Split money that is committed: accepted split receivers that did not fail. */
export function committedAmount(store: ProfitSharingStore, transactionId: string): number {
  let sum = 0;
  for (const o of store.orders.values()) {
    if (o.kind !== 'split' || o.transactionId !== transactionId) continue;
    for (const r of o.receivers) if (r.result !== 'CLOSED') sum += r.amount;
  }
  return sum;
}

export function windowExpired(ctx: SimContext, tx: SimTransaction): boolean {
  return ctx.now() > paidAtMs(tx) + ctx.opts.profitSharing.windowDays * 86_400_000;
}

/** Merchant-funded coupons (免充值券): the shopper paid less and the merchant never receives the difference. */
export function merchantCouponOf(tx: SimTransaction): number {
  return Math.max(0, tx.amountTotal - (tx.payerTotal ?? tx.amountTotal));
}

/**
 * The payment fee (手续费) WeChat keeps: feeRate of what the merchant settles (amount − merchant coupons),
 * rounded half up to the fen. CHOSEN: WeChat's exact rounding of fees is not in a stored source.
 */
export function feeOf(ctx: SimContext, tx: SimTransaction): number {
  return Math.round((tx.amountTotal - merchantCouponOf(tx)) * ctx.opts.profitSharing.feeRate);
}

/**
 * 订单剩余待分金额 = amount − fee − merchant-funded coupons − splits not CLOSED (可分金额 = 订单金额 − 手续费,
 * SKILLS 分账常见问题.md; 免充值券 lower it further). Refunds are taken from the frozen funds first
 * (SKILLS 分账接入指南.md), so what they took is no longer splittable.
 */
export function unsplitAmount(ctx: SimContext, store: ProfitSharingStore, tx: SimTransaction): number {
  const txId = tx.transactionId ?? '';
  if (remainderUnfrozen(store, txId)) return 0;
  if (tx.state !== 'SUCCESS') return 0;
  // After the freeze window WeChat unfreezes the remainder to the merchant by itself.
  if (windowExpired(ctx, tx)) return 0;
  return Math.max(0, tx.amountTotal - feeOf(ctx, tx) - merchantCouponOf(tx) - committedAmount(store, txId) - refundedFromFrozen(ctx, txId));
}

/** Whether the payment's unsplit remainder has gone to the merchant's available balance. */
export function remainderReleased(ctx: SimContext, store: ProfitSharingStore, tx: SimTransaction): boolean {
  return remainderUnfrozen(store, tx.transactionId ?? '') || windowExpired(ctx, tx);
}

/**
 * A merchant receiver's balance: what its split receipts brought in, minus what it returned, plus the
 * control's adjustment. A return larger than it ends FAILED with BALANCE_NOT_ENOUGH.
 */
export function receiverBalance(store: ProfitSharingStore, account: string): number {
  let sum = store.receiverBalanceAdjustments.get(account) ?? 0;
  for (const o of store.orders.values())
    if (o.kind === 'split') for (const r of o.receivers) if (r.type === 'MERCHANT_ID' && r.account === account && r.result === 'SUCCESS') sum += r.amount;
  for (const r of store.returns.values()) if (r.returnMchid === account && r.result === 'SUCCESS') sum -= r.amount;
  return sum;
}

/** Applies every result that is due at ctx.now(). */
export function settle(ctx: SimContext, store: ProfitSharingStore): void {
  const now = ctx.now();
  for (const o of store.orders.values()) {
    if (o.state !== 'PROCESSING' || now < o.dueAtMs) continue;
    for (const r of o.receivers) {
      if (r.result !== 'PENDING') continue;
      let reason = r.plannedFailReason;
      // A relation deleted while the split was pending fails it (fail_reason NO_RELATION = 分账关系已解除).
      if (!reason && o.kind === 'split') {
        const related = [...store.relations.values()].some((rel) => rel.type === r.type && rel.account === r.account && rel.subMchid === o.subMchid);
        if (!related) reason = 'NO_RELATION';
      }
      r.result = reason ? 'CLOSED' : 'SUCCESS';
      r.failReason = reason;
      r.finishedAtMs = o.dueAtMs;
    }
    o.state = 'FINISHED';
  }
  for (const r of store.returns.values()) {
    if (r.result !== 'PROCESSING' || now < r.dueAtMs) continue;
    r.result = r.plannedFailReason ? 'FAILED' : 'SUCCESS';
    r.failReason = r.plannedFailReason;
    r.finishedAtMs = r.dueAtMs;
  }
}

export function findTransaction(ctx: SimContext, transactionId: string): SimTransaction | undefined {
  return ctx.transactions.byTransactionId.get(transactionId);
}
