/**
 * When reconciliation runs: each day from RECONCILE_BILLS_AT (Beijing time) the runs of yesterday are
 * created, one per account; every process then picks due runs (new ones and retries) and claims each
 * by lease, so several gateway processes share the work and a crashed one's run is taken over.
 */
import { BEIJING_MS, beijingDate } from '../../lib/beijing';
import { newId } from '../../lib/ids';
import { claimRun, executeRun, reconcilableAccounts, type ReconcileDeps, type RunResult } from './reconcile.service';

const DUE_BATCH = 10;

/** Days back whose missing runs are still created (a gateway down from 10:30 to midnight misses nothing). */
const LOOKBACK_DAYS = 3;

/**
 * The days whose bills are due at `now`, newest first: from `at` (HH:MM Beijing) yesterday is due;
 * before it, the day before yesterday is the newest. LOOKBACK_DAYS of them.
 */
export function dueBillDates(now: Date, at: string): string[] {
  const [h, m] = at.split(':').map(Number) as [number, number];
  const beijing = new Date(now.getTime() + BEIJING_MS);
  const minutes = beijing.getUTCHours() * 60 + beijing.getUTCMinutes();
  const newest = minutes >= h * 60 + m ? 1 : 2;
  return Array.from({ length: LOOKBACK_DAYS }, (_, i) => beijingDate(new Date(now.getTime() - (newest + i) * 86_400_000)));
}

/** One scheduler pass: create today's due runs, then do the due ones this process can claim. */
export async function reconcileDue(d: ReconcileDeps): Promise<RunResult[]> {
  const days = dueBillDates(d.now(), d.config.RECONCILE_BILLS_AT);
  const accounts = await reconcilableAccounts(d.prisma);
  // One statement for every account and day; a run already created (by any process) is left as it is.
  await d.prisma.reconciliationRun.createMany({
    data: days.flatMap((billDate) => accounts.map((a) => ({ id: newId('rcn'), accountKey: a.key, accountId: a.accountId, billDate }))),
    skipDuplicates: true,
  });
  const now = d.now();
  const due = await d.prisma.reconciliationRun.findMany({
    where: { status: { in: ['pending', 'retrying'] }, nextAttemptAt: { lte: now }, OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }] },
    orderBy: { nextAttemptAt: 'asc' },
    take: DUE_BATCH,
    select: { id: true },
  });
  const out: RunResult[] = [];
  for (const r of due) {
    const lease = await claimRun(d.prisma, r.id, d.now());
    if (lease) out.push(await executeRun(d, r.id, lease));
  }
  return out;
}
