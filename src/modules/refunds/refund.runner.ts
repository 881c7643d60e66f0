import { driveRefund, type RefundDriverDeps, type Step } from './refund.driver';
import { OPEN_REFUND_STATUSES } from './refund.states';

/** How long one driver run holds a refund: a crashed process's refunds come back after it. */
export const REFUND_LEASE_MS = 60_000;

/**
 * Runs the driver for one refund under a lease taken by compare-and-set (lease_until), so two
 * processes (the API's kick and the sync loop, or two instances) never step the same refund at once.
 * null = someone else holds it. The outcome sets next_attempt_at, which the sync loop watches.
 */
export async function runRefund(d: RefundDriverDeps, refundId: string, leaseMs = REFUND_LEASE_MS): Promise<Step | null> {
  const now = d.now();
  const claimed = await d.prisma.refund.updateMany({
    where: { id: refundId, OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }] },
    data: { leaseUntil: new Date(now.getTime() + leaseMs) },
  });
  if (claimed.count !== 1) return null;
  let step: Step;
  try {
    step = await driveRefund(d, refundId);
  } catch (err) {
    // Database or programming error: keep the state, come back later.
    d.logger.error({ err, refundId }, 'refund driver failed; will retry');
    step = { kind: 'wait', until: d.now().getTime() + 5_000, reason: 'driver error' };
  }
  // Done (final, or waiting for a person's retry): nothing is due until something changes it.
  await d.prisma.refund.updateMany({
    where: { id: refundId },
    data: { leaseUntil: null, nextAttemptAt: step.kind === 'wait' ? new Date(step.until) : null },
  });
  return step;
}

/** One pass of the sync loop: refunds due for a step (retry, query fallback, a lease that expired). */
export async function syncRefundsOnce(d: RefundDriverDeps, limit = 20): Promise<number> {
  const now = d.now();
  const due = await d.prisma.refund.findMany({
    where: { status: { in: OPEN_REFUND_STATUSES }, nextAttemptAt: { lte: now }, OR: [{ leaseUntil: null }, { leaseUntil: { lt: now } }] },
    orderBy: { nextAttemptAt: 'asc' },
    take: limit,
    select: { id: true },
  });
  const steps = await Promise.all(due.map((r) => runRefund(d, r.id)));
  return steps.filter(Boolean).length;
}

/**
 * Kicks still running, per deps object (the app's, which the routes and the workers share): shutdown
 * waits for them, so their lease is cleared at the end of the run instead of being left to expire.
 */
const kicks = new WeakMap<object, Set<Promise<unknown>>>();

/** After a commit: drive it now, in the background (the sync loop is the safety net). */
export function kickRefund(d: RefundDriverDeps, refundId: string): void {
  const running = kicks.get(d) ?? new Set<Promise<unknown>>();
  kicks.set(d, running);
  const p: Promise<unknown> = runRefund(d, refundId)
    .catch((err: unknown) => d.logger.error({ err, refundId }, 'refund kick failed; the sync loop will pick it up'))
    .finally(() => running.delete(p));
  running.add(p);
}

/** Waits for the kicks in flight (graceful shutdown, after the HTTP server stopped making new ones). */
export async function settleRefundKicks(d: object): Promise<void> {
  const running = kicks.get(d);
  while (running?.size) await Promise.all([...running]);
}
