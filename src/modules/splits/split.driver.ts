import type { PaymentChannel, SplitOrderResult } from '../../channels/channel';
import { channelsOf, type ChannelResolver } from '../merchants/channel-resolver';
import type { Config } from '../../config/config';
import type { Checkout, SplitBatch, SplitReceiver, SplitUnfreeze } from '../../generated/prisma/client';
import { AppError, ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import type { Metrics } from '../../lib/metrics';
import type { Prisma, PrismaClient } from '../../lib/prisma';
import { receiverListSchema } from '../checkout/checkout.schemas';
import { closeReceivers, reserveSplit } from './split.budget';
import { limitKeyOf, type RateLimiter } from './split.limiter';
import { splitLimitsFor } from './split.ratio';
import { publishSplitEventIfFinal } from './split.events';
import { backoffMs, finalBatchState, unfreezeOutOrderNo } from './split.rules';
import { batchSourcesOf, receiverSourcesOf, unfreezeSourcesOf } from './split.states';

/**
 * Drives one payment's profit sharing forward, one step at a time, from what the database says
 * (so a run can stop anywhere — crash, redeploy — and the next run resumes):
 *
 *   1. planned checkout, paid_at + PROFIT_SHARING_DELAY (s) reached: reserve the plan (split.budget.ts)
 *   2. the first open batch (split seq, batch seq):
 *        pending    -> add its receivers (once, remembered) -> send (same out_order_no every time)
 *        processing -> query it until no receiver is PENDING
 *      Only the first open batch is ever touched, so a payment has one batch in flight; a later
 *      batch is sent only after every earlier one is final.
 *   3. then the unfreeze of the remainder, if one is due.
 *
 * Unfreeze mechanism. A planned split carries `unfreeze_unsplit: true` on its LAST batch instead of
 * an explicit unfreeze afterwards, because:
 *   - the last batch is sent only when every earlier batch is final (one in flight), so "all
 *     batches done" and "unfreeze" coincide exactly as the issue asks, with no window where the
 *     remainder sits frozen and no extra request: split requests are rate-limited per merchant
 *     (30/s), and one request fewer per payment is 1 in 7 at limit 5 and 1 in 2 at limit 50;
 *   - the flag is fixed when the plan is reserved, so every re-send of that out_order_no is the
 *     byte-identical request WeChat de-duplicates (another body under the same number is refused).
 * The explicit unfreeze (POST /orders/unfreeze, its own new out_order_no) is kept for what the flag
 * cannot cover: on-demand payments (`POST .../splits/finish`), and a planned last batch the channel
 * refused (then nothing was unfrozen by it).
 */

export interface DriverDeps {
  prisma: PrismaClient;
  /** Replaced per payment by the channel of the account it was paid through (channelsOf). */
  channel: PaymentChannel;
  /** That account (null = the default one): its authorised split ratio caps the budget (split.ratio.ts). */
  accountId?: string | null;
  channels?: ChannelResolver;
  config: Config;
  logger: Logger;
  now: () => Date;
  limiter: RateLimiter;
  metrics?: Metrics;
  /** Base of the poll/retry backoff (default PROFIT_SHARING_POLL_MS). */
  pollBaseMs?: number;
  random?: () => number;
}

/**
 * `yieldSlot`: the wait is the channel's per-order spacing: the worker hands the payment back to the
 * queue instead of sleeping in its slot, so other payments use the merchant's rate meanwhile.
 */
export type Step = { kind: 'done'; reason: string } | { kind: 'wait'; until: number; reason: string; yieldSlot?: boolean };
type Next = Step | { kind: 'continue' };

const CONTINUE: Next = { kind: 'continue' };
const POLL_CAP_MS = 5 * 60_000;
const RETRY_CAP_MS = 10 * 60_000;
const UNFREEZE_DESCRIPTION = '解冻全部剩余资金';

/** The reason of the wait answered when `beforeStep` says the payment's lock was lost. */
export const LOCK_LOST = 'payment lock lost';

export interface DriveOptions {
  /**
   * Called before every step (the worker renews its per-payment lock here, so a long run keeps it);
   * false = the lock was lost to another worker: stop now and let the job come back later.
   */
  beforeStep?: () => Promise<boolean>;
}

/** Runs steps until the payment needs to wait or has nothing left to do. */
export async function driveCheckout(d: DriverDeps, checkoutId: string, maxSteps = 500, opts: DriveOptions = {}): Promise<Step> {
  // A payment is split through the account it was paid into (a sub-merchant's through its service provider).
  const account = await channelsOf(d).forCheckout(checkoutId);
  d = { ...d, channel: account.channel, accountId: account.accountId };
  for (let i = 0; i < maxSteps; i++) {
    if (opts.beforeStep && !(await opts.beforeStep())) return { kind: 'wait', until: d.now().getTime(), reason: LOCK_LOST };
    const next = await stepOnce(d, checkoutId);
    if (next.kind !== 'continue') return next;
  }
  return { kind: 'wait', until: d.now().getTime(), reason: 'step budget used; yield to other payments' };
}

async function stepOnce(d: DriverDeps, checkoutId: string): Promise<Next> {
  const c = await d.prisma.checkout.findUnique({ where: { id: checkoutId }, include: { splitUnfreeze: true } });
  if (!c) return { kind: 'done', reason: 'unknown checkout' };
  if (c.profitSharing === 'none') return { kind: 'done', reason: 'profit sharing not enabled' };
  if (c.status !== 'paid' || !c.transactionId || !c.paidAt) return { kind: 'done', reason: `checkout ${c.status}` };
  const pc = c as typeof c & PaidCheckout;
  const now = d.now().getTime();
  const readyAt = c.paidAt.getTime() + d.config.PROFIT_SHARING_DELAY * 1000;

  if (c.profitSharing === 'planned' && c.splitSeq === 0) {
    if (!c.splitPlan) return { kind: 'done', reason: 'no plan' };
    // WeChat refuses splits in the first minute after payment ("订单处理中"): wait before reserving
    // too, so the plan stays replaceable (PUT split-plan) until the first request is due.
    if (now < readyAt) return { kind: 'wait', until: readyAt, reason: 'wait after payment' };
    return materialisePlan(d, c);
  }

  const batch = await d.prisma.splitBatch.findFirst({
    where: { checkoutId, state: { in: ['pending', 'processing'] } },
    orderBy: [{ split: { seq: 'asc' } }, { seq: 'asc' }],
    include: { receivers: { orderBy: { position: 'asc' } } },
  });
  if (batch) {
    if (batch.state === 'processing') return pollBatch(d, pc, batch);
    if (now < readyAt) return { kind: 'wait', until: readyAt, reason: 'wait after payment' };
    return spaced(d, pc, now) ?? sendBatch(d, pc, batch);
  }

  const uf = c.splitUnfreeze;
  if (uf && (uf.state === 'pending' || uf.state === 'processing')) {
    if (uf.method === 'last_batch') return repairLastBatchUnfreeze(d, pc, uf);
    if (uf.state === 'processing') return pollUnfreeze(d, pc, uf);
    if (now < readyAt) return { kind: 'wait', until: readyAt, reason: 'wait after payment' };
    return spaced(d, pc, now) ?? sendUnfreeze(d, pc, uf);
  }
  return { kind: 'done', reason: 'nothing to do' };
}

type PaidCheckout = Checkout & { transactionId: string; paidAt: Date };

/**
 * WeChat takes about one split request per second for the same order ("对同笔订单分账频率过高",
 * 429 RATELIMIT_EXCEED; FACTS-partner-bills §1.10): the next request of a payment waits until
 * PROFIT_SHARING_ORDER_INTERVAL_MS after the channel answered the previous one. Counting from the
 * answer, not the send, keeps the gap at WeChat's end whatever the network did. A crash between a
 * request and its mark can make one request early: that is a RATELIMIT_EXCEED, retried later.
 */
function spaced(d: DriverDeps, c: PaidCheckout, now: number): Step | null {
  const interval = d.config.PROFIT_SHARING_ORDER_INTERVAL_MS;
  const last = c.splitLastRequestAt?.getTime();
  if (interval <= 0 || last === undefined || now >= last + interval) return null;
  return { kind: 'wait', until: last + interval, reason: 'one split request per order per interval', yieldSlot: true };
}

async function markRequested(d: DriverDeps, checkoutId: string): Promise<void> {
  await d.prisma.checkout.update({ where: { id: checkoutId }, data: { splitLastRequestAt: d.now() } });
}
type BatchWithReceivers = SplitBatch & { receivers: SplitReceiver[] };

const PLAN_ATTEMPTS = 5;

async function materialisePlan(d: DriverDeps, first: Checkout): Promise<Next> {
  let c: Checkout | null = first;
  let limits;
  try {
    limits = await splitLimitsFor(d, { accountId: d.accountId ?? null, channel: d.channel });
  } catch (err) {
    // The authorised ratio could not be read (channel down, none remembered): not the plan's fault.
    if (!(err instanceof AppError) || err.code !== 'CHANNEL_UNAVAILABLE') throw err;
    return { kind: 'wait', until: d.now().getTime() + backoffMs(1, pollBase(d), RETRY_CAP_MS, d.random), reason: 'authorised split ratio unknown' };
  }
  for (let attempt = 0; attempt < PLAN_ATTEMPTS; attempt++) {
    // Not (or no longer) a plan waiting to be reserved: stepOnce decides what comes next.
    if (!c || c.status !== 'paid' || c.profitSharing !== 'planned' || c.splitSeq !== 0 || !c.splitPlan) return CONTINUE;
    const plan = receiverListSchema.safeParse(c.splitPlan);
    try {
      if (!plan.success) throw new AppError('VALIDATION_FAILED', `stored plan is invalid: ${plan.error.issues[0]?.message}`);
      const r = await reserveSplit(d.prisma, {
        checkoutId: c.id,
        kind: 'planned',
        receivers: plan.data,
        limits,
        now: d.now(),
        unfreezeWithLastBatch: true,
        expectedPlan: c.splitPlan,
      });
      d.logger.info({ checkoutId: c.id, splitId: r.splitId, batches: r.batches.length }, 'planned split reserved');
      return CONTINUE;
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      // A concurrent change (plan replaced by PUT split-plan, reservation raced): the refusal may be
      // about a plan the row no longer holds, so read it again and reserve what it holds now.
      const fresh: Checkout | null = await d.prisma.checkout.findUnique({ where: { id: first.id } });
      if (err.code === 'CONFLICT' || !fresh || fresh.splitSeq !== 0 || JSON.stringify(fresh.splitPlan) !== JSON.stringify(c.splitPlan)) {
        c = fresh;
        continue;
      }
      // The merchant can still PUT a valid plan (split_seq is still 0); nothing was reserved. A
      // successful PUT clears this alert and re-kicks the payment (split.service.ts).
      const stored = await raisePlanAlert(d, c.id, c.splitPlan, `the split plan was refused: ${err.code}: ${err.message}`);
      if (stored === null) {
        c = await d.prisma.checkout.findUnique({ where: { id: first.id } });
        continue;
      }
      return { kind: 'done', reason: `plan refused: ${err.code}` };
    }
  }
  return CONTINUE;
}

/**
 * PLAN_REJECTED, stored only while the checkout still holds the refused plan. The row lock orders it
 * with PUT split-plan (which replaces the plan and deletes this alert in one transaction), so an
 * alert about an old plan can never outlive its replacement. null = the plan changed meanwhile.
 */
async function raisePlanAlert(d: DriverDeps, checkoutId: string, plan: unknown, message: string): Promise<boolean | null> {
  const created = await d.prisma.$transaction(async (db) => {
    const still = await db.$queryRaw<Array<{ id: string }>>`
      SELECT id FROM checkouts
       WHERE id = ${checkoutId} AND split_seq = 0 AND split_plan = ${JSON.stringify(plan)}::jsonb
         FOR UPDATE`;
    if (still.length !== 1) return null;
    const r = await db.splitAlert.createMany({ data: [{ id: newId('sa'), checkoutId, kind: 'PLAN_REJECTED', message }], skipDuplicates: true });
    return r.count === 1;
  });
  if (created) d.logger.warn({ checkoutId, kind: 'PLAN_REJECTED', alert: message }, 'split alert');
  return created;
}

// ---- batches -------------------------------------------------------------------------------------

/** One split request's outcome in metrics: accepted, retry (a retryable channel error), refused, error. */
function countRequest(d: DriverDeps, kind: 'order' | 'unfreeze', err?: unknown): void {
  const outcome = err === undefined ? 'accepted' : err instanceof ChannelError ? (err.retryable ? 'retry' : 'refused') : 'error';
  d.metrics?.splitRequests.inc({ kind, outcome });
}

async function sendBatch(d: DriverDeps, c: PaidCheckout, first: BatchWithReceivers): Promise<Next> {
  // Mark "sent" BEFORE the first request: a refund cancels only batches never sent (refund.budget.ts),
  // by compare-and-set on this same column, so a batch is either cancelled or sent, never both.
  if (!first.sentAt) {
    const claimed = await d.prisma.splitBatch.updateMany({ where: { id: first.id, state: 'pending', sentAt: null }, data: { sentAt: d.now() } });
    if (claimed.count !== 1) return CONTINUE;
  }
  const added = await ensureReceivers(d, first);
  if (added) return onSendError(d, c, first, added);
  const batch = await sealNames(d, first);
  if (batch.unfreezeUnsplit) await noteUnsplitBeforeLastBatch(d, c, batch);

  let answer: SplitOrderResult;
  try {
    answer = await d.limiter.run(limitKeyOf(d.channel), () =>
      d.channel.createSplitOrder({
        transactionId: c.transactionId,
        outOrderNo: batch.outOrderNo,
        receivers: batch.receivers.map((r) => ({
          type: r.type as 'MERCHANT_ID' | 'PERSONAL_OPENID',
          account: r.account,
          ...(r.nameCiphertext !== null ? { nameCiphertext: r.nameCiphertext } : r.name !== null ? { name: r.name } : {}),
          amountFen: r.amountFen,
          description: r.description,
        })),
        unfreezeUnsplit: batch.unfreezeUnsplit,
        ...(batch.sensitiveKeyId !== null ? { sensitiveKeyId: batch.sensitiveKeyId } : {}),
      }),
    );
  } catch (err) {
    countRequest(d, 'order', err);
    await markRequested(d, c.id);
    return onSendError(d, c, batch, err);
  }
  countRequest(d, 'order');
  const now = d.now();
  await d.prisma.$transaction(async (db) => {
    await db.checkout.update({ where: { id: c.id }, data: { splitLastRequestAt: now } });
    await db.splitBatch.updateMany({
      where: { id: batch.id, state: { in: batchSourcesOf('processing') } },
      data: { state: 'processing', orderId: answer.orderId, sentAt: now, lastError: null },
    });
    await applyAnswer(db, d, c, batch.id, answer, now);
  });
  d.logger.info({ checkoutId: c.id, outOrderNo: batch.outOrderNo, receivers: batch.receivers.length }, 'split batch accepted');
  return CONTINUE;
}

/**
 * Receiver names are RSA-OAEP encrypted ONCE per batch and stored with the key id (Wechatpay-Serial):
 * OAEP output differs on every call, and WeChat may compare a re-sent out_order_no with what it first
 * received ("分账接收方与原请求不一致"), so every re-send carries the identical ciphertext and serial.
 * Compare-and-set on sensitive_key_id: two workers racing keep the first one's ciphertexts.
 */
async function sealNames(d: DriverDeps, batch: BatchWithReceivers): Promise<BatchWithReceivers> {
  const named = batch.receivers.filter((r) => r.name !== null && r.nameCiphertext === null);
  if (batch.sensitiveKeyId !== null || named.length === 0) return batch;
  const sealed = d.channel.sealSensitive(named.map((r) => r.name!));
  await d.prisma.$transaction(async (db) => {
    const won = await db.splitBatch.updateMany({ where: { id: batch.id, sensitiveKeyId: null }, data: { sensitiveKeyId: sealed.keyId } });
    if (won.count !== 1) return;
    for (const [i, r] of named.entries()) await db.splitReceiver.update({ where: { id: r.id }, data: { nameCiphertext: sealed.ciphertexts[i]! } });
  });
  return d.prisma.splitBatch.findUniqueOrThrow({ where: { id: batch.id }, include: { receivers: { orderBy: { position: 'asc' } } } });
}

/**
 * Before the last planned batch (the one that unfreezes the rest): what the channel says is still
 * splittable (its amount − fee − merchant-funded coupons − accepted splits). It bounds later
 * reservations and gives the true unfreeze amount; our own arithmetic cannot see the fee.
 */
async function noteUnsplitBeforeLastBatch(d: DriverDeps, c: PaidCheckout, batch: BatchWithReceivers): Promise<void> {
  const uf = await d.prisma.splitUnfreeze.findUnique({ where: { checkoutId: c.id } });
  if (!uf || uf.method !== 'last_batch' || uf.outOrderNo !== batch.outOrderNo || uf.unsplitBeforeFen !== null) return;
  const left = await d.channel.unsplitAmount(c.transactionId).catch(() => null);
  if (!left) return; // best effort: the unfreeze amount then falls back to our own arithmetic
  await d.prisma.$transaction(async (db) => {
    await db.splitUnfreeze.updateMany({ where: { id: uf.id, unsplitBeforeFen: null }, data: { unsplitBeforeFen: left.unsplitAmountFen } });
    await capByChannel(db, c.id, left.unsplitAmountFen);
  });
}

/**
 * split_cap_fen = what the channel has accepted (receivers not CLOSED in sent batches) + what it says
 * is left; the reservation UPDATE keeps split_reserved_fen under it (split.budget.ts). Unsent (pending)
 * and refused batches are not accepted: their money is part of what is left.
 */
async function capByChannel(db: Prisma.TransactionClient, checkoutId: string, leftFen: number): Promise<void> {
  await db.$executeRaw`
    UPDATE checkouts
       SET split_cap_fen = LEAST(COALESCE(split_cap_fen, 2147483647), ${leftFen}::int + COALESCE((
             SELECT SUM(r.amount_fen) FROM split_receivers r JOIN split_batches b ON b.id = r.batch_id
              WHERE b.checkout_id = ${checkoutId} AND b.state NOT IN ('pending', 'failed') AND r.state <> 'CLOSED'), 0)::int)
     WHERE id = ${checkoutId}`;
}

/** receivers/add for every receiver of the batch not added before (idempotent at WeChat; we still do it once). */
async function ensureReceivers(d: DriverDeps, batch: BatchWithReceivers): Promise<unknown | null> {
  // Receivers are added per paying merchant: the sub-merchant in partner mode.
  const base = { channel: d.channel.name, mchid: d.channel.partner?.subMchid ?? d.channel.mchid, appid: d.channel.appid };
  const known = await d.prisma.channelReceiver.findMany({
    where: { ...base, OR: batch.receivers.map((r) => ({ type: r.type, account: r.account })) },
    select: { type: true, account: true },
  });
  const have = new Set(known.map((k) => `${k.type}|${k.account}`));
  const missing = batch.receivers.filter((r) => !have.has(`${r.type}|${r.account}`));
  const results = await Promise.allSettled(
    missing.map(async (r) => {
      await d.channel.addReceiver({ type: r.type as 'MERCHANT_ID' | 'PERSONAL_OPENID', account: r.account, ...(r.name !== null ? { name: r.name } : {}), relationType: r.relationType, ...(r.customRelation !== null ? { customRelation: r.customRelation } : {}) });
      await d.prisma.channelReceiver.createMany({ data: [{ id: newId('cr'), ...base, type: r.type, account: r.account }], skipDuplicates: true });
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return null;
  const err = failed.reason;
  if (err instanceof ChannelError) return new ChannelError(err.code, `receivers/add refused: ${err.message}`, err.opts);
  return err;
}

async function onSendError(d: DriverDeps, c: PaidCheckout, batch: BatchWithReceivers, err: unknown): Promise<Next> {
  if (!(err instanceof ChannelError)) throw err;
  const now = d.now();
  if (isNoRelation(err) && batch.attempts < NO_RELATION_RETRIES) {
    // A receiver we remember as added is not bound at the channel (deleted there since): forget
    // it, so the next attempt adds it again first, then re-sends. The request was refused, not
    // accepted, so the same out_order_no is still free for it.
    await forgetReceivers(d, d.prisma, batch);
    await d.prisma.splitBatch.updateMany({ where: { id: batch.id, state: 'pending' }, data: { attempts: batch.attempts + 1, lastError: `${err.code}: ${err.message}`.slice(0, 500) } });
    d.logger.warn({ checkoutId: c.id, outOrderNo: batch.outOrderNo }, 'split batch: receiver not bound at the channel; re-adding');
    return CONTINUE;
  }
  if (isRetryLater(err)) {
    const attempts = batch.attempts + 1;
    await d.prisma.splitBatch.updateMany({
      where: { id: batch.id, state: 'pending' },
      data: { attempts, lastError: `${err.code}: ${err.message}`.slice(0, 500) },
    });
    const until = now.getTime() + retryDelay(d, err, attempts);
    d.logger.warn({ checkoutId: c.id, outOrderNo: batch.outOrderNo, code: err.code, attempts }, 'split batch: retry later with the same out_order_no');
    return { kind: 'wait', until, reason: `retry ${err.code}` };
  }
  // Terminal: the channel refused this request; it was never accepted, so its money and its
  // request slot go back to the budget. The reason is kept and shown on the checkout.
  // NOT_ENOUGH: ask the channel what is left (fees, coupons) before failing, so later splits are
  // refused by our budget (422) instead of by the channel.
  const left = err.code === 'NOT_ENOUGH' ? await d.channel.unsplitAmount(c.transactionId).catch(() => null) : null;
  // "分账金额超出最大分账比例" although our budget allowed it: the sub-merchant lowered its grant since we
  // read it. Forget when we read it, so the next split reads it again (split.ratio.ts).
  if (d.accountId && /最大分账比例/.test(err.message)) await d.prisma.channelAccount.update({ where: { id: d.accountId }, data: { maxRatioAt: null } });
  const failMessage = left ? `${err.message} (the channel says ${left.unsplitAmountFen} fen are left to split)` : err.message;
  await d.prisma.$transaction(async (db) => {
    const moved = await db.splitBatch.updateMany({
      where: { id: batch.id, state: { in: batchSourcesOf('failed') } },
      data: { state: 'failed', failCode: err.code, failMessage: failMessage.slice(0, 500), finishedAt: now },
    });
    if (moved.count !== 1) return;
    if (left) await capByChannel(db, c.id, left.unsplitAmountFen);
    await closeReceivers(db, {
      checkoutId: c.id,
      closed: batch.receivers.map((r) => ({ id: r.id, failReason: err.code })),
      now,
      releaseRequest: true,
    });
    if (batch.unfreezeUnsplit) {
      // The refused last batch unfroze nothing: fall back to an explicit unfreeze, with a number of its own.
      await db.splitUnfreeze.updateMany({
        where: { checkoutId: c.id, method: 'last_batch', state: 'pending' },
        data: { method: 'explicit', outOrderNo: unfreezeOutOrderNo(c.id) },
      });
    }
    if (isNoRelation(err)) await forgetReceivers(d, db, batch);
    await publishSplitEventIfFinal(db, batch.splitId);
  });
  d.logger.error({ checkoutId: c.id, outOrderNo: batch.outOrderNo, code: err.code, message: err.message }, 'split batch refused by the channel');
  return CONTINUE;
}

async function pollBatch(d: DriverDeps, c: PaidCheckout, batch: BatchWithReceivers): Promise<Next> {
  let answer: SplitOrderResult | null;
  try {
    answer = await d.channel.querySplitOrder(c.transactionId, batch.outOrderNo);
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    return pollLater(d, batch, `${err.code}: ${err.message}`, err);
  }
  if (!answer) return pollLater(d, batch, 'RESOURCE_NOT_EXISTS: the channel does not know this out_order_no');
  const now = d.now();
  const final = await d.prisma.$transaction((db) => applyAnswer(db, d, c, batch.id, answer, now));
  return final ? CONTINUE : pollLater(d, batch, null);
}

async function pollLater(d: DriverDeps, batch: SplitBatch, lastError: string | null, err?: ChannelError): Promise<Next> {
  const polls = batch.polls + 1;
  await d.prisma.splitBatch.update({ where: { id: batch.id }, data: { polls, ...(lastError !== null ? { lastError: lastError.slice(0, 500) } : {}) } });
  const delay = err ? retryDelay(d, err, polls) : backoffMs(polls, pollBase(d), POLL_CAP_MS, d.random);
  return { kind: 'wait', until: d.now().getTime() + delay, reason: 'poll split result' };
}

/**
 * Stores what the channel says about each receiver (PENDING -> SUCCESS | CLOSED by compare-and-set;
 * CLOSED releases its money) and closes the batch once none is PENDING. FINISHED on the order only
 * means "processed": the receivers are read one by one. Returns whether the batch is final.
 */
async function applyAnswer(db: Prisma.TransactionClient, d: DriverDeps, c: PaidCheckout, batchId: string, answer: SplitOrderResult, now: Date): Promise<boolean> {
  const ours = await db.splitReceiver.findMany({ where: { batchId }, orderBy: { position: 'asc' } });
  const closed: Array<{ id: string; failReason: string; detailId?: string | null }> = [];
  const succeeded: Array<{ id: string; detailId: string; finishedAt: string }> = [];
  for (const r of answer.receivers) {
    const mine = ours.find((o) => o.type === r.type && o.account === r.account);
    if (!mine) {
      d.logger.warn({ checkoutId: c.id, batchId, account: r.account }, 'channel reports a receiver this batch does not have');
      continue;
    }
    if (mine.state !== 'PENDING' || r.result === 'PENDING') continue;
    if (r.result === 'SUCCESS') {
      succeeded.push({ id: mine.id, detailId: r.detailId ?? '', finishedAt: (parseTime(r.finishTime) ?? now).toISOString() });
      mine.state = 'SUCCESS';
    } else {
      closed.push({ id: mine.id, failReason: r.failReason ?? 'CLOSED', detailId: r.detailId ?? null });
      mine.state = 'CLOSED';
    }
  }
  if (succeeded.length) {
    // One statement for the whole batch (up to 50 receivers); PENDING -> SUCCESS only (compare-and-set).
    await db.$executeRaw`
      UPDATE split_receivers AS r
         SET state = 'SUCCESS', detail_id = NULLIF(v.detail_id, ''),
             finished_at = (v.finished_at::timestamptz AT TIME ZONE 'UTC'), updated_at = ${now.toISOString()}::timestamptz AT TIME ZONE 'UTC'
        FROM unnest(${succeeded.map((x) => x.id)}::text[], ${succeeded.map((x) => x.detailId)}::text[], ${succeeded.map((x) => x.finishedAt)}::text[])
             AS v(id, detail_id, finished_at)
       WHERE r.id = v.id AND r.state = ANY(${receiverSourcesOf('SUCCESS')}::"SplitReceiverState"[])`;
  }
  if (closed.length) await closeReceivers(db, { checkoutId: c.id, closed, now });
  const final = finalBatchState(ours);
  if (!final) return false;
  const moved = await db.splitBatch.updateMany({
    where: { id: batchId, state: { in: batchSourcesOf(final) } },
    data: { state: final, finishedAt: now },
  });
  if (moved.count === 1) {
    const batch = await db.splitBatch.findUniqueOrThrow({ where: { id: batchId } });
    if (batch.unfreezeUnsplit) await completeLastBatchUnfreeze(db, c, now);
    await publishSplitEventIfFinal(db, batch.splitId);
  }
  return true;
}

/**
 * The last planned batch finished with unfreeze_unsplit: the remainder went back to the merchant. That
 * remainder is what the channel said was left before the batch minus what the batch split; without
 * that reading, the paid amount less merchant-funded coupons and every split (the fee is then unseen).
 */
async function completeLastBatchUnfreeze(db: Prisma.TransactionClient, c: PaidCheckout, now: Date): Promise<void> {
  const uf = await db.splitUnfreeze.findUnique({ where: { checkoutId: c.id } });
  if (!uf) return;
  let amountFen: number;
  if (uf.unsplitBeforeFen !== null) {
    const last = await db.splitReceiver.aggregate({ where: { checkoutId: c.id, state: 'SUCCESS', batch: { outOrderNo: uf.outOrderNo } }, _sum: { amountFen: true } });
    amountFen = uf.unsplitBeforeFen - (last._sum.amountFen ?? 0);
  } else {
    const paid = (c.paidTotalFen ?? c.amountFen) - c.merchantFundedFen;
    const agg = await db.splitReceiver.aggregate({ where: { checkoutId: c.id, state: 'SUCCESS' }, _sum: { amountFen: true } });
    amountFen = paid - (agg._sum.amountFen ?? 0);
  }
  await db.splitUnfreeze.updateMany({
    where: { checkoutId: c.id, method: 'last_batch', state: { in: unfreezeSourcesOf('succeeded') } },
    data: { state: 'succeeded', amountFen: Math.max(0, amountFen), finishedAt: now },
  });
}

/** A last_batch unfreeze left open with no open batch (crash between two writes): settle it now. */
async function repairLastBatchUnfreeze(d: DriverDeps, c: PaidCheckout, uf: SplitUnfreeze): Promise<Next> {
  const batch = await d.prisma.splitBatch.findUnique({ where: { outOrderNo: uf.outOrderNo } });
  const now = d.now();
  await d.prisma.$transaction(async (db) => {
    if (batch && batch.state !== 'failed') await completeLastBatchUnfreeze(db, c, now);
    else
      await db.splitUnfreeze.updateMany({
        where: { id: uf.id, method: 'last_batch', state: 'pending' },
        data: { method: 'explicit', outOrderNo: unfreezeOutOrderNo(c.id) },
      });
  });
  return CONTINUE;
}

// ---- explicit unfreeze ---------------------------------------------------------------------------

async function sendUnfreeze(d: DriverDeps, c: PaidCheckout, uf: SplitUnfreeze): Promise<Next> {
  let answer: SplitOrderResult;
  try {
    answer = await d.limiter.run(limitKeyOf(d.channel), () =>
      d.channel.unfreeze({ transactionId: c.transactionId, outOrderNo: uf.outOrderNo, description: UNFREEZE_DESCRIPTION }),
    );
  } catch (err) {
    countRequest(d, 'unfreeze', err);
    await markRequested(d, c.id);
    if (!(err instanceof ChannelError)) throw err;
    const now = d.now();
    if (isRetryLater(err)) {
      const attempts = uf.attempts + 1;
      await d.prisma.splitUnfreeze.update({ where: { id: uf.id }, data: { attempts, lastError: `${err.code}: ${err.message}`.slice(0, 500) } });
      return { kind: 'wait', until: now.getTime() + retryDelay(d, err, attempts), reason: `unfreeze retry ${err.code}` };
    }
    // Refused: if nothing is left frozen (e.g. already unfrozen), that is the outcome we wanted.
    const left = await d.channel.unsplitAmount(c.transactionId).catch(() => null);
    const nothingLeft = left !== null && left.unsplitAmountFen === 0;
    await d.prisma.splitUnfreeze.updateMany({
      where: { id: uf.id, state: { in: unfreezeSourcesOf(nothingLeft ? 'succeeded' : 'failed') } },
      data: nothingLeft
        ? { state: 'succeeded', amountFen: 0, finishedAt: now, lastError: `${err.code}: ${err.message}`.slice(0, 500) }
        : { state: 'failed', failCode: err.code, failMessage: err.message.slice(0, 500), finishedAt: now },
    });
    if (!nothingLeft) d.logger.error({ checkoutId: c.id, code: err.code, message: err.message }, 'unfreeze refused by the channel');
    return CONTINUE;
  }
  countRequest(d, 'unfreeze');
  const now = d.now();
  await d.prisma.$transaction(async (db) => {
    await db.checkout.update({ where: { id: c.id }, data: { splitLastRequestAt: now } });
    await db.splitUnfreeze.updateMany({ where: { id: uf.id, state: { in: unfreezeSourcesOf('processing') } }, data: { state: 'processing', sentAt: now, lastError: null } });
    await applyUnfreezeAnswer(db, uf.id, answer, now);
  });
  return CONTINUE;
}

async function pollUnfreeze(d: DriverDeps, c: PaidCheckout, uf: SplitUnfreeze): Promise<Next> {
  let answer: SplitOrderResult | null = null;
  let lastError: string | null = null;
  try {
    answer = await d.channel.querySplitOrder(c.transactionId, uf.outOrderNo);
    if (!answer) lastError = 'RESOURCE_NOT_EXISTS: the channel does not know this unfreeze';
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    lastError = `${err.code}: ${err.message}`;
  }
  const now = d.now();
  if (answer && (await d.prisma.$transaction((db) => applyUnfreezeAnswer(db, uf.id, answer, now)))) return CONTINUE;
  const polls = uf.polls + 1;
  await d.prisma.splitUnfreeze.update({ where: { id: uf.id }, data: { polls, ...(lastError ? { lastError: lastError.slice(0, 500) } : {}) } });
  return { kind: 'wait', until: now.getTime() + backoffMs(polls, pollBase(d), POLL_CAP_MS, d.random), reason: 'poll unfreeze' };
}

async function applyUnfreezeAnswer(db: Prisma.TransactionClient, id: string, answer: SplitOrderResult, now: Date): Promise<boolean> {
  if (answer.receivers.some((r) => r.result === 'PENDING') || (answer.receivers.length === 0 && answer.state !== 'FINISHED')) return false;
  const ok = answer.receivers.filter((r) => r.result === 'SUCCESS');
  const failed = answer.receivers.find((r) => r.result === 'CLOSED');
  await db.splitUnfreeze.updateMany({
    where: { id, state: { in: unfreezeSourcesOf(ok.length || !failed ? 'succeeded' : 'failed') } },
    data:
      ok.length || !failed
        ? { state: 'succeeded', amountFen: ok.reduce((s, r) => s + r.amountFen, 0), finishedAt: now }
        : { state: 'failed', failCode: failed.failReason ?? 'CLOSED', failMessage: 'the channel closed the unfreeze', finishedAt: now },
  });
  return true;
}

// ---- helpers -------------------------------------------------------------------------------------

/**
 * Retry later with the same out_order_no: 5xx, timeouts, network, SYSTEM_ERROR, FREQUENCY_LIMITED,
 * "订单处理中" (NOT_READY) — everything the adapter marks retryable — and every "outcome unknown":
 * an answer whose signature could not be verified, or a 2xx we could not read (BAD_RESPONSE). The
 * channel may have accepted it, so the reservation stays and only a re-send of the same number
 * (WeChat de-duplicates it) or a query can tell; its budget is never released on it.
 */
function isRetryLater(err: ChannelError): boolean {
  return err.retryable || isOutcomeUnknown(err);
}

function isOutcomeUnknown(err: ChannelError): boolean {
  if ((err.opts.detail as { outcomeUnknown?: boolean } | undefined)?.outcomeUnknown === true) return true;
  const status = err.opts.httpStatus;
  // A 2xx means the channel accepted the request, whatever we then failed to make of its answer.
  return status !== undefined && status >= 200 && status < 300;
}

const NO_RELATION_RETRIES = 2;

/** "分账接收方关系不存在" / NO_RELATION: the receiver is not (or no longer) added at the channel. */
function isNoRelation(err: ChannelError): boolean {
  return err.code === 'NO_RELATION' || /关系不存在/.test(err.message);
}

async function forgetReceivers(d: DriverDeps, db: Prisma.TransactionClient | PrismaClient, batch: BatchWithReceivers): Promise<void> {
  await db.channelReceiver.deleteMany({
    where: { channel: d.channel.name, mchid: d.channel.partner?.subMchid ?? d.channel.mchid, OR: batch.receivers.map((r) => ({ type: r.type, account: r.account })) },
  });
}

function retryDelay(d: DriverDeps, err: ChannelError, attempt: number): number {
  const backoff = backoffMs(attempt, pollBase(d), RETRY_CAP_MS, d.random);
  // "Not ready" means WeChat's own minute after payment: honour the adapter's hint as a floor.
  // Per-order rate (RATELIMIT_EXCEED): at least the channel's second, and never sooner than our own spacing.
  if (err.code === 'RATELIMIT_EXCEED' || err.code === 'FREQUENCY_LIMITED') {
    const hint = (err.opts.detail as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 1000;
    return Math.max(backoff, hint, d.config.PROFIT_SHARING_ORDER_INTERVAL_MS);
  }
  if (err.code === 'NOT_READY') {
    const hint = (err.opts.detail as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 60_000;
    return Math.max(backoff, Math.min(hint, Math.max(1000, d.config.PROFIT_SHARING_DELAY * 1000)));
  }
  return backoff;
}

function pollBase(d: DriverDeps): number {
  return d.pollBaseMs ?? d.config.PROFIT_SHARING_POLL_MS;
}

function parseTime(s: string | undefined): Date | null {
  if (!s) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : new Date(t);
}

/** Stores an operational alert once per (checkout, kind) and logs it when new. */
export async function raiseAlert(d: { prisma: PrismaClient; logger: Logger }, checkoutId: string, kind: string, message: string): Promise<boolean> {
  const r = await d.prisma.splitAlert.createMany({ data: [{ id: newId('sa'), checkoutId, kind, message }], skipDuplicates: true });
  if (r.count === 1) d.logger.warn({ checkoutId, kind, alert: message }, 'split alert');
  return r.count === 1;
}
