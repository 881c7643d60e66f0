import type { AppDeps, AppModule } from '../../app.types';
import { startLoop } from '../../jobs/loop';
import type { OutboxEventRow } from '../../jobs/outbox.dispatcher';
import { Prisma } from '../../lib/prisma';
import { PAYMENT_SUCCEEDED } from '../payments/payment.apply';
import { markSplitDue, scanSplitDue } from './split.due';
import { alertFrozenFunds, kickStalled, reconcileOnce } from './split.reconcile';
import { createSplitQueue, queueKeyPrefix, type SplitQueue } from './split.queue';
import { registerSplitGauges } from './split.metrics';
import { splitApiRouter } from './split.routes';
import { mismatchObjectJson, splitJson, splitObjectJson } from './split.service';
import { startSplitWorker, type SplitWorkerOptions } from './split.worker';

export interface SplitsModuleOptions extends Partial<SplitWorkerOptions> {
  /** Run the periodic reconciliation / alert / re-kick loop with the workers (default true). */
  reconcile?: boolean;
  /** Last resort only (the due scan does the work): re-enqueue payments without progress for this long (default 15 min). */
  staleMs?: number;
  /** The due scan (split.due.ts): how often (default 2 s), grace after the due time (2 s), rescan after (5 s). */
  dueScanMs?: number;
  dueGraceMs?: number;
  dueRescanMs?: number;
}

/**
 * Profit sharing (分账), issue 3. Plugs into the core through AppModule:
 *   apiRoutes      POST /v1/checkouts/{id}/splits, POST .../splits/finish, PUT .../split-plan
 *   registerMetrics the queue and due-table backlog gauges (split.metrics.ts)
 *   checkoutJson   the `split` section of GET /v1/checkouts/{id}
 *   eventObjects   the JSON of `split` and `mismatch` in merchant events
 *   outboxHandlers payment.succeeded -> enqueue the payment's split job (delayed to paid_at + delay)
 *   startWorkers   the BullMQ split worker, the due scan (split.due.ts) and the reconciliation loop (RECONCILE_INTERVAL_MS)
 */
export function createSplitsModule(opts: SplitsModuleOptions = {}): AppModule {
  // One producer per app instance, on the app's own Redis connection (closed with it).
  const queues = new WeakMap<AppDeps, SplitQueue>();
  const queueOf = (deps: AppDeps) => {
    let q = queues.get(deps);
    if (!q) {
      q = createSplitQueue(deps.redis, opts.queuePrefix ?? queueKeyPrefix(deps.config.QUEUE_PREFIX));
      queues.set(deps, q);
    }
    return q;
  };

  return {
    apiRoutes: (deps) => splitApiRouter(deps, () => queueOf(deps)),
    registerMetrics: (deps) => registerSplitGauges(deps, opts.queuePrefix ?? queueKeyPrefix(deps.config.QUEUE_PREFIX)),
    checkoutJson: (deps) => async (c) => ({ split: await splitJson(deps.prisma, deps.config, c) }),
    // data.object of split.* events (one split with its batches) and of reconciliation.mismatch.
    eventObjects: (deps) => ({
      split: (id) => splitObjectJson(deps.prisma, id),
      mismatch: (id) => mismatchObjectJson(deps.prisma, id),
    }),
    outboxHandlers: (deps) => ({
      [PAYMENT_SUCCEEDED]: [
        Object.assign(async (event: OutboxEventRow) => {
          // The payment's own mode, written into the event when it was applied: `none` is final (no
          // split can start on such a checkout), so there is nothing to schedule and nothing to read.
          if ((event.payload as { profitSharing?: string } | null)?.profitSharing === 'none') return;
          const c = await deps.prisma.checkout.findUnique({ where: { id: event.aggregateId }, select: { id: true, profitSharing: true, paidAt: true } });
          if (!c || c.profitSharing === 'none') return;
          const readyAt = (c.paidAt ?? deps.now()).getTime() + deps.config.PROFIT_SHARING_DELAY * 1000;
          const delay = readyAt - deps.now().getTime();
          // PostgreSQL first: if the job below is lost (or Redis is down), the due scan has the time.
          await markSplitDue(deps.prisma, c.id, new Date(readyAt));
          // Throws if Redis is down: the outbox keeps the event and retries.
          await queueOf(deps).enqueue(`pay_${c.id}`, { checkoutId: c.id }, Math.max(0, delay));
        }, { idleWhen: Prisma.sql`o.payload->>'profitSharing' = 'none'` }), // the same test, read by the outbox's claim
      ],
    }),
    startWorkers: async (deps) => {
      const prefix = opts.queuePrefix ?? queueKeyPrefix(deps.config.QUEUE_PREFIX);
      const worker = await startSplitWorker(deps, { ...opts, queuePrefix: prefix });
      const loop =
        opts.reconcile === false
          ? null
          : startLoop('split-reconcile', deps.config.RECONCILE_INTERVAL_MS, async () => {
              await reconcileOnce(deps);
              await alertFrozenFunds(deps);
              await kickStalled(deps, queueOf(deps), opts.staleMs);
            }, deps.logger);
      // Hands overdue split work back to BullMQ within seconds, e.g. after Redis lost its data.
      const dueLoop = startLoop('split-due', opts.dueScanMs ?? 2_000, () =>
        scanSplitDue(deps, queueOf(deps), { graceMs: opts.dueGraceMs ?? 2_000, rescanMs: opts.dueRescanMs ?? 5_000 }), deps.logger);
      return {
        async stop() {
          await dueLoop.stop();
          await loop?.stop();
          await worker.stop();
        },
      };
    },
  };
}

/** The module as the gateway mounts it (BullMQ prefix: `{QUEUE_PREFIX}`, a cluster hash tag). */
export const splitsModule: AppModule = createSplitsModule();
