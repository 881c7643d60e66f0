import type { AppDeps } from '../../app.types';
import type { OutboxHandler } from '../../jobs/outbox.dispatcher';
import { Prisma } from '../../lib/prisma';
import { closeChannelOrders, noOpenOrder, openOrdersOf } from './payment.sync';

/**
 * After a checkout is paid, close its other unpaid channel orders (e.g. the QR shown on a desktop
 * while the shopper paid by H5) so the shopper cannot pay twice. One that was paid as well is
 * recorded as a double payment. Idempotent: close is idempotent at WeChat, our update a compare-and-set.
 */
export function closeSiblingOrders(deps: Pick<AppDeps, 'prisma' | 'channel' | 'logger' | 'now'>): OutboxHandler {
  const handler: OutboxHandler = async (event) => {
    await closeChannelOrders(deps, event.aggregateId);
  };
  // A pass of payments: every checkout's orders still open in one read (usually none: one order per
  // checkout), then the channel calls per payment.
  handler.prepare = async (events) => {
    const open = await openOrdersOf(deps.prisma, events.map((e) => e.aggregateId));
    return async (event) => {
      await closeChannelOrders(deps, event.aggregateId, open.get(event.aggregateId) ?? []);
    };
  };
  // No open order left (the one openOrdersOf reads): nothing to close. Orders are inserted only while
  // the checkout is open, holding its row until they commit, so none can commit after the payment.
  handler.idleWhen = noOpenOrder(Prisma.sql`o.aggregate_id`);
  return handler;
}
