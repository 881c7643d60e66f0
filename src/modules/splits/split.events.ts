import type { Prisma } from '../../lib/prisma';
import { publishEvent } from '../webhooks/webhook.publish';
import { splitStatus } from './split.rules';

/**
 * Publishes split.succeeded | split.partially_failed | split.failed once the split's last open batch
 * became final. Called in the transaction of that batch's compare-and-set, right after it moved
 * (so exactly once: batches of a payment are driven one at a time and a batch moves to final once).
 */
export async function publishSplitEventIfFinal(db: Prisma.TransactionClient, splitId: string): Promise<void> {
  const split = await db.split.findUniqueOrThrow({
    where: { id: splitId },
    select: { checkoutId: true, checkout: { select: { merchantId: true } }, batches: { select: { state: true, receivers: { select: { state: true } } } } },
  });
  const status = splitStatus({ planWaiting: false, batches: split.batches });
  if (status !== 'succeeded' && status !== 'partially_failed' && status !== 'failed') return;
  await publishEvent(db, { merchantId: split.checkout.merchantId, type: `split.${status}`, checkoutId: split.checkoutId, object: { kind: 'split', id: splitId } });
}
