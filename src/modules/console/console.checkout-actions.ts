/**
 * The actions on one checkout (issue 12 §1), each a thin page over the service that owns it:
 *   refund          refunds service (createRefund), its idempotency key = the actionKey
 *   split.retry     split.retry.ts (a new on-demand split of the closed receivers, keyed by the batch)
 *   split.finish    split service (finishSplits), repeatable by nature
 *   webhook.redeliver  webhooks service (redeliverEvent), in one transaction with the audit row
 *   mismatch.resolve   split.reconcile.ts (resolveMismatch), in one transaction with the audit row
 * Scoping: the checkout is read in the viewer's scope and every sub-object must belong to it, so another
 * merchant's object is "not found" (404), never "forbidden".
 */
import type { Request, Router } from 'express';
import type { AppDeps } from '../../app.types';
import { AppError } from '../../lib/errors';
import { fenToYuan } from '../../lib/money';
import type { PrismaClient } from '../../lib/prisma';
import { createRefund } from '../refunds/refund.service';
import { checkoutIdSchema } from '../checkout/checkout.schemas';
import { createRefundSchema } from '../refunds/refund.schemas';
import { mismatchResolution, resolveMismatch } from '../splits/split.reconcile';
import { retryFailedBatch, retryPlan, retryRefusal } from '../splits/split.retry';
import { batchOutOrderNo, OUT_ORDER_NO_PATTERN, planBatches, unfreezeOutOrderNo } from '../splits/split.rules';
import { createSplitQueue, queueKeyPrefix, type SplitQueue } from '../splits/split.queue';
import { finishSplits } from '../splits/split.service';
import { redeliverEvent } from '../webhooks/webhook.service';
import { consoleNote, mountAction, runInTransaction, runKeyed, type ActionPage, type PageContext } from './console.actions';
import { parseYuan, type Scope } from './console.queries';

const notFound = () => new AppError('NOT_FOUND', '没有这个订单 · No such checkout');
const cny = (fen: number) => `¥${fenToYuan(fen)}`;

/** The checkout in the viewer's scope, or NOT_FOUND. */
export async function checkoutInScope(prisma: PrismaClient, scope: Scope, id: unknown) {
  // Not an id of ours (it may hold anything, NUL included, which PostgreSQL refuses): not found, without a query.
  const p = checkoutIdSchema.safeParse(id);
  if (!p.success) throw notFound();
  const c = await prisma.checkout.findFirst({ where: { id: p.data, ...(scope.merchantId ? { merchantId: scope.merchantId } : {}) } });
  if (!c) throw notFound();
  return c;
}
type ScopedCheckout = Awaited<ReturnType<typeof checkoutInScope>>;

/** A path id (out_order_no, event or mismatch id): WeChat's out_order_no alphabet covers ours; anything else matches nothing. */
const param = (req: Request, name: string) => {
  const v = String(req.params[name] ?? '');
  return OUT_ORDER_NO_PATTERN.test(v) ? v : '';
};
const checkoutUrl = (c: { id: string }) => `/console/checkouts/${encodeURIComponent(c.id)}`;
const done = (c: { id: string }, key: string) => `${checkoutUrl(c)}?done=${encodeURIComponent(key)}#outcome`;
const invalid = (message: string, field?: string) => new AppError('VALIDATION_FAILED', message, field ? { field } : {});

