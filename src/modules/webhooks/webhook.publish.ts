import type { Prisma } from '../../lib/prisma';

/**
 * The merchant events the gateway publishes (issue 9 §2). Producers call `publishEvent` inside the
 * transaction that makes the state change, so an event exists exactly when its change committed.
 *
 * CONTRACT shared by the refunds and webhooks modules while they are built in parallel: the
 * webhooks module owns this file and replaces the body of `publishEvent`; its signature stays.
 */
export const MERCHANT_EVENT_TYPES = [
  'checkout.paid',
  'checkout.expired',
  'checkout.closed',
  'checkout.double_paid',
  'split.succeeded',
  'split.partially_failed',
  'split.failed',
  'refund.succeeded',
  'refund.failed',
  'refund.abnormal',
  'reconciliation.mismatch',
] as const;
export type MerchantEventType = (typeof MERCHANT_EVENT_TYPES)[number];

/** What the event is about; its JSON is rendered by the module that owns the kind (see AppModule.eventObjects). */
export interface EventObjectRef {
  kind: 'checkout' | 'split' | 'refund' | 'mismatch';
  id: string;
}

export interface PublishEventInput {
  merchantId: string;
  type: MerchantEventType;
  /** Events of one checkout reach an endpoint in order; null for events not tied to a checkout. */
  checkoutId: string | null;
  object: EventObjectRef;
}

/** Records a merchant event in the caller's transaction; delivery happens later from the outbox. */
export async function publishEvent(_tx: Prisma.TransactionClient, _input: PublishEventInput): Promise<void> {
  // Replaced by the webhooks module (issue 9 §2).
}
