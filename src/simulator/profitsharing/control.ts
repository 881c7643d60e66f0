/**
 * Test/reconciliation controls of the profit-sharing stand-in: programmatic (profitSharingControl) and over
 * HTTP (createProfitSharingControl, mounted at /_sim/profitsharing). Not part of WeChat's API.
 */
import express from 'express';
import { z } from 'zod';
import type { SimContext, SimOptions } from '../context';
import { orderView, returnView } from './operations';
import {
  FAIL_REASONS,
  RETURN_FAIL_REASONS,
  findTransaction,
  getStore,
  receiverBalance,
  resetStore,
  settle,
  unsplitAmount,
  type FailReason,
  type Relation,
  type ReturnFailReason,
  type SplitRequestRecord,
} from './store';

export type ProfitSharingOptionsPatch = Partial<SimOptions['profitSharing']>;

export interface ProfitSharingControl {
  /** Receivers with this account in FUTURE split requests end CLOSED with this fail_reason (null: stop). */
  failReceiver(account: string, failReason: FailReason | null): void;
  /** Closes a receiver of an existing order after the fact (the channel now disagrees); false if unknown. */
  closeReceiver(outOrderNo: string, account: string, failReason: FailReason): boolean;
  /** Changes a receiver's amount in an existing order (the channel now disagrees about money); false if unknown. */
  setReceiverAmount(outOrderNo: string, account: string, amount: number): boolean;
  /** Forgets an order entirely, as if WeChat never received it; false if unknown. */
  forgetOrder(outOrderNo: string): boolean;
  /** Future return orders to this merchant answer FAILED with this reason (null: stop). */
  failReturns(returnMchid: string, failReason: ReturnFailReason | null): void;
  /** A merchant receiver that has (not) enabled returns. */
  setReturnsEnabled(returnMchid: string, enabled: boolean): void;
  /** Sets a merchant receiver's balance (what a return can take back) to exactly `fen`. */
  setReceiverBalance(account: string, fen: number): void;
  receiverBalance(account: string): number;
  /** Changes ctx.opts.profitSharing (and the store's per-order rate) at run time. */
  setOptions(patch: ProfitSharingOptionsPatch): SimOptions['profitSharing'];
  /** Every split/unfreeze request received, oldest first. */
  requests(): SplitRequestRecord[];
  /** Orders (current state, as the query API would answer), oldest first. */
  orders(): Array<Record<string, unknown>>;
  returns(): Array<Record<string, unknown>>;
  receivers(): Relation[];
  /** unsplit_amount as the amounts API would answer; undefined for an unknown transaction. */
  unsplitAmount(transactionId: string): number | undefined;
  reset(): void;
}

export function profitSharingControl(ctx: SimContext): ProfitSharingControl {
  const fresh = () => {
    const store = getStore(ctx);
    settle(ctx, store);
    return store;
  };
  return {
    failReceiver(account, failReason) {
      const store = getStore(ctx);
      if (failReason) store.receiverFailures.set(account, failReason);
      else store.receiverFailures.delete(account);
    },
    closeReceiver(outOrderNo, account, failReason) {
      const store = fresh();
      const order = store.orders.get(outOrderNo);
      const receiver = order?.receivers.find((r) => r.account === account);
      if (!order || !receiver) return false;
      receiver.result = 'CLOSED';
      receiver.failReason = failReason;
      receiver.finishedAtMs ??= ctx.now();
      if (order.receivers.every((r) => r.result !== 'PENDING')) order.state = 'FINISHED';
      return true;
    },
    setReceiverAmount(outOrderNo, account, amount) {
      const receiver = fresh().orders.get(outOrderNo)?.receivers.find((r) => r.account === account);
      if (!receiver) return false;
      receiver.amount = amount;
      return true;
    },
    forgetOrder(outOrderNo) {
      const store = getStore(ctx);
      const existed = store.orders.delete(outOrderNo);
      store.requests = store.requests.filter((r) => r.outOrderNo !== outOrderNo);
      return existed;
    },
    failReturns(returnMchid, failReason) {
      const store = getStore(ctx);
      if (failReason) store.returnFailures.set(returnMchid, failReason);
      else store.returnFailures.delete(returnMchid);
    },
    setReturnsEnabled(returnMchid, enabled) {
      const store = getStore(ctx);
      if (enabled) store.returnsDisabled.delete(returnMchid);
      else store.returnsDisabled.add(returnMchid);
    },
    setReceiverBalance(account, fen) {
      const store = fresh();
      const adj = store.receiverBalanceAdjustments.get(account) ?? 0;
      store.receiverBalanceAdjustments.set(account, adj + fen - receiverBalance(store, account));
    },
    receiverBalance: (account) => receiverBalance(fresh(), account),
    setOptions(patch) {
      getStore(ctx); // snapshot the starting options for reset
      Object.assign(ctx.opts.profitSharing, patch);
      return { ...ctx.opts.profitSharing };
    },
    requests: () => [...getStore(ctx).requests],
    orders: () => [...fresh().orders.values()].map((o) => ({ kind: o.kind, ...orderView(o) })),
    returns: () => [...fresh().returns.values()].map(returnView),
    receivers: () => [...getStore(ctx).relations.values()],
    unsplitAmount(transactionId) {
      const store = fresh();
      const tx = findTransaction(ctx, transactionId);
      return tx ? unsplitAmount(ctx, store, tx) : undefined;
    },
    reset: () => resetStore(ctx),
  };
}

