import type { RefundReturnState, RefundStatus } from '../../generated/prisma/enums';
import { checkStateTable, sourcesOf } from '../../lib/state-table';

/**
 * Allowed moves of a refund (STYLE §3), applied only by compare-and-set.
 *  pending    -> returning        the first return order is being sent
 *  pending | returning -> processing   the channel accepted the refund
 *  pending | returning -> failed       a return failed before any succeeded, or the channel refused the refund
 *  (any open) -> succeeded | abnormal | closed   the channel's result (notify or query); a re-send
 *                                      after a lost answer can get the final result at once
 *  abnormal   -> succeeded | closed    a person resolved it at the channel
 */
export const refundTransitions = checkStateTable<RefundStatus>('refund', {
  pending: ['returning', 'processing', 'succeeded', 'failed', 'abnormal', 'closed'],
  returning: ['processing', 'succeeded', 'failed', 'abnormal', 'closed'],
  processing: ['succeeded', 'abnormal', 'closed'],
  abnormal: ['succeeded', 'closed'],
  succeeded: [],
  failed: [],
  closed: [],
});

/** Return orders: failed -> pending only by a retry, which also gives it the next out_return_no. */
export const returnTransitions = checkStateTable<RefundReturnState>('refund return', {
  pending: ['succeeded', 'failed', 'cancelled'],
  failed: ['pending'],
  succeeded: [],
  cancelled: [],
});

export const refundSourcesOf = (to: RefundStatus) => sourcesOf(refundTransitions, to);
export const returnSourcesOf = (to: RefundReturnState) => sourcesOf(returnTransitions, to);
/** Statuses the driver still works on (abnormal waits for a person, not for us). */
export const OPEN_REFUND_STATUSES: RefundStatus[] = ['pending', 'returning', 'processing'];
