import type { Logger } from '../../lib/logger';
import type { Prisma, PrismaClient } from '../../lib/prisma';
import type { SplitQueue } from './split.queue';

/**
 * When each payment's split work is next due, kept in PostgreSQL (`checkouts.split_due_at`), so
 * split work never depends on Redis keeping its delayed jobs (issue 8, item 1). BullMQ stays the
 * fast path; the due scan hands back to it whatever is overdue — after Redis lost its data, a job
 * lost with a killed worker, an enqueue that failed after commit.
 *
 *   an event that creates work   lowers the due time (markSplitDue, in the event's transaction)
 *   a worker run                 claims a lease (due = now + lease) before reading any state,
 *                                extends it while it runs, and at the end sets the next due time
 *                                (or NULL: nothing left) — compare-and-set on its own lease, so an
 *                                event that arrived during the run keeps its earlier due time
 *   the due scan                 re-enqueues `due_{checkout}` for every payment overdue by more
 *                                than a grace, then pushes its due time out by `rescanMs`
 *                                (compare-and-set: several instances may scan at once)
 * Every error errs towards one more run: the driver is idempotent and per-payment locked.
 */

type Db = PrismaClient | Prisma.TransactionClient;

const ts = (d: Date) => d.toISOString();

/**
 * New work for this payment is due at `at`. Always strictly earlier than the stored time (−1 ms),
 * so a run whose lease was written before this cannot settle over it.
 */
export async function markSplitDue(db: Db, checkoutId: string, at: Date): Promise<void> {
  await db.$executeRaw`
    UPDATE checkouts
       SET split_due_at = LEAST(COALESCE(split_due_at, ${ts(at)}::timestamptz AT TIME ZONE 'UTC'), ${ts(at)}::timestamptz AT TIME ZONE 'UTC') - interval '1 millisecond'
     WHERE id = ${checkoutId}`;
}

/** A run starts: due = its lease end. Returns the lease written (the key of the later compare-and-sets). */
export async function claimSplitRun(db: Db, checkoutId: string, leaseEnd: Date): Promise<Date> {
  await db.$executeRaw`UPDATE checkouts SET split_due_at = ${ts(leaseEnd)}::timestamptz AT TIME ZONE 'UTC' WHERE id = ${checkoutId}`;
  return leaseEnd;
}

/**
 * Replaces our lease (still there = nothing happened since) with `next`: a longer lease, the next
 * due time, or null when the payment has nothing left to do. false = someone moved it; leave it.
 */
export async function settleSplitRun(db: Db, checkoutId: string, lease: Date, next: Date | null): Promise<boolean> {
  const n = next === null
    ? await db.$executeRaw`UPDATE checkouts SET split_due_at = NULL WHERE id = ${checkoutId} AND split_due_at = ${ts(lease)}::timestamptz AT TIME ZONE 'UTC'`
    : await db.$executeRaw`UPDATE checkouts SET split_due_at = ${ts(next)}::timestamptz AT TIME ZONE 'UTC' WHERE id = ${checkoutId} AND split_due_at = ${ts(lease)}::timestamptz AT TIME ZONE 'UTC'`;
  return n === 1;
}

export interface DueScanOptions {
  /** Overdue by more than this before the scan steps in (the delayed BullMQ job normally runs first). */
  graceMs: number;
  /** After an enqueue, the payment is not scanned again for this long (its job should have run). */
  rescanMs: number;
  limit?: number;
}

/**
 * One due scan: overdue payments go back to BullMQ under `due_{checkout}` (idempotent while that
 * job exists). Redis down: the enqueue throws, nothing is pushed out, the next scan retries.
 */
export async function scanSplitDue(
  d: { prisma: PrismaClient; logger: Logger; now: () => Date },
  queue: SplitQueue,
  opts: DueScanOptions,
): Promise<number> {
  const now = d.now().getTime();
  const rows = await d.prisma.$queryRaw<Array<{ id: string; due: Date }>>`
    SELECT id, split_due_at AS due FROM checkouts
     WHERE split_due_at <= ${ts(new Date(now - opts.graceMs))}::timestamptz AT TIME ZONE 'UTC'
     ORDER BY split_due_at LIMIT ${opts.limit ?? 500}`;
  let handed = 0;
  for (const r of rows) {
    try {
      await queue.enqueue(`due_${r.id}`, { checkoutId: r.id });
    } catch (err) {
      // Redis down: nothing was pushed out, so the next scan tries these again.
      d.logger.warn({ err, overdue: rows.length }, 'split due scan: queue unavailable; the next scan retries');
      break;
    }
    await settleSplitRun(d.prisma, r.id, r.due, new Date(now + opts.rescanMs));
    handed++;
  }
  if (handed) d.logger.info({ count: handed }, 'split due scan: overdue payments handed back to the queue');
  return handed;
}
