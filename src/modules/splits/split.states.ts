import type { SplitBatchState, SplitReceiverState, SplitUnfreezeState } from '../../generated/prisma/enums';
import { checkStateTable, sourcesOf } from '../../lib/state-table';

/**
 * Allowed moves of split records (STYLE §3): applied only by compare-and-set updates
 * (`updateMany({ where: { id, state: { in: sourcesOf(to) } } })`; 0 rows = someone else moved it).
 *  pending -> processing         the channel accepted the request (out_order_no known to it)
 *  pending -> failed             the channel refused it terminally (never accepted: budget released)
 *  processing -> succeeded | partially_failed | failed   no receiver PENDING any more
 */
export const batchTransitions = checkStateTable<SplitBatchState>('split batch', {
  pending: ['processing', 'failed'],
  processing: ['succeeded', 'partially_failed', 'failed'],
  succeeded: [],
  partially_failed: [],
  failed: [],
});

/** Receivers: PENDING until the channel's final answer (CLOSED = failed, with fail_reason). */
export const receiverTransitions = checkStateTable<SplitReceiverState>('split receiver', {
  PENDING: ['SUCCESS', 'CLOSED'],
  SUCCESS: [],
  CLOSED: [],
});

export const unfreezeTransitions = checkStateTable<SplitUnfreezeState>('split unfreeze', {
  pending: ['processing', 'succeeded', 'failed'],
  processing: ['succeeded', 'failed'],
  succeeded: [],
  failed: [],
});

export const batchSourcesOf = (to: SplitBatchState) => sourcesOf(batchTransitions, to);
export const receiverSourcesOf = (to: SplitReceiverState) => sourcesOf(receiverTransitions, to);
export const unfreezeSourcesOf = (to: SplitUnfreezeState) => sourcesOf(unfreezeTransitions, to);

export const isOpenBatch = (s: SplitBatchState) => batchTransitions[s].length > 0;
