import { newId } from '../../lib/ids';
import { Prisma } from '../../lib/prisma';

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
  kind: 'checkout' | 'split' | 'refund' | 'mismatch' | 'bill_mismatch';
  id: string;
}

/** The LISTEN/NOTIFY channel that wakes webhook dispatchers after an event commits. */
export const EVENTS_CHANNEL = 'merchant_events';

export interface PublishEventInput {
  merchantId: string;
  type: MerchantEventType;
  /** Events of one checkout reach an endpoint in order; null for events not tied to a checkout. */
  checkoutId: string | null;
  object: EventObjectRef;
}

/**
 * Records a merchant event in the caller's transaction, with one delivery row (the outbox row of
 * webhook delivery) per endpoint of the merchant that is enabled and subscribed to the type.
 * The object's JSON is NOT rendered here: renderers read through the app's client and would not see
 * this uncommitted transaction. The webhook dispatcher renders it right after the commit (its next
 * poll, WEBHOOK_POLL_MS) and stores the body once; every attempt and redelivery sends those bytes.
 */
export async function publishEvent(tx: Prisma.TransactionClient, input: PublishEventInput): Promise<{ id: string }> {
  const ev = await tx.merchantEvent.create({
    data: {
      id: newId('evt'),
      merchantId: input.merchantId,
      type: input.type,
      checkoutId: input.checkoutId,
      objectKind: input.object.kind,
      objectId: input.object.id,
    },
    select: { id: true, seq: true },
  });
  const endpoints = await tx.webhookEndpoint.findMany({
    where: { merchantId: input.merchantId, deletedAt: null, disabled: false },
    select: { id: true, events: true },
  });
  const targets = endpoints.filter((e) => e.events.length === 0 || e.events.includes(input.type));
  if (targets.length)
    await tx.webhookDelivery.createMany({
      data: targets.map((e) => ({ id: newId('whd'), eventId: ev.id, endpointId: e.id, checkoutId: input.checkoutId, eventSeq: ev.seq })),
    });
  // PostgreSQL delivers a NOTIFY only when (and if) the transaction commits: dispatchers LISTENing
  // wake at once instead of at their next poll.
  await tx.$executeRaw`SELECT pg_notify(${EVENTS_CHANNEL}, '')`;
  return { id: ev.id };
}

/**
 * `publishEvent` for a checkout, as CTEs of the statement that makes the state change itself (a hot
 * path that changes state in one statement has no transaction to call `publishEvent` in). `source`
 * names an earlier CTE of that statement whose rows (`id` = the checkout, `merchant_id`) changed: each
 * gets the event and its delivery rows, committed with the change or not at all. Appends the CTEs
 * `published` and `delivered`. No NOTIFY (see webhook.wake.ts): the caller calls `eventsCommitted()`
 * once the statement has published. Delivery ids are made in SQL (the endpoints are only known
 * there): `whd_` + 20 hex digits.
 */
export function publishCheckoutEventCtes(source: 'moved', type: MerchantEventType, eventId: string): Prisma.Sql {
  return Prisma.sql`
    published AS (
      INSERT INTO merchant_events (id, merchant_id, type, checkout_id, object_kind, object_id)
      SELECT ${eventId}, s.merchant_id, ${type}, s.id, 'checkout', s.id FROM ${Prisma.raw(source)} s
      RETURNING id, seq, merchant_id, checkout_id),
    delivered AS (
      INSERT INTO webhook_deliveries (id, event_id, endpoint_id, checkout_id, event_seq, updated_at)
      SELECT 'whd_' || substr(md5(gen_random_uuid()::text || e.id), 1, 20), p.id, e.id, p.checkout_id, p.seq, now() AT TIME ZONE 'UTC'
      FROM published p JOIN webhook_endpoints e ON e.merchant_id = p.merchant_id
      WHERE e.deleted_at IS NULL AND NOT e.disabled AND (cardinality(e.events) = 0 OR ${type} = ANY(e.events))
      RETURNING 1)`;
}
