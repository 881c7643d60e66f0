import type { CheckoutStatus } from '../../generated/prisma/enums';

/**
 * Allowed checkout transitions. The channel is the source of truth for money: a payment that
 * reached WeChat before our close (expired/closed) is still a payment and must be recorded.
 */
export const checkoutTransitions: Record<CheckoutStatus, readonly CheckoutStatus[]> = {
  open: ['paid', 'expired', 'closed'],
  expired: ['paid'],
  closed: ['paid'],
  paid: [],
};

/** The statuses from which `to` may be entered: the WHERE clause of the compare-and-set update. */
export function checkoutSourcesOf(to: CheckoutStatus): CheckoutStatus[] {
  return (Object.keys(checkoutTransitions) as CheckoutStatus[]).filter((from) => checkoutTransitions[from].includes(to));
}

// Validated once at module load: every target state is a declared state.
for (const [from, tos] of Object.entries(checkoutTransitions))
  for (const to of tos) if (!(to in checkoutTransitions)) throw new Error(`checkout state table: ${from} -> ${to} unknown`);
