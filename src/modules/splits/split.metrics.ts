/**
 * Split backlog gauges, read at scrape time: the BullMQ queue (jobs by state, how long the oldest
 * waiting job has been due) and the PostgreSQL due table (`checkouts.split_due_at`, split.due.ts),
 * which stays right when Redis has lost jobs: overdue payments there are work nobody is doing.
 */
import type { AppDeps } from '../../app.types';
import { createSplitQueueDepth, QUEUE_STATES } from './split.queue';

export function registerSplitGauges(deps: AppDeps, queuePrefix: string): void {
  const { metrics, prisma } = deps;
  const queue = createSplitQueueDepth(deps.redis, queuePrefix);
  metrics.addGauge('gateway_split_queue_jobs', 'Split jobs in the BullMQ queue, by state', ['state'], async () => {
    const { counts } = await queue.depth(deps.now().getTime());
    return QUEUE_STATES.map((state) => ({ labels: { state }, value: counts[state] }));
  });
  metrics.addGauge('gateway_split_queue_oldest_waiting_seconds', 'How long the oldest waiting split job has been due', [], async () => {
    const { oldestWaitingMs } = await queue.depth(deps.now().getTime());
    return [{ value: oldestWaitingMs / 1000 }];
  });
  metrics.addGauge('gateway_split_due_overdue_payments', 'Payments whose split work is due (split_due_at passed) and not being run', [], async () => {
    return [{ value: await prisma.checkout.count({ where: { splitDueAt: { lte: deps.now() } } }) }];
  });
  metrics.addGauge('gateway_split_due_oldest_overdue_seconds', 'How long the most overdue payment has waited for its split work', [], async () => {
    const c = await prisma.checkout.findFirst({ where: { splitDueAt: { lte: deps.now() } }, orderBy: { splitDueAt: 'asc' }, select: { splitDueAt: true } });
    return [{ value: c?.splitDueAt ? (deps.now().getTime() - c.splitDueAt.getTime()) / 1000 : 0 }];
  });
}
