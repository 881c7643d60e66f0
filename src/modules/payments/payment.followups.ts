import type { AppDeps } from '../../app';
import { ChannelError } from '../../lib/errors';
import type { OutboxHandler } from '../../jobs/outbox.dispatcher';
import { channelOrderSourcesOf } from './channel-order.states';

/**
 * After a checkout is paid, close its other unpaid channel orders (e.g. the QR shown on a desktop
 * while the shopper paid by H5) so the shopper cannot pay twice. Idempotent: close is idempotent at
 * WeChat and our update is a compare-and-set.
 */
export function closeSiblingOrders(deps: Pick<AppDeps, 'prisma' | 'channel' | 'logger'>): OutboxHandler {
  return async (event) => {
    const siblings = await deps.prisma.channelOrder.findMany({ where: { checkoutId: event.aggregateId, status: 'created' } });
    for (const o of siblings) {
      try {
        await deps.channel.closeOrder(o.outTradeNo);
        await deps.prisma.channelOrder.updateMany({ where: { id: o.id, status: { in: channelOrderSourcesOf('closed') } }, data: { status: 'closed' } });
      } catch (err) {
        // Paid as well: the notify (or a query) records it as a double payment; nothing to close.
        if (err instanceof ChannelError && err.code === 'ORDERPAID') continue;
        throw err;
      }
    }
  };
}
