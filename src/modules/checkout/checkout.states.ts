import type { CheckoutStatus } from '../../generated/prisma/enums';
import { checkStateTable, sourcesOf } from '../../lib/state-table';

/**
 * Allowed checkout transitions. The channel is the source of truth for money: a payment that
 * reached WeChat before our close (expired/closed) is still a payment and must be recorded.
 */
export const checkoutTransitions = checkStateTable<CheckoutStatus>('checkout', {
  open: ['paid', 'expired', 'closed'],
  expired: ['paid'],
  closed: ['paid'],
  paid: [],
});

/** The statuses from which `to` may be entered: the WHERE clause of the compare-and-set update. */
export const checkoutSourcesOf = (to: CheckoutStatus) => sourcesOf(checkoutTransitions, to);
