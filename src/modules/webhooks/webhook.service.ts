import { randomBytes } from 'node:crypto';
import type { AppDeps } from '../../app.types';
import type { MerchantEvent, WebhookEndpoint } from '../../generated/prisma/client';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Prisma, PrismaClient } from '../../lib/prisma';

type Db = PrismaClient | Prisma.TransactionClient;
import type { CreateEndpointInput, ListEventsInput, UpdateEndpointInput } from './webhook.schemas';
import { refusedAddress } from './webhook.sender';

type Deps = Pick<AppDeps, 'prisma' | 'config' | 'now'>;

/** Endpoints per merchant: enough for real setups, bounded so one event never fans out without limit. */
export const MAX_ENDPOINTS = 16;
/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3600_000;

/** `whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function checkUrl(deps: Deps, url: string): void {
  const refused = refusedAddress(url, deps.config.WEBHOOK_ALLOW_LOOPBACK);
  if (refused) throw new AppError('VALIDATION_FAILED', `url: ${refused}`, { field: 'url' });
}

/** The secrets that sign now: the current one, and the previous one during its overlap. */
export function signingSecrets(e: Pick<WebhookEndpoint, 'secret' | 'previousSecret' | 'previousSecretExpiresAt'>, now: Date): string[] {
  const prev = e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt.getTime() > now.getTime() ? [e.previousSecret] : [];
  return [e.secret, ...prev];
}

/** The endpoint as the API shows it: never the secret (shown once, at creation and rotation). */
export function endpointJson(e: WebhookEndpoint, now: Date) {
  return {
    id: e.id,
    object: 'webhook_endpoint' as const,
    url: e.url,
    events: e.events.length ? e.events : null,
    description: e.description,
    disabled: e.disabled,
    // Set when a delivery exhausted its retries; cleared by the next successful delivery.
    failing_since: e.failingSince?.toISOString() ?? null,
    previous_secret_expires_at: e.previousSecretExpiresAt && e.previousSecretExpiresAt > now ? e.previousSecretExpiresAt.toISOString() : null,
    created_at: e.createdAt.toISOString(),
  };
}

export async function getEndpoint(prisma: Db, merchantId: string, id: string): Promise<WebhookEndpoint> {
  const e = await prisma.webhookEndpoint.findFirst({ where: { id, merchantId, deletedAt: null } });
  if (!e) throw new AppError('NOT_FOUND', `No webhook endpoint ${id}`);
  return e;
}

export async function createEndpoint(deps: Deps, merchantId: string, input: CreateEndpointInput) {
  checkUrl(deps, input.url);
  const count = await deps.prisma.webhookEndpoint.count({ where: { merchantId, deletedAt: null } });
  if (count >= MAX_ENDPOINTS) throw new AppError('UNPROCESSABLE', `At most ${MAX_ENDPOINTS} webhook endpoints per merchant`);
  const e = await deps.prisma.webhookEndpoint.create({
    data: { id: newId('we'), merchantId, url: input.url, events: input.events ?? [], description: input.description ?? null, secret: newWebhookSecret() },
  });
  return { ...endpointJson(e, deps.now()), secret: e.secret };
}

export async function listEndpoints(deps: Deps, merchantId: string) {
  const rows = await deps.prisma.webhookEndpoint.findMany({ where: { merchantId, deletedAt: null }, orderBy: { createdAt: 'asc' } });
  return { object: 'list' as const, data: rows.map((e) => endpointJson(e, deps.now())), has_more: false };
}

export async function updateEndpoint(deps: Deps, merchantId: string, id: string, input: UpdateEndpointInput) {
  await getEndpoint(deps.prisma, merchantId, id);
  if (input.url !== undefined) checkUrl(deps, input.url);
  const r = await deps.prisma.webhookEndpoint.updateMany({
    where: { id, merchantId, deletedAt: null },
    data: {
      ...(input.url !== undefined ? { url: input.url } : {}),
      ...(input.events !== undefined ? { events: input.events ?? [] } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.disabled !== undefined ? { disabled: input.disabled } : {}),
    },
  });
  if (r.count !== 1) throw new AppError('NOT_FOUND', `No webhook endpoint ${id}`);
  return endpointJson(await getEndpoint(deps.prisma, merchantId, id), deps.now());
}

/** Soft delete: its pending deliveries end as failed (no retry scan keeps them), past attempts stay readable on their events. */
export async function deleteEndpoint(deps: Deps, merchantId: string, id: string) {
  const deleted = await deps.prisma.$transaction(async (db) => {
    const r = await db.webhookEndpoint.updateMany({ where: { id, merchantId, deletedAt: null }, data: { deletedAt: deps.now() } });
    if (r.count === 1) await db.webhookDelivery.updateMany({ where: { endpointId: id, status: 'pending' }, data: { status: 'failed' } });
    return r.count === 1;
  });
  if (!deleted) throw new AppError('NOT_FOUND', `No webhook endpoint ${id}`);
  return { id, object: 'webhook_endpoint' as const, deleted: true };
}

/**
 * A new secret; the current one keeps signing beside it for 24 h (two v1 signatures), so the
 * merchant can deploy the new secret without dropping a delivery. A rotation during an overlap
 * ends the older overlap: at most two secrets sign at any time.
 */
