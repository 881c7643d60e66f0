import type { Logger } from '../lib/logger';
import type { PrismaClient } from '../lib/prisma';

export interface OutboxEventRow {
  id: bigint;
  type: string;
  aggregateId: string;
  payload: unknown;
  attempts: number;
}

/** A handler must be idempotent: an event can be delivered again after a crash before it was marked. */
export type OutboxHandler = (event: OutboxEventRow) => Promise<void>;

/**
 * Moves outbox rows (written in the same transaction as the state change) to their handlers.
 * Rows are claimed with FOR UPDATE SKIP LOCKED so several gateway instances can run this safely.
 * Failed rows back off exponentially and stay visible (attempts, last_error) instead of vanishing.
 */
export async function dispatchOutboxOnce(
  deps: { prisma: PrismaClient; logger: Logger; now: () => Date },
  handlers: Record<string, OutboxHandler[]>,
  batch = 20,
): Promise<number> {
  const { prisma, logger } = deps;
  let handled = 0;
  await prisma.$transaction(async (db) => {
    const rows = await db.$queryRaw<Array<{ id: bigint; type: string; aggregate_id: string; payload: unknown; attempts: number }>>`
      SELECT id, type, aggregate_id, payload, attempts FROM outbox_events
      WHERE processed_at IS NULL AND available_at <= ${deps.now()}
      ORDER BY id LIMIT ${batch} FOR UPDATE SKIP LOCKED`;
    for (const row of rows) {
      const event: OutboxEventRow = { id: row.id, type: row.type, aggregateId: row.aggregate_id, payload: row.payload, attempts: row.attempts };
      try {
        for (const h of handlers[row.type] ?? []) await h(event);
        await db.outboxEvent.update({ where: { id: row.id }, data: { processedAt: deps.now(), attempts: { increment: 1 }, lastError: null } });
        handled++;
      } catch (err) {
        const delayMs = Math.min(300_000, 1000 * 2 ** Math.min(row.attempts, 8));
        logger.warn({ err, eventId: String(row.id), type: row.type, attempts: row.attempts + 1 }, 'outbox handler failed; will retry');
        await db.outboxEvent.update({
          where: { id: row.id },
          data: { attempts: { increment: 1 }, lastError: String((err as Error)?.message ?? err).slice(0, 1000), availableAt: new Date(deps.now().getTime() + delayMs) },
        });
      }
    }
  }, { timeout: 60_000 });
  return handled;
}
