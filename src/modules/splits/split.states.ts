import type { SplitBatchState, SplitReceiverState, SplitUnfreezeState } from '../../generated/prisma/enums';

/**
 * Allowed moves of split records (STYLE §3): applied only by compare-and-set updates
 * (`updateMany({ where: { id, state: { in: sourcesOf(to) } } })`; 0 rows = someone else moved it).
 *  pending -> processing         the channel accepted the request (out_order_no known to it)
 *  pending -> failed             the channel refused it terminally (never accepted: budget released)
 *  processing -> succeeded | partially_failed | failed   no receiver PENDING any more
 */
export const batchTransitions: Record<SplitBatchState, readonly SplitBatchState[]> = {
  pending: ['processing', 'failed'],
  processing: ['succeeded', 'partially_failed', 'failed'],
  succeeded: [],
  partially_failed: [],
  failed: [],
};

/** Receivers: PENDING until the channel's final answer (CLOSED = failed, with fail_reason). */
export const receiverTransitions: Record<SplitReceiverState, readonly SplitReceiverState[]> = {
  PENDING: ['SUCCESS', 'CLOSED'],
  SUCCESS: [],
  CLOSED: [],
};

export const unfreezeTransitions: Record<SplitUnfreezeState, readonly SplitUnfreezeState[]> = {
  pending: ['processing', 'succeeded', 'failed'],
  processing: ['succeeded', 'failed'],
  succeeded: [],
  failed: [],
};

function sourcesOf<S extends string>(table: Record<S, readonly S[]>, to: S): S[] {
  return (Object.keys(table) as S[]).filter((from) => table[from].includes(to));
}

export const batchSourcesOf = (to: SplitBatchState) => sourcesOf(batchTransitions, to);
export const receiverSourcesOf = (to: SplitReceiverState) => sourcesOf(receiverTransitions, to);
export const unfreezeSourcesOf = (to: SplitUnfreezeState) => sourcesOf(unfreezeTransitions, to);

export const isOpenBatch = (s: SplitBatchState) => batchTransitions[s].length > 0;

// Validated once at module load: every target is a declared state.
for (const table of [batchTransitions, receiverTransitions, unfreezeTransitions] as Array<Record<string, readonly string[]>>)
  for (const [from, tos] of Object.entries(table))
    for (const to of tos) if (!(to in table)) throw new Error(`split state table: ${from} -> ${to} unknown`);
