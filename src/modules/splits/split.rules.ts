import type { Config } from '../../config/config';
import { AppError } from '../../lib/errors';
import { fenTimesRatio } from '../../lib/money';
import type { ReceiverInput } from '../checkout/checkout.schemas';

export interface SplitLimits {
  receiverLimit: number; // receivers per channel request
  maxRatio: number; // cumulative share of the paid amount that may be split
  maxRequests: number; // channel split requests per payment
  /**
   * Partner accounts: the ratio the sub-merchant authorised (basis points), when it is what binds maxRatio
   * (below PROFIT_SHARING_MAX_RATIO). A split above it is SPLIT_RATIO_EXCEEDED (split.ratio.ts).
   */
  authorisedRatioBp?: number;
}

/** The configured limits (a partner account's may be lower: split.ratio.ts). */
export function splitLimitsOf(config: Config): SplitLimits {
  return {
    receiverLimit: config.PROFIT_SHARING_RECEIVER_LIMIT,
    maxRatio: config.PROFIT_SHARING_MAX_RATIO,
    maxRequests: config.PROFIT_SHARING_MAX_REQUESTS,
  };
}

/** Channel requests needed for `receivers` receivers at `limit` per request. */
export function batchCount(receivers: number, limit: number): number {
  return Math.ceil(receivers / limit);
}

/**
 * The highest payment fee rate WeChat charges merchants (0.6% standard, up to 1% in some industries):
 * how much less than our books the channel's unsplit amount may be before reconciliation reports it.
 */
export const MAX_FEE_RATE = 0.01;

/** The most that may ever be split from a payment of `paidFen`. */
export function splitBudget(paidFen: number, limits: SplitLimits): number {
  return fenTimesRatio(paidFen, limits.maxRatio);
}

/** The ratio in basis points (1/10000ths), as the budget UPDATE computes it in SQL. */
export function ratioBasisPoints(ratio: number): number {
  return Math.round(ratio * 10_000);
}

/**
 * Checks a split against the static rules before anything is written: total within the ratio
 * budget still available and the request count within the channel's cap. (The database re-checks
 * both atomically when it reserves: split.budget.ts.)
 */
export function checkSplit(
  receivers: ReadonlyArray<Pick<ReceiverInput, 'amount'>>,
  ctx: { paidFen: number; alreadyReservedFen: number; requestsUsed: number },
  limits: SplitLimits,
): { totalFen: number; batches: number } {
  const totalFen = receivers.reduce((s, r) => s + r.amount, 0);
  const budget = splitBudget(ctx.paidFen, limits);
  if (ctx.alreadyReservedFen + totalFen > budget)
    throw budgetExceeded(totalFen, Math.max(0, budget - ctx.alreadyReservedFen), limits, ctx.paidFen);
  const batches = batchCount(receivers.length, limits.receiverLimit);
  if (ctx.requestsUsed + batches > limits.maxRequests) throw requestLimit(batches, Math.max(0, limits.maxRequests - ctx.requestsUsed), limits.maxRequests);
  return { totalFen, batches };
}

export function budgetExceeded(totalFen: number, remainingFen: number, limits: Pick<SplitLimits, 'maxRatio' | 'authorisedRatioBp'>, paidFen: number): AppError {
  const { maxRatio, authorisedRatioBp: bp } = limits;
  if (bp === 0)
    return new AppError('SPLIT_NOT_AUTHORISED', 'The sub-merchant has not authorised profit sharing to its service provider (分账授权): no split is possible', { field: 'receivers' });
  if (bp !== undefined)
    return new AppError(
      'SPLIT_RATIO_EXCEEDED',
      `Split total ${totalFen} fen exceeds the remaining budget of ${remainingFen} fen: the sub-merchant authorised its ` +
        `service provider to split at most ${bp / 100}% of a payment (${bp} of 10000; ${paidFen} fen here, cumulative over all splits)`,
      { field: 'receivers' },
    );
  return new AppError(
    'SPLIT_BUDGET_EXCEEDED',
    `Split total ${totalFen} fen exceeds the remaining budget of ${remainingFen} fen ` +
      `(${Math.round(maxRatio * 100)}% of ${paidFen} fen, cumulative over all splits of this payment)`,
    { field: 'receivers' },
  );
}

