import { z } from 'zod';
import { createCheckoutSchema, listCheckoutsSchema } from '../modules/checkout/checkout.schemas';
import { createSplitSchema, finishSplitSchema, splitPlanSchema } from '../modules/splits/split.schemas';
import { createRefundSchema, retryRefundSchema } from '../modules/refunds/refund.schemas';
import { createEndpointSchema, listEventsSchema, redeliverSchema, updateEndpointSchema } from '../modules/webhooks/webhook.schemas';

/**
 * The OpenAPI document of the merchant API, generated from the same zod schemas the routes
 * validate with (never written twice). Served at GET /openapi.json.
 */
export function buildOpenApi(serverUrl: string): Record<string, unknown> {
  const body = (schema: z.ZodType) => ({
    required: true,
    content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } },
  });
  const error = { $ref: '#/components/responses/Error' };
  const queryParams = (schema: z.ZodObject) => {
    const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, unknown> };
    return Object.entries(js.properties).map(([name, s]) => ({ name, in: 'query', required: false, schema: s }));
  };
  const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^co_[0-9a-z]{20}$' } }];
  const webhookIdParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^we_[0-9a-z]{20}$' } }];
  const eventIdParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^evt_[0-9a-z]{20}$' } }];
  const idem = { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } };
  const refundIdParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^re_[0-9a-z]{20}$' } }];
  const refund = { description: 'The refund', content: { 'application/json': { schema: { $ref: '#/components/schemas/Refund' } } } };
  const checkout = { description: 'The checkout', content: { 'application/json': { schema: { $ref: '#/components/schemas/Checkout' } } } };
  return {
    openapi: '3.1.0',
    info: { title: 'WeChat Pay checkout gateway', version: '1', description: 'Amounts are integer fen (CNY). Errors: {error:{code,message,field?,request_id}}.' },
    servers: [{ url: serverUrl }],
    security: [{ bearer: [] }],
    paths: {
      '/v1/checkouts': {
        get: { summary: 'List checkouts (newest first)', parameters: queryParams(listCheckoutsSchema), responses: { 200: { description: '{object: "list", data: Checkout[], has_more}' }, 400: error } },
        post: { summary: 'Create a checkout', parameters: [idem], requestBody: body(createCheckoutSchema), responses: { 201: checkout, 400: error, 401: error, 409: error, 422: error } },
      },
      '/v1/checkouts/{id}': { get: { summary: 'Get a checkout', parameters: idParam, responses: { 200: checkout, 404: error } } },
      '/v1/checkouts/{id}/close': { post: { summary: 'Close an unpaid checkout (its channel orders first)', parameters: idParam, responses: { 200: checkout, 404: error, 409: error } } },
      '/v1/checkouts/{id}/split-plan': { put: { summary: 'Replace the planned receivers until splitting starts', parameters: idParam, requestBody: body(splitPlanSchema), responses: { 200: { description: 'The split section' }, 409: error, 422: error } } },
      '/v1/checkouts/{id}/splits': {
        post: { summary: 'Split now (on-demand)', parameters: [...idParam, { ...idem, required: true }], requestBody: body(createSplitSchema), responses: { 201: { description: 'The split' }, 409: error, 422: error } },
      },
      '/v1/checkouts/{id}/refunds': {
        post: { summary: 'Refund a paid checkout (partly or fully; several times)', parameters: [...idParam, { ...idem, required: true }], requestBody: body(createRefundSchema), responses: { 201: refund, 400: error, 404: error, 409: error, 422: error } },
      },
      '/v1/refunds/{id}': { get: { summary: 'Get a refund', parameters: refundIdParam, responses: { 200: refund, 404: error } } },
      '/v1/refunds/{id}/retry': { post: { summary: 'Finish a refund left returning after a failed split return', parameters: refundIdParam, requestBody: { ...body(retryRefundSchema), required: false }, responses: { 200: refund, 404: error, 409: error } } },
      '/v1/webhook_endpoints': {
        get: { summary: 'List webhook endpoints', responses: { 200: { description: '{object: "list", data: WebhookEndpoint[]}' } } },
        post: { summary: 'Register a webhook endpoint (the answer shows its whsec_ secret, only this once)', requestBody: body(createEndpointSchema), responses: { 201: { description: 'The endpoint, with `secret`' }, 400: error, 422: error } },
      },
      '/v1/webhook_endpoints/{id}': {
        get: { summary: 'Get a webhook endpoint', parameters: webhookIdParam, responses: { 200: { description: 'The endpoint' }, 404: error } },
        patch: { summary: 'Change url, events, description or disabled', parameters: webhookIdParam, requestBody: body(updateEndpointSchema), responses: { 200: { description: 'The endpoint' }, 400: error, 404: error } },
        delete: { summary: 'Delete a webhook endpoint', parameters: webhookIdParam, responses: { 200: { description: '{id, deleted: true}' }, 404: error } },
      },
      '/v1/webhook_endpoints/{id}/rotate_secret': {
        post: { summary: 'New secret; the old one keeps signing beside it for 24 h', parameters: webhookIdParam, responses: { 200: { description: 'The endpoint, with the new `secret`' }, 404: error } },
      },
      '/v1/events': { get: { summary: 'Merchant events, newest first', parameters: queryParams(listEventsSchema), responses: { 200: { description: '{object: "list", data: Event[], has_more}' }, 400: error } } },
      '/v1/events/{id}': { get: { summary: 'An event with its deliveries and every attempt', parameters: eventIdParam, responses: { 200: { description: 'The event' }, 404: error } } },
      '/v1/events/{id}/redeliver': {
        post: { summary: 'Send the event again (one endpoint, or every subscribed endpoint)', parameters: eventIdParam, requestBody: { ...body(redeliverSchema), required: false }, responses: { 202: { description: '{id, redelivering_to}' }, 404: error } },
      },
      '/v1/checkouts/{id}/splits/finish': { post: { summary: 'Unfreeze the remainder', parameters: idParam, requestBody: { ...body(finishSplitSchema), required: false }, responses: { 202: { description: 'The split section' }, 409: error } } },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Checkout: {
          type: 'object',
          required: ['id', 'status', 'amount', 'checkout_url', 'expires_at', 'channel_orders'],
          properties: {
            id: { type: 'string' },
            status: { enum: ['open', 'paid', 'expired', 'closed'] },
            amount: { type: 'integer', description: 'fen' },
            checkout_url: { type: 'string', format: 'uri' },
            expires_at: { type: 'string', format: 'date-time' },
            channel: { type: ['string', 'null'] },
            transaction_id: { type: ['string', 'null'] },
            paid_at: { type: ['string', 'null'], format: 'date-time' },
            channel_orders: { type: 'array', items: { type: 'object', properties: { trade_type: { enum: ['JSAPI', 'H5', 'NATIVE'] }, out_trade_no: { type: 'string' }, appid: { type: 'string' }, mchid: { type: 'string' }, status: { enum: ['created', 'paid', 'closed'] } } } },
            split: { type: 'object', description: 'status none|pending|processing|succeeded|partially_failed|failed, batches, unfrozen amount, mismatches' },
            refunded_amount: { type: 'integer', description: 'fen refunded (succeeded refunds)' },
            refundable_amount: { type: 'integer', description: 'fen that can still be refunded' },
            refunds: { type: 'array', items: { $ref: '#/components/schemas/Refund' } },
          },
        },
        Refund: {
          type: 'object',
          required: ['id', 'checkout_id', 'amount', 'out_refund_no', 'status', 'split_returns', 'created_at'],
          properties: {
            id: { type: 'string', pattern: '^re_' },
            checkout_id: { type: 'string' },
            amount: { type: 'integer', description: 'fen' },
            reason: { type: ['string', 'null'] },
            out_refund_no: { type: 'string' },
            status: { enum: ['pending', 'returning', 'processing', 'succeeded', 'failed', 'abnormal', 'closed'] },
            split_returns: { type: 'array', items: { type: 'object', properties: { account: { type: 'string' }, amount: { type: 'integer' }, out_return_no: { type: 'string' }, state: { enum: ['pending', 'succeeded', 'failed', 'cancelled'] }, reason: { type: 'string' } } } },
            failure_code: { type: 'string' },
            failure_reason: { type: 'string' },
            created_at: { type: 'string', format: 'date-time' },
            succeeded_at: { type: 'string', format: 'date-time' },
          },
        },
      },
      responses: {
        Error: {
          description: 'An error',
          content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' }, request_id: { type: 'string' } } } } } } },
        },
      },
    },
  };
}
