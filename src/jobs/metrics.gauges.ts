/**
 * Gauges read from PostgreSQL at scrape time: every instance reports the same shared backlog.
 * Cheap, indexed reads (split_batches.state, split_mismatches, split_alerts, outbox_events).
 */
import type { AppDeps } from '../app.types';

export function registerCoreGauges(deps: Pick<AppDeps, 'metrics' | 'prisma' | 'now'>): void {
  const { metrics, prisma } = deps;
  metrics.addGauge('gateway_split_batches', 'Split batches not final, by state', ['state'], async () => {
    const rows = await prisma.splitBatch.groupBy({ by: ['state'], where: { state: { in: ['pending', 'processing'] } }, _count: { _all: true } });
    return ['pending', 'processing'].map((state) => ({ labels: { state }, value: rows.find((r) => r.state === state)?._count._all ?? 0 }));
  });
  metrics.addGauge('gateway_split_oldest_open_batch_seconds', 'Age of the oldest split batch not final', [], async () => {
    const b = await prisma.splitBatch.findFirst({ where: { state: { in: ['pending', 'processing'] } }, orderBy: { createdAt: 'asc' }, select: { createdAt: true } });
    return [{ value: b ? Math.max(0, (deps.now().getTime() - b.createdAt.getTime()) / 1000) : 0 }];
  });
  metrics.addGauge('gateway_reconciliation_mismatches_open', 'Reconciliation mismatches not resolved', [], async () => {
    const [r] = await prisma.$queryRaw<Array<{ n: bigint }>>`
      SELECT count(*) AS n FROM split_mismatches WHERE NOT (detail IS NOT NULL AND jsonb_typeof(detail) = 'object' AND detail ? 'resolved_at')`;
    return [{ value: Number(r?.n ?? 0) }];
  });
  metrics.addGauge('gateway_frozen_near_deadline_payments', 'Payments still frozen close to the end of the split window', [], async () => {
    const [r] = await prisma.$queryRaw<Array<{ n: bigint }>>`
      SELECT count(*) AS n FROM split_alerts a JOIN checkouts c ON c.id = a.checkout_id WHERE a.kind = 'FREEZE_WINDOW_ENDING' AND c.split_finished_at IS NULL`;
    return [{ value: Number(r?.n ?? 0) }];
  });
  // The outbox is the first queue every payment goes through (split jobs, webhooks, sibling closes).
  metrics.addGauge('gateway_outbox_pending_events', 'Outbox events not handled yet', [], async () => {
    return [{ value: await prisma.outboxEvent.count({ where: { processedAt: null } }) }];
  });
  metrics.addGauge('gateway_outbox_oldest_pending_seconds', 'Age of the oldest outbox event not handled yet', [], async () => {
    const e = await prisma.outboxEvent.findFirst({ where: { processedAt: null }, orderBy: { id: 'asc' }, select: { createdAt: true } });
    return [{ value: e ? Math.max(0, (deps.now().getTime() - e.createdAt.getTime()) / 1000) : 0 }];
  });
}