export function requestLimit(batches: number, remaining: number, max: number): AppError {
  return new AppError(
    'SPLIT_REQUEST_LIMIT',
    `This split needs ${batches} channel requests; only ${remaining} of ${max} remain for this payment`,
    { field: 'receivers' },
  );
}

/** Receivers in channel requests of at most `limit`, in the order given (positions kept). */
export function planBatches<T>(receivers: readonly T[], limit: number): T[][] {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('receiver limit must be a positive integer');
  const out: T[][] = [];
  for (let i = 0; i < receivers.length; i += limit) out.push(receivers.slice(i, i + limit));
  return out;
}

/** WeChat's out_order_no: string(64) of [0-9A-Za-z_-|*@] (FACTS §5). */
export const OUT_ORDER_NO_PATTERN = /^[0-9A-Za-z_\-|*@]{1,64}$/;

function checked(no: string): string {
  if (!OUT_ORDER_NO_PATTERN.test(no)) throw new RangeError(`not a valid out_order_no: ${no}`);
  return no;
}

/**
 * The batch's out_order_no, derived only from stable facts (checkout id, split seq, batch seq): a
 * worker that crashed after sending re-sends the very same number, which WeChat treats as the same
 * request, so a batch can never be split twice.
 */
export function batchOutOrderNo(checkoutId: string, splitSeq: number, batchSeq: number): string {
  return checked(`${checkoutId}-s${splitSeq}-b${batchSeq}`);
}

/** The explicit unfreeze's own out_order_no (reusing a split's number "succeeds" but unfreezes nothing). */
export function unfreezeOutOrderNo(checkoutId: string): string {
  return checked(`${checkoutId}-unfreeze`);
}

/**
 * Exponential backoff with full jitter in [base·2^(n-1)/2, base·2^(n-1)], capped: retries of many
 * payments spread out instead of hitting the channel in lock-step.
 */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

export type ReceiverState = 'PENDING' | 'SUCCESS' | 'CLOSED';
export type BatchState = 'pending' | 'processing' | 'succeeded' | 'partially_failed' | 'failed';
export type SplitStatus = 'none' | 'pending' | 'processing' | 'succeeded' | 'partially_failed' | 'failed';

/** A processed batch's final state from its receivers; null while any is still PENDING. */
export function finalBatchState(receivers: ReadonlyArray<{ state: ReceiverState }>): BatchState | null {
  if (receivers.length === 0 || receivers.some((r) => r.state === 'PENDING')) return null;
  const ok = receivers.filter((r) => r.state === 'SUCCESS').length;
  if (ok === receivers.length) return 'succeeded';
  return ok === 0 ? 'failed' : 'partially_failed';
}

/**
 * The payment's split status for the API:
 *  none             no split requested (and none planned)
 *  pending          splits waiting to be sent (e.g. the wait after payment)
 *  processing       at least one request sent, not everything final (incl. the unfreeze)
 *  succeeded / partially_failed / failed   every batch final: all / some / no receiver paid
 */
export function splitStatus(args: {
  planWaiting: boolean;
  batches: ReadonlyArray<{ state: BatchState; receivers: ReadonlyArray<{ state: ReceiverState }> }>;
  unfreezeState?: 'pending' | 'processing' | 'succeeded' | 'failed' | null;
}): SplitStatus {
  const { batches } = args;
  if (batches.length === 0) return args.planWaiting ? 'pending' : 'none';
  const open = batches.filter((b) => b.state === 'pending' || b.state === 'processing');
  if (open.length > 0) return batches.every((b) => b.state === 'pending') ? 'pending' : 'processing';
  if (args.unfreezeState === 'pending' || args.unfreezeState === 'processing') return 'processing';
  const all = batches.flatMap((b) => b.receivers);
  const ok = all.filter((r) => r.state === 'SUCCESS').length;
  if (ok === all.length && batches.every((b) => b.state === 'succeeded')) return 'succeeded';
  return ok === 0 ? 'failed' : 'partially_failed';
}
