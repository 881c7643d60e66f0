import type { PaymentChannel } from '../../channels/channel';
import { ChannelError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { Prisma, sqlUtc, type PrismaClient } from '../../lib/prisma';
import { rawQuery } from '../../lib/raw-sql';
import { checkoutSourcesOf } from '../checkout/checkout.states';
import { publishEvent } from '../webhooks/webhook.publish';
import { applyPaidTransaction, PaymentMismatch } from './payment.apply';
import { channelOrderSourcesOf } from './channel-order.states';
import { channelsOf, type ChannelResolver } from '../merchants/channel-resolver';
import type { Config } from '../../config/config';

export interface SyncDeps {
  prisma: PrismaClient;
  /** The default account's channel; orders of other accounts go through `channels` (channelsOf). */
  channel: PaymentChannel;
  channels?: ChannelResolver;
  config?: Config;
  logger: Logger;
  now: () => Date;
}

/**
 * Asks the channel about every unpaid order of a checkout (the notify may be lost or late:
 * WeChat stops retrying after ~24 h) and applies a payment it reports. Returns true if paid.
 */
export async function syncCheckoutWithChannel(deps: SyncDeps, checkoutId: string): Promise<boolean> {
  const orders = await deps.prisma.channelOrder.findMany({ where: { checkoutId, status: { in: ['created', 'closed'] }, channel: deps.channel.name } });
  for (const o of orders) {
    // Each order is asked about through the account it was placed with.
    const channel = await channelsOf(deps).forAccount(o.accountId);
    const tx = await channel.queryOrder(o.outTradeNo);
    // REFUND is reached only from SUCCESS (a refund was started at the merchant platform): it proves the payment.
    if (tx?.tradeState !== 'SUCCESS' && tx?.tradeState !== 'REFUND') continue;
    try {
      const r = await applyPaidTransaction(deps.prisma, channel.name, tx, deps.now(), o.accountId);
      deps.logger.info({ checkoutId, outcome: r.outcome, outTradeNo: o.outTradeNo }, 'payment found by query');
      return true;
    } catch (err) {
      if (err instanceof PaymentMismatch) deps.logger.error({ code: err.code, outTradeNo: o.outTradeNo }, `queried payment does not match: ${err.message}`);
      else throw err;
    }
  }
  const c = await deps.prisma.checkout.findUnique({ where: { id: checkoutId }, select: { status: true } });
  return c?.status === 'paid';
}

/**
 * Closes every unpaid channel order of a checkout at the channel; true if one turned out paid (that
 * payment is then recorded by a query: as the payment, or as a double payment of a paid checkout).
 */
export async function closeChannelOrders(deps: SyncDeps, checkoutId: string, read?: OpenOrder[]): Promise<boolean> {
  const orders = read ?? (await openOrdersOf(deps.prisma, [checkoutId])).get(checkoutId) ?? [];
  let paid = false;
  for (const o of orders) {
    const channel = await channelsOf(deps).forAccount(o.accountId);
    try {
      await channel.closeOrder(o.outTradeNo);
      await markClosed(deps, o.id);
    } catch (err) {
      if (!(err instanceof ChannelError)) throw err;
      // Whatever the refusal says (ORDER_PAID, its v2 name ORDERPAID, or a code we do not know), the
      // order's state at the channel decides: paid -> record it; closed -> closed; else retry later.
      const state = err.retryable ? null : await channel.queryOrder(o.outTradeNo).then((tx) => tx?.tradeState ?? 'CLOSED', () => null);
      if (state === 'SUCCESS' || state === 'REFUND') paid = true;
      else if (state === 'CLOSED' || state === 'REVOKED') await markClosed(deps, o.id);
      else throw err;
    }
  }
  return paid && (await syncCheckoutWithChannel(deps, checkoutId));
}

/** A channel order not yet paid or closed, with what closing it at the channel needs. */
export type OpenOrder = { id: string; accountId: string | null; outTradeNo: string };

/** A channel order still open at the channel: not paid, not closed. One definition for every reader. */
const OPEN_ORDER = Prisma.sql`status = 'created'`;

/** SQL: the checkout `checkoutId` (an SQL expression) has no open channel order left. */
export const noOpenOrder = (checkoutId: Prisma.Sql) => Prisma.sql`NOT EXISTS (SELECT 1 FROM channel_orders WHERE checkout_id = ${checkoutId} AND ${OPEN_ORDER})`;

/**
 * The `created` channel orders of these checkouts, by checkout. Raw (below the client's runtime, as
 * the outbox's own statements): it runs for every payment (the outbox's follow-up, a pass at a time),
 * usually to find nothing; the typed read cost ~0.4 ms of CPU.
 */
export async function openOrdersOf(prisma: PrismaClient, checkoutIds: string[]): Promise<Map<string, OpenOrder[]>> {
  const rows = await rawQuery<OpenOrder & { checkoutId: string }>(prisma, Prisma.sql`
    SELECT id, checkout_id AS "checkoutId", account_id AS "accountId", out_trade_no AS "outTradeNo"
      FROM channel_orders WHERE checkout_id = ANY(${checkoutIds}::text[]) AND ${OPEN_ORDER} ORDER BY created_at, id`);
  const out = new Map<string, OpenOrder[]>();
  for (const { checkoutId, ...o } of rows) out.set(checkoutId, [...(out.get(checkoutId) ?? []), o]);
  return out;
}

async function markClosed(deps: SyncDeps, channelOrderId: string): Promise<void> {
  await deps.prisma.channelOrder.updateMany({ where: { id: channelOrderId, status: { in: channelOrderSourcesOf('closed') } }, data: { status: 'closed' } });
}

/**
 * Closes an unpaid checkout: first every channel order at the channel (so the shopper can no longer
 * pay), then the checkout (open -> `to`). A close that reports "already paid" records the payment
 * instead. Pages stop creating channel orders once `expiresAt` has passed, so a merchant's close
 * moves `expiresAt` to now first. Throws a ChannelError when the channel is unreachable (retry later).
 */
export async function closeCheckout(deps: SyncDeps, checkoutId: string, to: 'expired' | 'closed'): Promise<'closed' | 'paid' | 'not_open'> {
  if (to === 'closed') {
    const open = await deps.prisma.checkout.updateMany({ where: { id: checkoutId, status: 'open' }, data: { expiresAt: deps.now() } });
    if (open.count === 0) return 'not_open';
  }
  if (await closeChannelOrders(deps, checkoutId)) return 'paid';
  const moved = await deps.prisma.$transaction(async (db) => {
    const m = await db.checkout.updateMany({ where: { id: checkoutId, status: { in: checkoutSourcesOf(to) } }, data: { status: to } });
    if (m.count === 1) {
      const { merchantId } = await db.checkout.findUniqueOrThrow({ where: { id: checkoutId }, select: { merchantId: true } });
      await publishEvent(db, { merchantId, type: to === 'expired' ? 'checkout.expired' : 'checkout.closed', checkoutId, object: { kind: 'checkout', id: checkoutId } });
    }
    return m;
  });
  // A page that read the checkout just before expiresAt moved may have ordered meanwhile.
  if (moved.count === 1 && (await closeChannelOrders(deps, checkoutId))) return 'paid';
  return moved.count === 1 ? 'closed' : 'not_open';
}

/**
 * Per-checkout backoff of the sweeper (one per process): a checkout whose close keeps failing is
 * retried less and less often, so it cannot keep newer expired checkouts out of every batch.
 */
export class SweepBackoff {
  private readonly next = new Map<string, { at: number; failures: number }>();
  skip(id: string, now: number): boolean {
    return (this.next.get(id)?.at ?? 0) > now;
  }
  failed(id: string, now: number): void {
    const failures = (this.next.get(id)?.failures ?? 0) + 1;
    this.next.set(id, { failures, at: now + Math.min(30 * 60_000, 5_000 * 2 ** Math.min(failures, 10)) });
  }
  succeeded(id: string): void {
    this.next.delete(id);
  }
}

/** Checkouts per sweeper batch; a full batch means more are waiting (the loop goes on at once). */
export const SWEEP_BATCH = 50;

/**
 * An ended checkout leaves the sweeper's list only this long after it ended. No order can be
 * inserted once it ended (ensureChannelOrder inserts only while it is open, under a share lock on its
 * row); the minute is a margin for a page still at WeChat with an order made just before the end
 * (the closes in flight meanwhile, and that page itself, close it).
 */
const ORDERING_GRACE_MS = 60_000;

/**
 * An ended checkout whose orders were all just closed: marked done for the sweeper once no page can
 * still be ordering, and only if no order is still open (compare-and-set in one statement).
 */
async function ordersClosed(deps: SyncDeps, checkoutId: string): Promise<'done'> {
  const at = deps.now();
  await deps.prisma.$executeRaw`
    UPDATE checkouts c SET orders_closed_at = ${sqlUtc(at)}
     WHERE c.id = ${checkoutId} AND c.status IN ('expired', 'closed') AND c.orders_closed_at IS NULL
       AND c.expires_at < ${sqlUtc(new Date(at.getTime() - ORDERING_GRACE_MS))}
       AND NOT EXISTS (SELECT 1 FROM channel_orders o WHERE o.checkout_id = c.id AND o.status = 'created')`;
  return 'done';
}

/**
 * Closes expired unpaid checkouts, oldest first, and retries channel orders left open on checkouts
 * that are no longer open. A failure leaves the work for a later sweep (with backoff).
 */
export async function sweepExpiredCheckouts(
  deps: SyncDeps,
  opts: { batch?: number; backoff?: SweepBackoff } = {},
): Promise<{ expired: number; paid: number; failed: number; handled: number }> {
  const batch = opts.batch ?? SWEEP_BATCH;
  const backoff = opts.backoff ?? new SweepBackoff();
  const nowMs = deps.now().getTime();
  // Two work lists, each read through its own index so that neither grows with history: open
  // checkouts past their expiry, and ended checkouts not yet known to have every order closed (a
  // partial index; the typed OR with an EXISTS per row scanned every checkout that ever ended) —
  // those with an order still open, or past their grace (to be marked done).
  // Literal statuses, written as the index's predicate is: a partial index is used only when the
  // query's predicate implies its own.
  const limit = batch * 4;
  const now = sqlUtc(deps.now());
  const graceEnded = sqlUtc(new Date(nowMs - ORDERING_GRACE_MS));
  const candidates = await deps.prisma.$queryRaw<Array<{ id: string; status: string }>>`
    SELECT id, status FROM (
      (SELECT id, status::text AS status, expires_at FROM checkouts
        WHERE status = 'open' AND expires_at <= ${now} ORDER BY expires_at LIMIT ${limit})
      UNION ALL
      (SELECT id, status::text, expires_at FROM checkouts c
        WHERE (status = 'expired' OR status = 'closed') AND orders_closed_at IS NULL
          AND (expires_at < ${graceEnded} OR EXISTS (SELECT 1 FROM channel_orders o WHERE o.checkout_id = c.id AND o.status = 'created'))
        ORDER BY expires_at LIMIT ${limit})
    ) due ORDER BY expires_at LIMIT ${limit}`;
  const due = candidates.filter((c) => !backoff.skip(c.id, nowMs)).slice(0, batch);
  // `handled`: done without a failure; a full batch of those means more are waiting. (One within its
  // grace, its orders just closed, is not listed again: the list takes it only while an order is open.)
  const result = { expired: 0, paid: 0, failed: 0, handled: 0 };
  for (const c of due) {
    try {
      const r = c.status === 'open' ? await closeCheckout(deps, c.id, 'expired') : (await closeChannelOrders(deps, c.id)) ? 'paid' : await ordersClosed(deps, c.id);
      if (r === 'paid') result.paid++;
      else if (r === 'closed') result.expired++;
      backoff.succeeded(c.id);
      result.handled++;
    } catch (err) {
      result.failed++;
      backoff.failed(c.id, nowMs);
      deps.logger.warn({ err, checkoutId: c.id }, 'sweeper: could not close checkout, will retry');
    }
  }
  return result;
}
