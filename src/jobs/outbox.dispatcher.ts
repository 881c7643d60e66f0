import type { Logger } from '../lib/logger';
import { PLAN_EACH_TIME } from '../lib/prepared-statements';
import { Prisma, sqlUtc, type PrismaClient } from '../lib/prisma';
import { rawExecute, rawQuery } from '../lib/raw-sql';

export interface OutboxEventRow {
  id: bigint;
  type: string;
  aggregateId: string;
  payload: unknown;
  attempts: number;
}

/**
 * A handler must be idempotent: an event can be delivered again after a crash before it was marked.
 * `prepare` (optional) reads what a whole pass's events of its type need in one go and returns the
 * handler to run for each of them (a pass of 20 payments: one read, not 20); if it fails, the plain
 * handler runs per event.
 */
export type OutboxHandler = ((event: OutboxEventRow) => Promise<void>) & {
  prepare?(events: OutboxEventRow[]): Promise<(event: OutboxEventRow) => Promise<void>>;
  /**
   * When this handler would do nothing for an event: a condition on its row (`o`, outbox_events),
   * evaluated by the claim. A row for which every handler of its type says so is marked processed by
   * the claim itself (no handler call, no done-mark: a payment without profit sharing and without
   * another open order is one statement per pass, not three). The claim's snapshot is taken after the
   * row was committed, so the condition sees everything that committed before it.
   */
  idleWhen?: Prisma.Sql;
};

/** Rows claimed per pass; a pass that handled this many means more are waiting. */
export const OUTBOX_BATCH = 20;

/**
 * Moves outbox rows (written in the same transaction as the state change) to their handlers.
 *
 * Rows are CLAIMED by a committed lease (available_at pushed `leaseMs` ahead, chosen with FOR UPDATE
 * SKIP LOCKED), and handlers run outside any transaction: a slow handler (a channel call timing out)
 * holds no database transaction open. A failure is recorded on its row; the rows handled are marked
 * processed together at the end of the pass (one statement). Another instance skips leased rows; a
 * crashed instance's rows come back when the lease ends. Failures back off exponentially and stay
 * visible (attempts, last_error) instead of vanishing.
 */
