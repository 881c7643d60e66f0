import { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { currentMerchant } from '../../http/merchant-auth';
import { withIdempotency } from '../../http/idempotency';
import { AppError } from '../../lib/errors';
import { checkoutIdSchema } from '../checkout/checkout.schemas';
import { ingestRefundNotify } from './refund.notify';
import { notifyAccountChannel, notifyBytes, notifySourceIp, rawNotifyBody, sendNotifyAnswer } from '../payments/notify.http';
import { SourceLimiter } from '../../lib/source-limiter';
import { createRefundSchema, refundIdSchema, retryRefundSchema } from './refund.schemas';
import { createRefund, loadRefundJson, retryByKey, retryRefund } from './refund.service';

const idOf = (raw: unknown, schema: typeof checkoutIdSchema, what: string) => {
  const p = schema.safeParse(raw);
  if (!p.success) throw new AppError('NOT_FOUND', `No ${what} ${String(raw)}`);
  return p.data;
};

/** Merchant refund API (behind merchantAuth + JSON on /v1) and WeChat's refund notify: thin handlers. */
export function refundRouter(deps: AppDeps): Router {
  const r = Router();

  // No auth: the signature is the auth. Raw bytes for the signature (this path has no JSON parser).
  // Forged notifies are stored within a per-source allowance of their own (the payment route has one too).
  const rejectedLimiter = new SourceLimiter(deps.config.NOTIFY_REJECTED_PER_MINUTE, () => deps.now().getTime());
  r.post('/notify/wechatpay/refunds', rawNotifyBody, async (req, res) =>
    sendNotifyAnswer(res, await ingestRefundNotify({ ...deps, rejectedLimiter }, req.headers, notifyBytes(req), notifySourceIp(req))));
  // A merchant's own account: verified with that account's keys only.
  r.post('/notify/wechatpay/:accountId/refunds', rawNotifyBody, async (req, res) => {
    const channel = await notifyAccountChannel(deps, String(req.params.accountId), res);
    if (!channel) return;
    sendNotifyAnswer(res, await ingestRefundNotify({ ...deps, channel, rejectedLimiter }, req.headers, notifyBytes(req), notifySourceIp(req)));
  });

  r.post('/v1/checkouts/:id/refunds', async (req, res) => {
    const merchant = currentMerchant(res);
    const id = idOf(req.params.id, checkoutIdSchema, 'checkout');
    const key = req.get('idempotency-key');
    // A retried refund without a key would refund twice: the key is mandatory.
    if (key === undefined) throw new AppError('VALIDATION_FAILED', 'Idempotency-Key header is required for refunds', { field: 'Idempotency-Key' });
    await retryByKey(deps, merchant.id, id, key);
    const out = await withIdempotency(deps.prisma, { merchantId: merchant.id, scope: `POST /v1/checkouts/${id}/refunds`, key, body: req.body }, async () => {
      const input = createRefundSchema.parse(req.body ?? {});
      return { status: 201, body: await createRefund(deps, merchant.id, id, input, key) };
    });
    if (out.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(out.status).json(out.body);
  });

  r.get('/v1/refunds/:id', async (req, res) => {
    res.json(await loadRefundJson(deps.prisma, idOf(req.params.id, refundIdSchema, 'refund'), currentMerchant(res).id));
  });

  r.post('/v1/refunds/:id/retry', async (req, res) => {
    retryRefundSchema.parse(req.body ?? {});
    res.json(await retryRefund(deps, currentMerchant(res).id, idOf(req.params.id, refundIdSchema, 'refund')));
  });

  return r;
}
