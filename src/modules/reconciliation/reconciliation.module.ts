import type { AppModule } from '../../app.types';
import { startLoop } from '../../jobs/loop';
import { reconciliationConsoleRouter } from './reconcile.console';
import { billMismatchJson } from './reconcile.queries';
import { reconcileDue } from './reconcile.schedule';

/**
 * Daily bill reconciliation (issue 12 §2). Plugs into the core through AppModule:
 *   pageRoutes    /console/reconciliation (runs, mismatches, resolve); registers the open-mismatches gauge
 *   eventObjects  data.object of reconciliation.mismatch events about bill lines (`bill_mismatch`)
 *   startWorkers  the scheduler loop (RECONCILE_BILLS_*), safe on several processes (leased runs)
 */
export const reconciliationModule: AppModule = {
  pageRoutes: (deps) => {
    deps.metrics.addGauge('gateway_bill_mismatches_open', 'Bill reconciliation mismatches not resolved', [], async () => [
      { value: await deps.prisma.billMismatch.count({ where: { status: 'open' } }) },
    ]);
    return reconciliationConsoleRouter(deps);
  },
  eventObjects: (deps) => ({ bill_mismatch: (id) => billMismatchJson(deps.prisma, id) }),
  startWorkers: async (deps) => {
    if (!deps.config.RECONCILE_BILLS_ENABLED) return { stop: async () => undefined };
    const loop = startLoop('bill-reconcile', deps.config.RECONCILE_BILLS_POLL_MS, () => reconcileDue(deps), deps.logger);
    return { stop: () => loop.stop() };
  },
};
