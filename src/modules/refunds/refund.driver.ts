import type { ChannelRefund, PaymentChannel } from '../../channels/channel';
import { channelsOf } from '../merchants/channel-resolver';
import { accountNotifyUrl } from '../merchants/account.service';
import type { Config } from '../../config/config';
import type { Refund, RefundReturn } from '../../generated/prisma/client';
import { ChannelError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { PrismaClient } from '../../lib/prisma';
import { applyRefundResult, emit, releaseRefund, releaseReturns } from './refund.apply';
import { backoffMs } from './refund.rules';
import { OPEN_REFUND_STATUSES, refundSourcesOf, returnSourcesOf } from './refund.states';

/**
 * Drives one refund forward a step at a time from what the database says, so a run can stop anywhere
 * (crash, redeploy) and the next one resumes, like split.driver.ts does for a split:
 *
 *   1. return orders, REFUND_RETURN_CONCURRENCY at a time, in position order (same out_return_no on every
 *      re-send, so a return whose answer was lost is never made twice); a FAILED one stops here:
 *        no return succeeded yet  -> the refund fails with the reason, nothing moved
 *        some already succeeded   -> the refund stays `returning` with failure_reason; a retry
 *                                    (POST /v1/refunds/{id}/retry) sends the failed ones again under a new number
 *   2. the channel refund (same out_refund_no on every re-send): PROCESSING -> `processing`;
 *      terminal refusal (NOT_ENOUGH, ...) -> `failed` with the code stored and shown;
 *      5xx / timeout / unreadable answer -> re-sent later with the same number
 *   3. `processing`: the notify normally finishes it; without one, the query from
 *      REFUND_QUERY_AFTER_MS on, with backoff.
 * A step never holds a database transaction across a channel call.
 */

export interface RefundDriverDeps {
  prisma: PrismaClient;
  channel: PaymentChannel;
  config: Config;
  logger: Logger;
  now: () => Date;
  random?: () => number;
  /** The refund notify URL of the payment's account (default: the default account's). */
  notifyUrl?: string;
}

export type Step = { kind: 'done'; reason: string } | { kind: 'wait'; until: number; reason: string };
type Next = Step | { kind: 'continue' };
const CONTINUE: Next = { kind: 'continue' };
const RETRY_BASE_MS = 1_000;
const RETRY_CAP_MS = 10 * 60_000;
const POLL_CAP_MS = 60 * 60_000;

type Loaded = Refund & { returns: RefundReturn[]; checkout: { transactionId: string | null; paidTotalFen: number | null } };

export function refundNotifyUrl(config: Config): string {
  return new URL('/notify/wechatpay/refunds', config.notifyUrl).toString();
}

export async function driveRefund(deps: RefundDriverDeps, refundId: string, maxSteps = 200): Promise<Step> {
  const d = await forPaymentAccount(deps, refundId);
  for (let i = 0; i < maxSteps; i++) {
    const next = await stepOnce(d, refundId);
    if (next.kind !== 'continue') return next;
  }
  return { kind: 'wait', until: d.now().getTime(), reason: 'step budget used' };
}

/**
 * A refund (and its returns) goes through the channel account the payment was made with: its keys and
 * mchid, and its own refund notify URL, verified with that account's keys.
 */
async function forPaymentAccount(d: RefundDriverDeps, refundId: string): Promise<RefundDriverDeps> {
  const row = await d.prisma.refund.findUnique({ where: { id: refundId }, select: { checkoutId: true } });
  if (!row) return d;
  const { accountId, channel } = await channelsOf(d).forCheckout(row.checkoutId);
  if (accountId === null) return d;
  return { ...d, channel, notifyUrl: accountNotifyUrl(d.config, accountId, 'refunds') };
}

async function stepOnce(d: RefundDriverDeps, refundId: string): Promise<Next> {
  const r = await d.prisma.refund.findUnique({
    where: { id: refundId },
    include: { returns: { orderBy: { position: 'asc' } }, checkout: { select: { transactionId: true, paidTotalFen: true } } },
  });
  if (!r) return { kind: 'done', reason: 'unknown refund' };
  if (!OPEN_REFUND_STATUSES.includes(r.status)) return { kind: 'done', reason: r.status };
  const now = d.now().getTime();
  if (r.nextAttemptAt && r.nextAttemptAt.getTime() > now) return { kind: 'wait', until: r.nextAttemptAt.getTime(), reason: 'not due' };
  if (r.status === 'processing') return queryRefund(d, r);
  if (r.returns.some((x) => x.state === 'failed')) return { kind: 'done', reason: 'a return failed: waiting for a retry' };
  const pending = r.returns.filter((x) => x.state === 'pending');
  if (pending.length > 0) return sendReturns(d, r, pending.slice(0, d.config.REFUND_RETURN_CONCURRENCY));
  return sendRefund(d, r);
}

// ---- return orders ------------------------------------------------------------------------------

type ReturnOutcome = { ret: RefundReturn; kind: 'succeeded'; returnId: string | null } | { ret: RefundReturn; kind: 'failed'; reason: string } | { ret: RefundReturn; kind: 'retry'; error: string };

/**
 * Sends up to REFUND_RETURN_CONCURRENCY pending returns at once (position order), then applies what
 * came back. At 1 they go strictly one by one: a receiver that cannot return then fails the refund
 * before any other money moved, unless an earlier one had already succeeded.
 */
async function sendReturns(d: RefundDriverDeps, r: Loaded, group: RefundReturn[]): Promise<Next> {
  if (r.status === 'pending') await d.prisma.refund.updateMany({ where: { id: r.id, status: { in: refundSourcesOf('returning') } }, data: { status: 'returning' } });
  const outcomes = await Promise.all(group.map((ret) => sendReturn(d, r, ret)));
  const now = d.now();
  for (const o of outcomes) {
    if (o.kind !== 'succeeded') continue;
    await d.prisma.refundReturn.updateMany({
      where: { id: o.ret.id, state: { in: returnSourcesOf('succeeded') } },
      data: { state: 'succeeded', returnId: o.returnId, finishedAt: now, lastError: null },
    });
  }
  const failed = outcomes.filter((o): o is Extract<ReturnOutcome, { kind: 'failed' }> => o.kind === 'failed');
  if (failed.length > 0) return failReturns(d, r, failed);
  const retry = outcomes.find((o): o is Extract<ReturnOutcome, { kind: 'retry' }> => o.kind === 'retry');
  if (retry) return retryLater(d, r, retry.error);
  d.logger.info({ refundId: r.id, returns: group.length }, 'split returns succeeded');
  return CONTINUE;
}

async function sendReturn(d: RefundDriverDeps, r: Loaded, ret: RefundReturn): Promise<ReturnOutcome> {
  try {
    const ans = await d.channel.createReturnOrder({
      outOrderNo: ret.outOrderNo,
      outReturnNo: ret.outReturnNo,
      returnMchid: ret.account,
      amountFen: ret.amountFen,
      description: `退款回退 ${r.outRefundNo}`.slice(0, 80),
    });
    if (ans.result === 'FAILED') return { ret, kind: 'failed', reason: ans.failReason ?? 'FAILED' };
    // PROCESSING: re-sending the same out_return_no later reads its result.
    if (ans.result === 'PROCESSING') return { ret, kind: 'retry', error: `return ${ret.outReturnNo} PROCESSING` };
    return { ret, kind: 'succeeded', returnId: ans.returnId ?? null };
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    if (outcomeUnknown(err)) return { ret, kind: 'retry', error: `return ${ret.outReturnNo}: ${err.code}: ${err.message}` };
    return { ret, kind: 'failed', reason: `${err.code}: ${err.message}` };
  }
}

async function failReturns(d: RefundDriverDeps, r: Loaded, failed: Array<{ ret: RefundReturn; reason: string }>): Promise<Next> {
  const now = d.now();
  const outcome = await d.prisma.$transaction(async (db) => {
    const messages: string[] = [];
    for (const { ret, reason } of failed) {
      const moved = await db.refundReturn.updateMany({
        where: { id: ret.id, state: { in: returnSourcesOf('failed') } },
        data: { state: 'failed', failReason: reason.slice(0, 500), finishedAt: now },
      });
      if (moved.count !== 1) continue;
      await releaseReturns(db, r.checkoutId, ret.amountFen, now);
      messages.push(`the return of ${ret.amountFen} fen from ${ret.account} failed: ${reason}`);
    }
    if (messages.length === 0) return 'raced' as const;
    const message = messages.join('; ');
    const succeeded = await db.refundReturn.count({ where: { refundId: r.id, state: 'succeeded' } });
    if (succeeded > 0) {
      // Money already came back from other receivers: not a clean failure. Visible, finished by a retry.
      await db.refund.updateMany({
        where: { id: r.id, status: 'returning' },
        data: { failureCode: 'RETURN_FAILED', failureReason: `${message}; ${succeeded} return(s) already succeeded — retry (POST /v1/refunds/${r.id}/retry) once the receiver can return`.slice(0, 1000), nextAttemptAt: null },
      });
      return 'stuck' as const;
    }
    // Nothing moved: the refund fails, the returns not sent are cancelled, all money is released.
    const rest = await db.refundReturn.findMany({ where: { refundId: r.id, state: 'pending' } });
    for (const x of rest) {
      const c = await db.refundReturn.updateMany({ where: { id: x.id, state: { in: returnSourcesOf('cancelled') } }, data: { state: 'cancelled', finishedAt: now } });
      if (c.count === 1) await releaseReturns(db, r.checkoutId, x.amountFen, now);
    }
    const moved = await db.refund.updateMany({
      where: { id: r.id, status: { in: refundSourcesOf('failed') } },
      data: { status: 'failed', failureCode: 'RETURN_FAILED', failureReason: message.slice(0, 1000), finishedAt: now, nextAttemptAt: null },
    });
    if (moved.count === 1) {
      await releaseRefund(db, r.checkoutId, r.amountFen, now);
      await emit(db, { ...r, status: 'failed' });
    }
    return 'failed' as const;
  });
  d.logger.warn({ refundId: r.id, failed: failed.map((f) => [f.ret.outReturnNo, f.reason]), outcome }, 'split return failed');
  return outcome === 'raced' ? CONTINUE : { kind: 'done', reason: `return failed (${outcome})` };
}

// ---- the channel refund -------------------------------------------------------------------------

async function sendRefund(d: RefundDriverDeps, r: Loaded): Promise<Next> {
  const { transactionId, paidTotalFen } = r.checkout;
  if (!transactionId || paidTotalFen === null) return { kind: 'done', reason: 'checkout has no payment' };
  let ans: ChannelRefund;
  try {
    ans = await d.channel.createRefund({
      transactionId,
      outRefundNo: r.channelRefundNo,
      ...(r.reason !== null ? { reason: r.reason } : {}),
      refundFen: r.amountFen,
      totalFen: paidTotalFen,
      notifyUrl: d.notifyUrl ?? refundNotifyUrl(d.config),
    });
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    if (outcomeUnknown(err)) return retryLater(d, r, `${err.code}: ${err.message}`);
    return failRefund(d, r, err);
  }
  const now = d.now();
  if (ans.status !== 'PROCESSING') {
    await applyRefundResult(d.prisma, r.id, ans, now);
    return CONTINUE;
  }
  const until = now.getTime() + d.config.REFUND_QUERY_AFTER_MS;
  await d.prisma.refund.updateMany({
    where: { id: r.id, status: { in: refundSourcesOf('processing') } },
    data: { status: 'processing', channelRefundId: ans.refundId, sentAt: now, lastError: null, failureCode: null, failureReason: null, nextAttemptAt: new Date(until) },
  });
  d.logger.info({ refundId: r.id, outRefundNo: r.channelRefundNo, amount: r.amountFen }, 'refund accepted by the channel');
  return CONTINUE;
}

/** Terminal refusal (NOT_ENOUGH, INVALID_REQUEST, ...): stored and shown; the budget is released. */
async function failRefund(d: RefundDriverDeps, r: Loaded, err: ChannelError): Promise<Next> {
  const now = d.now();
  await d.prisma.$transaction(async (db) => {
    const moved = await db.refund.updateMany({
      where: { id: r.id, status: { in: ['pending', 'returning'] } },
      data: { status: 'failed', failureCode: err.code, failureReason: err.message.slice(0, 1000), finishedAt: now, nextAttemptAt: null },
    });
    if (moved.count !== 1) return;
    await releaseRefund(db, r.checkoutId, r.amountFen, now);
    await emit(db, { ...r, status: 'failed' });
  });
  d.logger.error({ refundId: r.id, code: err.code, message: err.message }, 'refund refused by the channel');
  return { kind: 'done', reason: `refused: ${err.code}` };
}

async function queryRefund(d: RefundDriverDeps, r: Loaded): Promise<Next> {
  let ans: ChannelRefund | null;
  try {
    ans = await d.channel.queryRefund(r.channelRefundNo);
  } catch (err) {
    if (!(err instanceof ChannelError)) throw err;
    return pollLater(d, r, `${err.code}: ${err.message}`);
  }
  if (!ans) return pollLater(d, r, 'RESOURCE_NOT_EXISTS: the channel does not know this out_refund_no');
  if (ans.status === 'PROCESSING') return pollLater(d, r, null);
  await applyRefundResult(d.prisma, r.id, ans, d.now());
  return CONTINUE;
}

async function pollLater(d: RefundDriverDeps, r: Refund, lastError: string | null): Promise<Step> {
  const polls = r.polls + 1;
  const until = d.now().getTime() + backoffMs(polls, d.config.REFUND_QUERY_AFTER_MS, POLL_CAP_MS, d.random);
  await d.prisma.refund.update({ where: { id: r.id }, data: { polls, nextAttemptAt: new Date(until), ...(lastError !== null ? { lastError: lastError.slice(0, 500) } : {}) } });
  return { kind: 'wait', until, reason: 'query refund later' };
}

async function retryLater(d: RefundDriverDeps, r: Refund, lastError: string): Promise<Step> {
  const attempts = r.attempts + 1;
  const until = d.now().getTime() + backoffMs(attempts, RETRY_BASE_MS, RETRY_CAP_MS, d.random);
  await d.prisma.refund.update({ where: { id: r.id }, data: { attempts, lastError: lastError.slice(0, 500), nextAttemptAt: new Date(until) } });
  d.logger.warn({ refundId: r.id, attempts, lastError }, 'refund step: retry later with the same number');
  return { kind: 'wait', until, reason: 'retry' };
}

/** 5xx, timeouts, network errors and unreadable 2xx answers: the channel may have acted; re-send the same number. */
function outcomeUnknown(err: ChannelError): boolean {
  if (err.retryable) return true;
  return Boolean((err.opts.detail as { outcomeUnknown?: unknown } | undefined)?.outcomeUnknown);
}
