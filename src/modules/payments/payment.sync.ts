import type { PaymentChannel } from '../../channels/channel';
import { ChannelError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { PrismaClient } from '../../lib/prisma';
import { checkoutSourcesOf } from '../checkout/checkout.states';
import { applyPaidTransaction, PaymentMismatch } from './payment.apply';
import { channelOrderSourcesOf } from './channel-order.states';

export interface SyncDeps {
  prisma: PrismaClient;
  channel: PaymentChannel;
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
    const tx = await deps.channel.queryOrder(o.outTradeNo);
    if (tx?.tradeState !== 'SUCCESS') continue;
    try {
      const r = await applyPaidTransaction(deps.prisma, deps.channel.name, tx, deps.now());
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
 * Closes expired unpaid checkouts: first every channel order at the channel (so the shopper can no
 * longer pay), then the checkout. A close that reports "already paid" turns into a recorded payment.
 */
export async function sweepExpiredCheckouts(deps: SyncDeps, batch = 50): Promise<{ expired: number; paid: number; failed: number }> {
  const due = await deps.prisma.checkout.findMany({
    where: { status: 'open', expiresAt: { lte: deps.now() } },
    orderBy: { expiresAt: 'asc' },
    take: batch,
    include: { channelOrders: { where: { status: 'created' } } },
  });
  const result = { expired: 0, paid: 0, failed: 0 };
  for (const c of due) {
    try {
      let paid = false;
      for (const o of c.channelOrders) {
        try {
          await deps.channel.closeOrder(o.outTradeNo);
          await deps.prisma.channelOrder.updateMany({ where: { id: o.id, status: { in: channelOrderSourcesOf('closed') } }, data: { status: 'closed' } });
        } catch (err) {
          if (err instanceof ChannelError && err.code === 'ORDERPAID') paid = true;
          else throw err;
        }
      }
      if (paid && (await syncCheckoutWithChannel(deps, c.id))) {
        result.paid++;
        continue;
      }
      const moved = await deps.prisma.checkout.updateMany({ where: { id: c.id, status: { in: checkoutSourcesOf('expired') } }, data: { status: 'expired' } });
      result.expired += moved.count;
    } catch (err) {
      result.failed++;
      deps.logger.warn({ err, checkoutId: c.id }, 'sweeper: could not close checkout, will retry');
    }
  }
  return result;
}
