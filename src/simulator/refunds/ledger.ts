/**
 * Refunds held by the simulator (one ledger per SimContext). A leaf file: profit sharing reads the
 * part of each refund that came out of a payment's frozen funds without importing the refund router.
 */
import type { SimContext } from '../context';

export type RefundStatus = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';

export interface SimRefund {
  /** Partner mode: the sub-merchant of the refunded order. */
  subMchid?: string;
  refundId: string;
  outRefundNo: string;
  transactionId: string;
  outTradeNo: string;
  reason?: string;
  notifyUrl?: string;
  total: number;
  refund: number;
  /** Taken from the payment's still-frozen profit-sharing funds (WeChat uses them first). */
  fromFrozen: number;
  /** Taken from the merchant's available balance. */
  fromAvailable: number;
  status: RefundStatus;
  /** The final status chosen when the refund was accepted (fault controls), applied at dueAtMs. */
  planned: Exclude<RefundStatus, 'PROCESSING'>;
  fingerprint: string;
  createdAtMs: number;
  dueAtMs: number;
  successAtMs?: number;
}

export interface RefundLedger {
  refunds: Map<string, SimRefund>;
  /** Outcomes for the next refunds accepted, in order (fault control). */
  nextOutcomes: Array<'ABNORMAL' | 'CLOSED'>;
  /** Added to the computed available balance (control: the merchant withdrew or topped up money). */
  availableAdjustment: number;
  timers: Set<NodeJS.Timeout>;
  seq: number;
}

const ledgers = new WeakMap<SimContext, RefundLedger>();

export function getLedger(ctx: SimContext): RefundLedger {
  let l = ledgers.get(ctx);
  if (!l) ledgers.set(ctx, (l = { refunds: new Map(), nextOutcomes: [], availableAdjustment: 0, timers: new Set(), seq: 0 }));
  return l;
}

export function resetLedger(ctx: SimContext): void {
  const l = getLedger(ctx);
  for (const t of l.timers) clearTimeout(t);
  ledgers.delete(ctx);
}

/** A refund holds its money unless WeChat closed it (CLOSED gives the money back to where it came from). */
export const holdsMoney = (r: SimRefund) => r.status !== 'CLOSED';

/** Fen of a payment's frozen funds used by refunds. */
export function refundedFromFrozen(ctx: SimContext, transactionId: string): number {
  let sum = 0;
  for (const r of getLedger(ctx).refunds.values()) if (r.transactionId === transactionId && holdsMoney(r)) sum += r.fromFrozen;
  return sum;
}

/** Fen refunded (or being refunded) of a payment. */
export function refundedTotal(ctx: SimContext, transactionId: string): number {
  let sum = 0;
  for (const r of getLedger(ctx).refunds.values()) if (r.transactionId === transactionId && holdsMoney(r)) sum += r.refund;
  return sum;
}