const nonNegInt = z.number().int().min(0);
const optionsSchema = z.strictObject({
  receiverLimit: nonNegInt.optional(),
  maxRatio: z.number().min(0).max(1).optional(),
  maxRequestsPerOrder: nonNegInt.optional(),
  minDelayAfterPayMs: nonNegInt.optional(),
  resultDelayMs: nonNegInt.optional(),
  ratePerSecond: nonNegInt.optional(),
  spRatePerSecond: nonNegInt.optional(),
  subRatePerSecond: nonNegInt.optional(),
  windowDays: z.number().min(0).optional(),
  perOrderRatePerSecond: nonNegInt.optional(),
  feeRate: z.number().min(0).max(0.1).optional(),
});
const failReceiverSchema = z.strictObject({ account: z.string().min(1), fail_reason: z.enum(FAIL_REASONS).nullable() });
const closeReceiverSchema = z.strictObject({
  out_order_no: z.string().min(1),
  account: z.string().min(1),
  fail_reason: z.enum(FAIL_REASONS),
});
const receiverAmountSchema = z.strictObject({ out_order_no: z.string().min(1), account: z.string().min(1), amount: z.number().int().min(1) });
const forgetSchema = z.strictObject({ out_order_no: z.string().min(1) });
const failReturnsSchema = z.strictObject({
  return_mchid: z.string().min(1),
  fail_reason: z.enum(RETURN_FAIL_REASONS).nullable(),
});

/**
 * HTTP controls, JSON in and out:
 *   POST /receiver-failures {account, fail_reason|null}     POST /close-receiver {out_order_no, account, fail_reason}
 *   POST /forget-order {out_order_no}                       POST /return-failures {return_mchid, fail_reason|null}
 *   POST /receiver-amount {out_order_no, account, amount}
 *   POST /options {resultDelayMs?, maxRatio?, ...}          GET /requests   GET /orders   GET /returns   GET /receivers
 *   GET /amounts/:transaction_id                             POST /reset (also restores the starting options)
 */
export function createProfitSharingControl(ctx: SimContext): express.Router & { reset(): void } {
  const router = express.Router();
  const control = profitSharingControl(ctx);
  getStore(ctx); // snapshot the starting options now, before any control changes them
  const bad = (res: express.Response, error: z.ZodError) =>
    ctx.fail(res, 400, 'PARAM_ERROR', error.issues[0]?.message ?? 'invalid control request', error.issues);

  router.post('/receiver-failures', (req, res) => {
    const p = failReceiverSchema.safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    control.failReceiver(p.data.account, p.data.fail_reason);
    ctx.reply(res, 200, { ok: true });
  });
  router.post('/close-receiver', (req, res) => {
    const p = closeReceiverSchema.safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    if (!control.closeReceiver(p.data.out_order_no, p.data.account, p.data.fail_reason)) {
      return ctx.fail(res, 404, 'RESOURCE_NOT_EXISTS', 'no such order/receiver');
    }
    ctx.reply(res, 200, { ok: true });
  });
  router.post('/receiver-amount', (req, res) => {
    const p = receiverAmountSchema.safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    if (!control.setReceiverAmount(p.data.out_order_no, p.data.account, p.data.amount)) {
      return ctx.fail(res, 404, 'RESOURCE_NOT_EXISTS', 'no such order/receiver');
    }
    ctx.reply(res, 200, { ok: true });
  });
  router.post('/forget-order', (req, res) => {
    const p = forgetSchema.safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    ctx.reply(res, 200, { forgotten: control.forgetOrder(p.data.out_order_no) });
  });
  router.post('/return-failures', (req, res) => {
    const p = failReturnsSchema.safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    control.failReturns(p.data.return_mchid, p.data.fail_reason);
    ctx.reply(res, 200, { ok: true });
  });
  router.post('/returns-enabled', (req, res) => {
    const p = z.strictObject({ return_mchid: z.string().min(1), enabled: z.boolean() }).safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    control.setReturnsEnabled(p.data.return_mchid, p.data.enabled);
    ctx.reply(res, 200, { ok: true });
  });
  router.post('/receiver-balance', (req, res) => {
    const p = z.strictObject({ account: z.string().min(1), balance: z.number().int() }).safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    control.setReceiverBalance(p.data.account, p.data.balance);
    ctx.reply(res, 200, { account: p.data.account, balance: control.receiverBalance(p.data.account) });
  });
  router.post('/options', (req, res) => {
    const p = optionsSchema.safeParse(req.body);
    if (!p.success) return bad(res, p.error);
    ctx.reply(res, 200, control.setOptions(p.data));
  });
  router.get('/requests', (_req, res) => ctx.reply(res, 200, { requests: control.requests() }));
  router.get('/orders', (_req, res) => ctx.reply(res, 200, { orders: control.orders() }));
  router.get('/returns', (_req, res) => ctx.reply(res, 200, { returns: control.returns() }));
  router.get('/receivers', (_req, res) => ctx.reply(res, 200, { receivers: control.receivers() }));
  router.get('/amounts/:transaction_id', (req, res) => {
    const amount = control.unsplitAmount(req.params.transaction_id);
    if (amount === undefined) return ctx.fail(res, 404, 'RESOURCE_NOT_EXISTS', '记录不存在');
    ctx.reply(res, 200, { transaction_id: req.params.transaction_id, unsplit_amount: amount });
  });
  router.post('/reset', (_req, res) => {
    control.reset();
    ctx.reply(res, 200, { ok: true });
  });
  // The core's control.reset() calls this to clear profit sharing along with everything else.
  return Object.assign(router, { reset: () => control.reset() });
}