export async function dispatchOutboxOnce(
  deps: { prisma: PrismaClient; logger: Logger; now: () => Date },
  handlers: Record<string, OutboxHandler[]>,
  opts: { batch?: number; leaseMs?: number; stopping?: () => boolean } = {},
): Promise<number> {
  const { prisma, logger } = deps;
  const now = deps.now();
  const leaseUntil = new Date(now.getTime() + (opts.leaseMs ?? 5 * 60_000));
  // The pick is a MATERIALIZED CTE, run once. As `WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
  // LOCKED)` a plan made on an empty table (prepared statements keep theirs) re-ran the subquery for
  // every row, each run skipping the rows just leased: a pass leased the whole backlog, not n.
  // Planned each time (PLAN_EACH_TIME): a burst fills the table from empty.
  // Rows with nothing to do (idleWhen) are marked processed here, as the done-mark below would.
  const claimed = await rawQuery<{ id: bigint; type: string; aggregate_id: string; payload: unknown; attempts: number; idle: boolean }>(prisma, Prisma.sql`
    ${Prisma.raw(PLAN_EACH_TIME)} WITH pick AS MATERIALIZED (
      SELECT id, type, aggregate_id, payload FROM outbox_events
       WHERE processed_at IS NULL AND available_at <= ${now}
       ORDER BY id LIMIT ${opts.batch ?? OUTBOX_BATCH} FOR UPDATE SKIP LOCKED),
    -- Judged after the pick, over its rows only (\`o\` is the picked row): inside the pick, the planner
    -- sized idleWhen's reads by the whole backlog, not by the LIMIT, and read every channel order
    -- once a backlog was large.
    judged AS MATERIALIZED (SELECT o.id, ${idleCondition(handlers)} AS idle FROM pick o)
    UPDATE outbox_events o SET available_at = ${leaseUntil},
        processed_at = CASE WHEN judged.idle THEN ${sqlUtc(now)} END,
        attempts = o.attempts + CASE WHEN judged.idle THEN 1 ELSE 0 END,
        last_error = CASE WHEN judged.idle THEN NULL ELSE o.last_error END
      FROM judged WHERE o.id = judged.id
    RETURNING o.id, o.type, o.aggregate_id, o.payload, o.attempts, judged.idle`);
  const idle = claimed.filter((r) => r.idle).length;
  const rows = claimed.filter((r) => !r.idle).sort((a, b) => (a.id < b.id ? -1 : 1));

  // Marked processed together after the pass (one statement, not one per row). A crash before that
  // hands the pass's rows out again when their lease ends: handlers are idempotent (see OutboxHandler).
  const done: bigint[] = [];
  const events = rows.map((row): OutboxEventRow => ({ id: row.id, type: row.type, aggregateId: row.aggregate_id, payload: row.payload, attempts: row.attempts }));
  const forPass = await passHandlers(handlers, events, logger);
  try {
    for (const [i, row] of rows.entries()) {
      if (opts.stopping?.()) {
        // Shutting down: hand the claimed rows not started back now, rather than leave them leased
        // for another instance to wait out.
        const left = rows.slice(i).map((r) => r.id);
        await prisma.outboxEvent.updateMany({ where: { id: { in: left }, processedAt: null }, data: { availableAt: now } });
        break;
      }
      try {
        for (const h of forPass.get(row.type) ?? []) await h(events[i]!);
        done.push(row.id);
      } catch (err) {
        const delayMs = Math.min(300_000, 1000 * 2 ** Math.min(row.attempts, 8));
        logger.warn({ err, eventId: String(row.id), type: row.type, attempts: row.attempts + 1 }, 'outbox handler failed; will retry');
        await prisma.outboxEvent
          .update({
            where: { id: row.id },
            data: { attempts: { increment: 1 }, lastError: String((err as Error)?.message ?? err).slice(0, 1000), availableAt: new Date(deps.now().getTime() + delayMs) },
          })
          .catch((e: unknown) => logger.error({ err: e, eventId: String(row.id) }, 'outbox: could not record the failure; the lease will expire'));
      }
    }
  } finally {
    // Raw: on every payment's follow-up path, where the typed update cost ~0.3 ms of CPU (docs/performance.md).
    if (done.length)
      await rawExecute(prisma, Prisma.sql`UPDATE outbox_events SET processed_at = ${sqlUtc(deps.now())}, attempts = attempts + 1, last_error = NULL WHERE id = ANY(${done.map(String)}::bigint[])`);
  }
  const handled = done.length + idle;
  return handled;
}

/** SQL: true for a row (`o`) whose type's handlers all have nothing to do (each has an idleWhen). */
function idleCondition(handlers: Record<string, OutboxHandler[]>): Prisma.Sql {
  const types = Object.entries(handlers).filter(([, hs]) => hs.length > 0 && hs.every((h) => h.idleWhen));
  if (!types.length) return Prisma.sql`false`;
  return Prisma.join(types.map(([type, hs]) => Prisma.sql`(o.type = ${type} AND ${Prisma.join(hs.map((h) => Prisma.sql`(${h.idleWhen!})`), ' AND ')})`), ' OR ');
}

/** Each type's handlers for this pass: prepared over the pass's events of that type where they can be. */
async function passHandlers(handlers: Record<string, OutboxHandler[]>, events: OutboxEventRow[], logger: Logger) {
  const out = new Map<string, Array<(event: OutboxEventRow) => Promise<void>>>();
  for (const type of new Set(events.map((e) => e.type))) {
    const ofType = events.filter((e) => e.type === type);
    out.set(type, await Promise.all((handlers[type] ?? []).map(async (h) => {
      if (!h.prepare) return h;
      return h.prepare(ofType).catch((err: unknown) => {
        logger.warn({ err, type }, 'outbox: a handler could not prepare its pass; it runs per event');
        return h;
      });
    })));
  }
  return out;
}
