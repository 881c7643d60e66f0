import { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { AppError } from '../../lib/errors';
import { currentMerchant } from '../../http/merchant-auth';
import { withIdempotency } from '../../http/idempotency';
import { checkoutIdSchema } from '../checkout/checkout.schemas';
import type { SplitQueue } from './split.queue';
import { createSplitSchema, finishSplitSchema, splitPlanSchema } from './split.schemas';
import { createOnDemandSplit, finishSplits, replaceSplitPlan } from './split.service';

/** Merchant split API (behind merchantAuth + JSON on /v1): validate, one use-case call, JSON. */
export function splitApiRouter(deps: AppDeps, queue: () => SplitQueue): Router {
  const r = Router();
  const idOf = (raw: unknown) => {
    const p = checkoutIdSchema.safeParse(raw);
    if (!p.success) throw new AppError('NOT_FOUND', `No checkout ${String(raw)}`);
    return p.data;
  };

  r.post('/v1/checkouts/:id/splits', async (req, res) => {
    const merchant = currentMerchant(res);
    const id = idOf(req.params.id);
    const key = req.get('idempotency-key');
    // A retried split without a key would split twice: the key is mandatory here.
    if (key === undefined) throw new AppError('VALIDATION_FAILED', 'Idempotency-Key header is required for splits', { field: 'Idempotency-Key' });
    const out = await withIdempotency(deps.prisma, { merchantId: merchant.id, scope: `POST /v1/checkouts/${id}/splits`, key, body: req.body }, async () => {
      const input = createSplitSchema.parse(req.body ?? {});
      return { status: 201, body: await createOnDemandSplit(deps, queue(), merchant.id, id, input.receivers, key) };
    });
    if (out.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(out.status).json(out.body);
  });

  r.post('/v1/checkouts/:id/splits/finish', async (req, res) => {
    finishSplitSchema.parse(req.body ?? {});
    res.status(202).json({ split: await finishSplits(deps, queue(), currentMerchant(res).id, idOf(req.params.id)) });
  });

  r.put('/v1/checkouts/:id/split-plan', async (req, res) => {
    const input = splitPlanSchema.parse(req.body ?? {});
    res.json({ split: await replaceSplitPlan(deps, queue(), currentMerchant(res).id, idOf(req.params.id), input.receivers) });
  });

  return r;
}
