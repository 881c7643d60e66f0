import type { BillMismatchStatus, ReconciliationRunStatus } from '../../generated/prisma/enums';
import { checkStateTable, sourcesOf } from '../../lib/state-table';

/**
 * Allowed moves of a reconciliation run (STYLE §3), applied by compare-and-set by the process that holds
 * the run's lease.
 *  any -> succeeded   the bills were matched and the result stored (a re-run replaces the result)
 *  any -> retrying    an attempt failed (bill not ready, bad hash, channel down); the previous result stays
 *  pending | retrying -> failed   attempts used up; only a re-run by hand (any -> …) moves it again
 */
export const runTransitions = checkStateTable<ReconciliationRunStatus>('reconciliation run', {
  pending: ['succeeded', 'retrying', 'failed'],
  retrying: ['succeeded', 'retrying', 'failed'],
  succeeded: ['succeeded', 'retrying', 'failed'],
  failed: ['succeeded', 'retrying', 'failed'],
});

/** A mismatch is resolved once (by a person's note, or by `system` when the payment was recorded). */
export const mismatchTransitions = checkStateTable<BillMismatchStatus>('bill mismatch', {
  open: ['resolved'],
  resolved: [],
});

export const runSourcesOf = (to: ReconciliationRunStatus) => sourcesOf(runTransitions, to);
export const mismatchSourcesOf = (to: BillMismatchStatus) => sourcesOf(mismatchTransitions, to);
