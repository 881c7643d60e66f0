import { z } from 'zod';
import { MERCHANT_EVENT_TYPES } from './webhook.publish';

const eventList = z
  .array(z.enum(MERCHANT_EVENT_TYPES))
  .min(1, 'omit events to receive all of them')
  .max(MERCHANT_EVENT_TYPES.length)
  .refine((l) => new Set(l).size === l.length, 'an event type appears twice');

/** http(s) only; the address itself is checked by the service (IP literals) and again at connect time. */
const webhookUrl = z
  .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
  .max(2048)
  .refine((u) => {
    const p = new URL(u);
    return !p.username && !p.password;
  }, 'must not carry credentials');

/** POST /v1/webhook_endpoints */
export const createEndpointSchema = z
  .object({
    url: webhookUrl,
    events: eventList.optional(),
    description: z.string().trim().min(1).max(255).optional(),
  })
  .strict();
export type CreateEndpointInput = z.infer<typeof createEndpointSchema>;

/** PATCH /v1/webhook_endpoints/{id}: `events: null` subscribes to all again. */
export const updateEndpointSchema = z
  .object({
    url: webhookUrl.optional(),
    events: eventList.nullable().optional(),
    description: z.string().trim().min(1).max(255).nullable().optional(),
    disabled: z.boolean().optional(),
  })
  .strict()
  .refine((o) => Object.keys(o).length > 0, 'nothing to change');
export type UpdateEndpointInput = z.infer<typeof updateEndpointSchema>;

export const endpointIdSchema = z.string().regex(/^we_[0-9a-z]{20}$/);
export const eventIdSchema = z.string().regex(/^evt_[0-9a-z]{20}$/);

/** GET /v1/events: newest first, cursor-paged like GET /v1/checkouts. */
export const listEventsSchema = z
  .object({
    type: z.enum(MERCHANT_EVENT_TYPES).optional(),
    checkout_id: z.string().regex(/^co_[0-9a-z]{20}$/, 'not a checkout id').optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    starting_after: eventIdSchema.optional(),
  })
  .strict();
export type ListEventsInput = z.infer<typeof listEventsSchema>;

/** POST /v1/events/{id}/redeliver (body optional): one endpoint, or every endpoint subscribed now. */
export const redeliverSchema = z.object({ endpoint_id: endpointIdSchema.optional() }).strict();
