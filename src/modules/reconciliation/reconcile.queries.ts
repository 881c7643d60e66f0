/**
 * Reads of reconciliation results for the console and the CLI, scoped like the API: a merchant user
 * (merchantId set) sees its own account's runs and, in the shared default account's runs, only the
 * mismatches that name its records; bill totals of a shared account are operators' only.
 */
import type { PrismaClient } from '../../lib/prisma';

export type Scope = { merchantId: string | null };

export interface RunRow {
  id: string;
  billDate: string;
  accountKey: string;
  status: string;
  attempts: number;
  lastError: string | null;
  finishedAt: Date | null;
  /** null when the viewer may not see the account's totals. */
  totals: { payments: number; refunds: number; paidFen: number; refundedFen: number; feesFen: number; splitFen: number; returnedFen: number; recovered: number } | null;
  mismatches: number;
  open: number;
}

async function visibleAccounts(prisma: PrismaClient, scope: Scope): Promise<string[] | null> {
  if (scope.merchantId === null) return null;
  const own = await prisma.channelAccount.findMany({ where: { merchantId: scope.merchantId }, select: { id: true } });
  return ['default', ...own.map((a) => a.id)];
}

const mismatchScope = (scope: Scope) => (scope.merchantId === null ? {} : { merchantId: scope.merchantId });

export async function listRuns(prisma: PrismaClient, scope: Scope, opts: { id?: string; billDate?: string; accountKey?: string; limit?: number } = {}): Promise<RunRow[]> {
  const accounts = await visibleAccounts(prisma, scope);
  const runs = await prisma.reconciliationRun.findMany({
    where: {
      ...(accounts ? { accountKey: { in: accounts } } : {}),
      ...(opts.id ? { id: opts.id } : {}),
      ...(opts.billDate ? { billDate: opts.billDate } : {}),
      ...(opts.accountKey ? { accountKey: opts.accountKey } : {}),
    },
    orderBy: [{ billDate: 'desc' }, { accountKey: 'asc' }],
    take: opts.limit ?? 200,
  });
  const counts = await prisma.billMismatch.groupBy({
    by: ['runId', 'status'],
    where: { runId: { in: runs.map((r) => r.id) }, ...mismatchScope(scope) },
    _count: { _all: true },
  });
  const count = (runId: string, status?: string) => counts.filter((c) => c.runId === runId && (!status || c.status === status)).reduce((s, c) => s + c._count._all, 0);
  return runs.map((r) => ({
    id: r.id,
    billDate: r.billDate,
    accountKey: r.accountKey,
    status: r.status,
    attempts: r.attempts,
    lastError: r.lastError,
    finishedAt: r.finishedAt,
    totals:
      scope.merchantId === null || r.accountKey !== 'default'
        ? { payments: r.payments, refunds: r.refunds, paidFen: r.paidFen, refundedFen: r.refundedFen, feesFen: r.feesFen, splitFen: r.splitFen, returnedFen: r.returnedFen, recovered: r.recovered }
        : null,
    mismatches: count(r.id),
    open: count(r.id, 'open'),
  }));
}

export async function runWithMismatches(prisma: PrismaClient, scope: Scope, runId: string) {
  const [run] = await listRuns(prisma, scope, { id: runId });
  if (!run) return null;
  const mismatches = await prisma.billMismatch.findMany({ where: { runId, ...mismatchScope(scope) }, orderBy: [{ status: 'asc' }, { bill: 'asc' }, { kind: 'asc' }, { ref: 'asc' }] });
  return { run, mismatches };
}

export async function mismatchById(prisma: PrismaClient, scope: Scope, id: string) {
  const m = await prisma.billMismatch.findUnique({ where: { id }, include: { run: { select: { accountKey: true } } } });
  if (!m || (scope.merchantId !== null && m.merchantId !== scope.merchantId)) return null;
  return m;
}

/** Open mismatches, oldest day first (the CLI prints them; exit code non-zero while any remain). */
export async function openMismatches(prisma: PrismaClient, filter: { billDate?: string; accountKey?: string } = {}) {
  return prisma.billMismatch.findMany({
    where: { status: 'open', ...(filter.billDate ? { billDate: filter.billDate } : {}), ...(filter.accountKey ? { run: { accountKey: filter.accountKey } } : {}) },
    include: { run: { select: { accountKey: true } } },
    orderBy: [{ billDate: 'asc' }, { bill: 'asc' }, { kind: 'asc' }, { ref: 'asc' }],
  });
}

/** The JSON of a `reconciliation.mismatch` webhook's data.object. */
export async function billMismatchJson(prisma: PrismaClient, id: string) {
  const m = await prisma.billMismatch.findUnique({ where: { id } });
  if (!m) return null;
  return {
    id: m.id,
    object: 'bill_mismatch',
    bill_date: m.billDate,
    bill: m.bill,
    kind: m.kind,
    ref: m.ref,
    ours: m.ours,
    theirs: m.theirs,
    detail: m.detail,
    checkout_id: m.checkoutId,
    status: m.status,
    created_at: m.createdAt.toISOString(),
  };
}