export function mountCheckoutActions(r: Router, deps: AppDeps, ctx: PageContext): void {
  // A producer on the app's Redis connection (the splits module's own queue is private to it); a failed
  // enqueue is harmless: the split rows are due in PostgreSQL and the due scan hands them to the worker.
  let queue: SplitQueue | undefined;
  const splitQueue = () => (queue ??= createSplitQueue(deps.redis, queueKeyPrefix(deps.config.QUEUE_PREFIX)));
  // Subjects are the checkout itself (with a fact the page states), or { c: checkout, ...the sub-object }.
  const common = { doneUrl: done, backUrl: checkoutUrl };
  const nested = { doneUrl: (s: { c: ScopedCheckout }, key: string) => done(s.c, key), backUrl: (s: { c: ScopedCheckout }) => checkoutUrl(s.c) };
  const checkoutWith = <X>(more: (c: ScopedCheckout) => Promise<X>) => async (req: Request, scope: Scope) => {
    const c = await checkoutInScope(deps.prisma, scope, req.params.id);
    return { ...c, ...(await more(c)) };
  };
  /** A sub-object of the checkout (batch, event, mismatch): `find` answers null when it is not this checkout's. */
  const within = <X>(notFoundMessage: string, find: (c: ScopedCheckout, req: Request) => Promise<X | null>) => async (req: Request, scope: Scope) => {
    const c = await checkoutInScope(deps.prisma, scope, req.params.id);
    const x = await find(c, req);
    if (!x) throw new AppError('NOT_FOUND', notFoundMessage);
    return { c, ...x };
  };

  // ---- refund -------------------------------------------------------------------------------------
  type RefundSubject = ScopedCheckout & { refunds: number };
  mountAction<RefundSubject, { amount: number; reason?: string; split_return?: 'none' | 'proportional' }>(r, ctx, {
    ...common,
    action: 'refund',
    path: '/console/checkouts/:id/refund',
    title: '退款 · Refund',
    load: checkoutWith(async (c) => ({ refunds: await deps.prisma.refund.count({ where: { checkoutId: c.id } }) })),
    blocked: (c) => (c.status === 'paid' ? null : `订单状态为 ${c.status}，只有已支付的订单可以退款 · The checkout is ${c.status}; only a paid checkout can be refunded`),
    fields: [
      { name: 'amount', label: '退款金额 Amount (¥)', kind: 'amount', required: true, maxLength: 13, step: 'choose' },
      { name: 'reason', label: '原因 Reason (可选 optional, ≤ 80)', kind: 'text', maxLength: 80, step: 'choose' },
      {
        name: 'split_return',
        label: '已分账的资金 Money already split',
        kind: 'select',
        step: 'choose',
        options: [
          { value: 'none', label: '不回退 none (refund from what the merchant holds)' },
          { value: 'proportional', label: '按比例从接收方回退 proportional (take back from receivers)' },
        ],
      },
    ],
    parse: (v) => {
      const fen = parseYuan(v.amount ?? '');
      if (fen === null || fen < 1) throw invalid('请输入退款金额，如 12.34 · Enter the amount in yuan, e.g. 12.34', 'amount');
      // The API's own schema: the same rules and messages.
      const p = createRefundSchema.safeParse({
        amount: fen,
        ...(v.reason?.trim() ? { reason: v.reason.trim() } : {}),
        ...(v.split_return === 'proportional' ? { split_return: 'proportional' } : {}),
      });
      if (!p.success) throw invalid(p.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      return p.data as { amount: number; reason?: string; split_return?: 'none' | 'proportional' };
    },
    summary: (c, i) => [
      ['订单 Checkout', `${c.outTradeNo} (${c.id})`],
      ['退款金额 Refund', `${cny(i.amount)} (${i.amount} fen)，原路退回付款人 · back to the payer`],
      ['已支付 Paid', cny(c.paidTotalFen ?? c.amountFen)],
      ['已退款(含处理中) Refunded so far', `${cny(c.refundedFen)} · ${c.refunds} 笔 refund(s)`],
      ['原因 Reason', i.reason ?? '—'],
      ['已分账资金 Split money', i.split_return === 'proportional' ? '按比例从接收方回退 · taken back from receivers in proportion' : '不回退 · not taken back'],
    ],
    target: (c) => c.id,
    // "Refunded so far" is part of what is confirmed: a refund made meanwhile (another tab, another
    // operator) makes the form stale instead of silently adding a second refund.
    stamp: (c) => `${c.refundSeq}`,
    run: (c, input, call) =>
      runKeyed(deps.prisma, { ...call, note: input.reason ?? null }, async () => {
        const refund = await createRefund(deps, c.merchantId, c.id, input, call.actionKey);
        return `退款 refund ${refund.id} ${cny(refund.amount)}: ${refund.status}`;
      }),
  } satisfies ActionPage<RefundSubject, { amount: number; reason?: string; split_return?: 'none' | 'proportional' }>);

  // ---- finish (unfreeze) an on-demand split ---------------------------------------------------------
  type FinishSubject = ScopedCheckout & { openBatches: number };
  mountAction<FinishSubject, null>(r, ctx, {
    ...common,
    action: 'split.finish',
    path: '/console/checkouts/:id/splits/finish',
    title: '完结分账并解冻 · Finish splitting (unfreeze)',
    load: checkoutWith(async (c) => ({ openBatches: await deps.prisma.splitBatch.count({ where: { checkoutId: c.id, state: { in: ['pending', 'processing'] } } }) })),
    blocked: (c) =>
      c.profitSharing !== 'on_demand'
        ? '只有按需分账 (on_demand) 的订单需要完结；按计划分账会自行解冻 · Only on_demand checkouts are finished by hand; a planned split unfreezes by itself'
        : c.status !== 'paid'
          ? `订单状态为 ${c.status} · The checkout is ${c.status}`
          : c.splitFinishedAt
            ? '本订单已完结分账 · Splitting was already finished for this payment'
            : null,
    parse: () => null,
    summary: (c) => [
      ['订单 Checkout', `${c.outTradeNo} (${c.id})`],
      ['将执行 Effect', '不再接受分账；剩余冻结资金解冻给商户 · No further split; the money still frozen is released to the merchant'],
      ['已分账(预留) Split so far', cny(c.splitReservedFen - c.splitReturnedFen)],
      ['进行中的批次 Batches in flight', c.openBatches ? `${c.openBatches}：完成后再解冻 · unfrozen once they are final` : '0'],
      ['解冻单号 Unfreeze out_order_no', unfreezeOutOrderNo(c.id)],
    ],
    target: (c) => c.id,
    run: (c, _i, call) =>
      runKeyed(deps.prisma, call, async () => {
        const s = await finishSplits(deps, splitQueue(), c.merchantId, c.id);
        return `分账已完结，解冻 ${unfreezeOutOrderNo(c.id)}: ${s.unfreeze?.state ?? 'pending'} · splitting finished, unfreeze queued`;
      }),
  } satisfies ActionPage<FinishSubject, null>);

  // ---- retry a failed split batch -------------------------------------------------------------------
  type RetrySubject = { c: ScopedCheckout; batch: Parameters<typeof retryPlan>[0]; refusal: string | null };
  mountAction<RetrySubject, null>(r, ctx, {
    ...nested,
    action: 'split.retry',
    path: '/console/checkouts/:id/batches/:outOrderNo/retry',
    title: '重试分账批次 · Retry a split batch',
    load: within('没有这个分账批次 · No such split batch', async (c, req) => {
      const batch = await deps.prisma.splitBatch.findFirst({ where: { outOrderNo: param(req, 'outOrderNo'), checkoutId: c.id }, include: { receivers: { orderBy: { position: 'asc' } } } });
      return batch && { batch, refusal: await retryRefusal(deps, batch) };
    }),
    blocked: (s) => s.refusal,
    parse: () => null,
    summary: ({ c, batch }) => {
      const plan = retryPlan(batch);
      const chunks = planBatches(plan.receivers, deps.config.PROFIT_SHARING_RECEIVER_LIMIT);
      return [
        ['原批次 Failed batch', `${batch.outOrderNo}: ${batch.state}${batch.failCode ? ` (${batch.failCode} ${batch.failMessage ?? ''})` : ''}`],
        ['新分账单号 New out_order_no', chunks.map((_, i) => batchOutOrderNo(c.id, c.splitSeq + 1, i + 1)).join(', ')],
        ...plan.receivers.map((x): [string, string] => [`接收方 Receiver ${x.account}`, `${cny(x.amountFen)} · ${x.type} · 上次 last time: ${x.failReason ?? 'CLOSED'}`]),
        ...plan.skipped.map((x): [string, string] => [`不重试 Not retried ${x.account}`, `${cny(x.amountFen)} · ${x.failReason}`]),
        ['合计 Total', `${cny(plan.receivers.reduce((s, x) => s + x.amountFen, 0))}，在分账额度内预留 · reserved within the split budget`],
      ];
    },
    target: ({ batch }) => batch.outOrderNo,
    run: ({ c, batch }, _i, call) =>
      runKeyed(deps.prisma, call, async () => {
        const split = await retryFailedBatch(deps, splitQueue(), c.merchantId, batch);
        return `重试为新分账 retried as ${split.id}: ${split.batches.map((b) => b.out_order_no).join(', ')} ${cny(split.amount)}`;
      }),
  } satisfies ActionPage<RetrySubject, null>);

  // ---- redeliver a webhook event ----------------------------------------------------------------------
  type EventSubject = { c: ScopedCheckout; event: { id: string; type: string; createdAt: Date }; endpoints: Array<{ id: string; url: string }> };
  mountAction<EventSubject, null>(r, ctx, {
    ...nested,
    action: 'webhook.redeliver',
    path: '/console/checkouts/:id/events/:eventId/redeliver',
    title: '重新推送 Webhook · Redeliver a webhook',
    load: within('没有这个事件 · No such event', async (c, req) => {
      const event = await deps.prisma.merchantEvent.findFirst({ where: { id: param(req, 'eventId'), checkoutId: c.id, merchantId: c.merchantId } });
      if (!event) return null;
      // The endpoints the service will send to (enabled, subscribed to this type now).
      const endpoints = (await deps.prisma.webhookEndpoint.findMany({ where: { merchantId: c.merchantId, deletedAt: null, disabled: false }, orderBy: { createdAt: 'asc' } }))
        .filter((e) => e.events.length === 0 || e.events.includes(event.type));
      return { event, endpoints };
    }),
    blocked: (s) => (s.endpoints.length ? null : '没有启用且订阅此事件的端点 · No enabled webhook endpoint takes this event'),
    parse: () => null,
    summary: ({ event, endpoints }) => [
      ['事件 Event', `${event.type} (${event.id})`],
      ...endpoints.map((e): [string, string] => [`端点 Endpoint ${e.id}`, `${e.url}：重新开始一轮推送 · a new round of delivery`]),
    ],
    target: ({ c, event }) => `${c.id} ${event.id}`,
    run: ({ c, event }, _i, call) =>
      runInTransaction(deps.prisma, call, async (db) => {
        const out = await redeliverEvent(deps, c.merchantId, event.id, undefined, db);
        return `重新推送到 redelivering to ${out.redelivering_to.length} endpoint(s): ${out.redelivering_to.join(', ')}`;
      }),
  } satisfies ActionPage<EventSubject, null>);

  // ---- resolve a split reconciliation mismatch --------------------------------------------------------
  type MismatchSubject = { c: ScopedCheckout; m: { id: string; kind: string; ref: string; message: string; occurrences: number; detail: unknown; lastSeenAt: Date } };
  mountAction<MismatchSubject, { note: string }>(r, ctx, {
    ...nested,
    action: 'mismatch.resolve',
    path: '/console/checkouts/:id/mismatches/:mismatchId/resolve',
    title: '处理对账不符 · Resolve a mismatch',
    load: within('没有这个对账不符 · No such mismatch', async (c, req) => {
      const m = await deps.prisma.splitMismatch.findFirst({ where: { id: param(req, 'mismatchId'), checkoutId: c.id } });
      return m && { m };
    }),
    blocked: ({ m }) => {
      const at = mismatchResolution(m.detail).resolvedAt;
      return at ? `已解决 · Already resolved (${at})` : null;
    },
    fields: [{ name: 'note', label: '说明 Note (必填 required, ≤ 500)', kind: 'textarea', required: true, maxLength: 500, step: 'confirm' }],
    parse: (v, _s, stage) => ({ note: consoleNote(v.note, stage === 'submit') }),
    summary: ({ m }) => [
      ['不符 Mismatch', `${m.kind} · ${m.ref}`],
      ['内容 Detail', `${m.message} ×${m.occurrences}`],
      ['将执行 Effect', '标记为已解决并记录说明；若对账再次发现会重新打开 · Marked resolved with your note; reopened if reconciliation sees it again'],
    ],
    target: ({ c, m }) => `${c.id} ${m.id}`,
    run: ({ m }, input, call) =>
      runInTransaction(deps.prisma, { ...call, note: input.note }, async (db) =>
        (await resolveMismatch(db, m, { email: call.user.email, note: input.note }, deps.now())) ? '已解决 resolved' : '此前已解决 was already resolved'),
  } satisfies ActionPage<MismatchSubject, { note: string }>);
}
