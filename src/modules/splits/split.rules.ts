import { AppError } from '../../lib/errors';
import { fenTimesRatio } from '../../lib/money';
import type { ReceiverInput } from '../checkout/checkout.schemas';

export interface SplitLimits {
  receiverLimit: number; // receivers per channel request
  maxRatio: number; // cumulative share of the paid amount that may be split
  maxRequests: number; // channel split requests per payment
}

/** Channel requests needed for `receivers` receivers at `limit` per request. */
export function batchCount(receivers: number, limit: number): number {
  return Math.ceil(receivers / limit);
}

/** The most that may ever be split from a payment of `paidFen`. */
export function splitBudget(paidFen: number, limits: SplitLimits): number {
  return fenTimesRatio(paidFen, limits.maxRatio);
}

/**
 * Checks a split against the static rules before anything is written: total within the ratio
 * budget still available and the request count within the channel's cap.
 */
export function checkSplit(
  receivers: ReceiverInput[],
  ctx: { paidFen: number; alreadyReservedFen: number; requestsUsed: number },
  limits: SplitLimits,
): { totalFen: number; batches: number } {
  const totalFen = receivers.reduce((s, r) => s + r.amount, 0);
  const budget = splitBudget(ctx.paidFen, limits);
  if (ctx.alreadyReservedFen + totalFen > budget)
    throw new AppError('SPLIT_BUDGET_EXCEEDED',
      `Split total ${totalFen} fen exceeds the remaining budget of ${Math.max(0, budget - ctx.alreadyReservedFen)} fen ` +
      `(${Math.round(limits.maxRatio * 100)}% of ${ctx.paidFen} fen)`, { field: 'receivers' });
  const batches = batchCount(receivers.length, limits.receiverLimit);
  if (ctx.requestsUsed + batches > limits.maxRequests)
    throw new AppError('SPLIT_REQUEST_LIMIT',
      `This split needs ${batches} channel requests; only ${Math.max(0, limits.maxRequests - ctx.requestsUsed)} of ${limits.maxRequests} remain for this payment`,
      { field: 'receivers' });
  return { totalFen, batches };
}
