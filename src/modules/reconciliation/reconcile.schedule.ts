/**
 * When reconciliation runs: each day from RECONCILE_BILLS_AT (Beijing time) the runs of yesterday are
 * created, one per account; every process then picks due runs (new ones and retries) and claims each
 * by lease, so several gateway processes share the work and a crashed one's run is taken over.
 */
import { beijingDayOf } from './reconcile.records';
import { newId } from '../../lib/ids';
import { claimRun, executeRun, reconcilableAccounts, type ReconcileDeps, type RunResult } from './reconcile.service';

const BEIJING_MS = 8 * 3600_000;
const DUE_BATCH = 10;

/** The day whose bills are due at `now`: yesterday once Beijing time has passed `at` (HH:MM), else none yet today. */
export function dueBillDate(now: Date, at: string): string | null {
  const [h, m] = at.split(':').map(Number) as [number, number];
  const beijing = new Date(now.getTime() + BEIJING_MS);
  const minutes = beijing.getUTCHours() * 60 + beijing.getUTCMinutes();
  if (minutes < h * 60 + m) return null;
  return beijingDayOf(new Date(now.getTime() - 86_400_000));
}

/** One scheduler pass: create today's due runs, then do the due ones this process can claim. */
export async function reconcileDue(d: ReconcileDeps): Promise<RunResult[]> {
  const day = dueBillDate(d.now(), d.config.RECONCILE_BILLS_AT);
  // One statement for every account; a day already created (by any process) is left as it is.
  if (day)
    await d.prisma.reconciliationRun.createMany({
      data: (await reconcilableAccounts(d.prisma)).map((a) => ({ id: newId('rcn'), accountKey: a.key, accountId: a.accountId, billDate: day })),
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
  for (const r of due) if (await claimRun(d.prisma, r.id, d.now())) out.push(await executeRun(d, r.id));
  return out;
}