export async function rotateSecret(deps: Deps, merchantId: string, id: string) {
  const e = await getEndpoint(deps.prisma, merchantId, id);
  const secret = newWebhookSecret();
  const now = deps.now();
  const r = await deps.prisma.webhookEndpoint.updateMany({
    where: { id, merchantId, deletedAt: null, secret: e.secret },
    data: { secret, previousSecret: e.secret, previousSecretExpiresAt: new Date(now.getTime() + ROTATION_OVERLAP_MS) },
  });
  if (r.count !== 1) throw new AppError('CONFLICT', 'The secret was rotated concurrently; retry');
  return { ...endpointJson(await getEndpoint(deps.prisma, merchantId, id), now), secret };
}

// ---- events -------------------------------------------------------------------------------------

/** An event as the API shows it: the delivered body's fields (data is null until rendered, within a poll). */
export function eventJson(ev: MerchantEvent) {
  const body = ev.body ? (JSON.parse(ev.body) as { data: unknown }) : null;
  return {
    id: ev.id,
    object: 'event' as const,
    type: ev.type,
    created: ev.createdAt.toISOString(),
    checkout_id: ev.checkoutId,
    data: body?.data ?? null,
  };
}

async function getEvent(prisma: Db, merchantId: string, id: string): Promise<MerchantEvent> {
  const ev = await prisma.merchantEvent.findFirst({ where: { id, merchantId } });
  if (!ev) throw new AppError('NOT_FOUND', `No event ${id}`);
  return ev;
}

export async function listEvents(deps: Deps, merchantId: string, q: ListEventsInput) {
  let before: bigint | undefined;
  if (q.starting_after) {
    const c = await deps.prisma.merchantEvent.findFirst({ where: { id: q.starting_after, merchantId }, select: { seq: true } });
    if (!c) throw new AppError('VALIDATION_FAILED', `No event ${q.starting_after} to page after`, { field: 'starting_after' });
    before = c.seq;
  }
  const rows = await deps.prisma.merchantEvent.findMany({
    where: { merchantId, ...(q.type ? { type: q.type } : {}), ...(q.checkout_id ? { checkoutId: q.checkout_id } : {}), ...(before !== undefined ? { seq: { lt: before } } : {}) },
    orderBy: { seq: 'desc' },
    take: q.limit + 1,
  });
  return { object: 'list' as const, data: rows.slice(0, q.limit).map(eventJson), has_more: rows.length > q.limit };
}

/** One event with its deliveries and every attempt (time, HTTP status, duration, first 1 KB of the answer). */
export async function eventWithAttempts(deps: Deps, merchantId: string, id: string) {
  const ev = await getEvent(deps.prisma, merchantId, id);
  const [deliveries, attempts] = await Promise.all([
    deps.prisma.webhookDelivery.findMany({ where: { eventId: id }, orderBy: { createdAt: 'asc' } }),
    deps.prisma.webhookAttempt.findMany({ where: { eventId: id }, orderBy: { attemptedAt: 'asc' } }),
  ]);
  return {
    ...eventJson(ev),
    deliveries: deliveries.map((d) => ({
      endpoint_id: d.endpointId,
      status: d.status,
      next_attempt_at: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
      delivered_at: d.deliveredAt?.toISOString() ?? null,
      attempts: attempts
        .filter((a) => a.deliveryId === d.id)
        .map((a) => ({ attempted_at: a.attemptedAt.toISOString(), status: a.httpStatus, duration_ms: a.durationMs, response: a.response, error: a.error })),
    })),
  };
}

/**
 * Sends the event again: to one endpoint, or to every enabled endpoint subscribed to its type now
 * (creating deliveries for endpoints added since). A new round starts with its own retry schedule.
 * `tx`: inside the caller's transaction (the console commits it with its audit row).
 */
export async function redeliverEvent(deps: Deps, merchantId: string, id: string, endpointId?: string, tx?: Prisma.TransactionClient) {
  const read = tx ?? deps.prisma;
  const ev = await getEvent(read, merchantId, id);
  const endpoints = endpointId
    ? [await getEndpoint(read, merchantId, endpointId)]
    : (await read.webhookEndpoint.findMany({ where: { merchantId, deletedAt: null, disabled: false } })).filter(
        (e) => e.events.length === 0 || e.events.includes(ev.type),
      );
  const now = deps.now();
  const run = tx ? (fn: (db: Prisma.TransactionClient) => Promise<void>) => fn(tx) : (fn: (db: Prisma.TransactionClient) => Promise<void>) => deps.prisma.$transaction(fn);
  await run(async (db) => {
    await db.webhookDelivery.createMany({
      data: endpoints.map((e) => ({ id: newId('whd'), eventId: ev.id, endpointId: e.id, checkoutId: ev.checkoutId, eventSeq: ev.seq, nextAttemptAt: now })),
      skipDuplicates: true,
    });
    // An attempt in flight keeps its lease (it finishes and records itself); the new round follows it.
    await db.webhookDelivery.updateMany({
      where: { eventId: ev.id, endpointId: { in: endpoints.map((e) => e.id) }, status: { in: ['delivered', 'failed'] } },
      data: { status: 'pending', attempts: 0, nextAttemptAt: now, deliveredAt: null },
    });
  });
  return { id: ev.id, object: 'event' as const, redelivering_to: endpoints.map((e) => e.id) };
}
