import { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { currentMerchant } from '../../http/merchant-auth';
import { AppError } from '../../lib/errors';
import { createEndpointSchema, endpointIdSchema, eventIdSchema, listEventsSchema, redeliverSchema, updateEndpointSchema } from './webhook.schemas';
import {
  createEndpoint,
  deleteEndpoint,
  endpointJson,
  eventWithAttempts,
  getEndpoint,
  listEndpoints,
  listEvents,
  redeliverEvent,
  rotateSecret,
  updateEndpoint,
} from './webhook.service';

/** Merchant webhook API (behind merchantAuth + JSON on /v1): validate, one use-case call, JSON. */
export function webhookApiRouter(deps: AppDeps): Router {
  const r = Router();
  // A malformed id is simply not one of the merchant's: 404, like another merchant's id.
  const idOf = (schema: typeof endpointIdSchema, raw: unknown, what: string) => {
    const p = schema.safeParse(raw);
    if (!p.success) throw new AppError('NOT_FOUND', `No ${what} ${String(raw)}`);
    return p.data;
  };
  const endpointId = (raw: unknown) => idOf(endpointIdSchema, raw, 'webhook endpoint');
  const eventId = (raw: unknown) => idOf(eventIdSchema, raw, 'event');

  r.post('/v1/webhook_endpoints', async (req, res) => {
    const input = createEndpointSchema.parse(req.body ?? {});
    res.status(201).json(await createEndpoint(deps, currentMerchant(res).id, input));
  });
  r.get('/v1/webhook_endpoints', async (_req, res) => {
    res.json(await listEndpoints(deps, currentMerchant(res).id));
  });
  r.get('/v1/webhook_endpoints/:id', async (req, res) => {
    res.json(endpointJson(await getEndpoint(deps.prisma, currentMerchant(res).id, endpointId(req.params.id)), deps.now()));
  });
  r.patch('/v1/webhook_endpoints/:id', async (req, res) => {
    const id = endpointId(req.params.id);
    const input = updateEndpointSchema.parse(req.body ?? {});
    res.json(await updateEndpoint(deps, currentMerchant(res).id, id, input));
  });
  r.delete('/v1/webhook_endpoints/:id', async (req, res) => {
    res.json(await deleteEndpoint(deps, currentMerchant(res).id, endpointId(req.params.id)));
  });
  r.post('/v1/webhook_endpoints/:id/rotate_secret', async (req, res) => {
    res.json(await rotateSecret(deps, currentMerchant(res).id, endpointId(req.params.id)));
  });

  r.get('/v1/events', async (req, res) => {
    res.json(await listEvents(deps, currentMerchant(res).id, listEventsSchema.parse(req.query)));
  });
  r.get('/v1/events/:id', async (req, res) => {
    res.json(await eventWithAttempts(deps, currentMerchant(res).id, eventId(req.params.id)));
  });
  r.post('/v1/events/:id/redeliver', async (req, res) => {
    const id = eventId(req.params.id);
    const input = redeliverSchema.parse(req.body ?? {});
    res.status(202).json(await redeliverEvent(deps, currentMerchant(res).id, id, input.endpoint_id));
  });
  return r;
}
