import { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { currentMerchant } from '../../http/merchant-auth';
import { withIdempotency } from '../../http/idempotency';
import { createCheckoutSchema, listCheckoutsSchema } from './checkout.schemas';
import { AppError } from '../../lib/errors';
import { closeCheckout } from '../payments/payment.sync';
import { createCheckout, effectiveStatus, getCheckout, listCheckouts, toCheckoutJson, type CheckoutWithOrders } from './checkout.service';

/** Merchant API (mounted behind merchantAuth on /v1): thin handlers — validate, one use-case call, JSON. */
export function checkoutApiRouter(deps: AppDeps, extendJson: CheckoutJsonExtension[] = []): Router {
  const r = Router();

  const render = (c: CheckoutWithOrders) => renderCheckoutJson(deps, extendJson, c);

  r.post('/v1/checkouts', async (req, res) => {
    const merchant = currentMerchant(res);
    const key = req.get('idempotency-key');
    const out = await withIdempotency(
      deps.prisma,
      { merchantId: merchant.id, scope: 'POST /v1/checkouts', key, body: req.body },
      async () => {
        const input = createCheckoutSchema.parse(req.body ?? {});
        const c = await createCheckout(deps, merchant.id, input, key);
        return { status: 201, body: await render(c) };
      },
    );
    if (out.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(out.status).json(out.body);
  });

  r.get('/v1/checkouts', async (req, res) => {
    const q = listCheckoutsSchema.parse(req.query);
    const page = await listCheckouts(deps.prisma, currentMerchant(res).id, q);
    res.json({ object: 'list', data: await Promise.all(page.data.map(render)), has_more: page.hasMore });
  });

  r.get('/v1/checkouts/:id', async (req, res) => {
    res.json(await render(await getCheckout(deps.prisma, String(req.params.id), currentMerchant(res).id)));
  });

  /** Cancels an unpaid checkout: its channel orders are closed at the channel first. */
  r.post('/v1/checkouts/:id/close', async (req, res) => {
    const merchant = currentMerchant(res);
    const c = await getCheckout(deps.prisma, String(req.params.id), merchant.id);
    const outcome = await closeCheckout(deps, c.id, 'closed');
    if (outcome !== 'closed') {
      const now = await getCheckout(deps.prisma, c.id, merchant.id);
      throw new AppError('CHECKOUT_NOT_OPEN', `Checkout is ${effectiveStatus(now, deps.now())} and cannot be closed`);
    }
    res.json(await render(await getCheckout(deps.prisma, c.id, merchant.id)));
  });

  return r;
}

/** What GET /v1/checkouts/{id} answers: the core JSON plus every module's section (split, refunds). Also the data.object of checkout.* events. */
export async function renderCheckoutJson(deps: Pick<AppDeps, 'config' | 'now'>, extendJson: CheckoutJsonExtension[], c: CheckoutWithOrders): Promise<Record<string, unknown>> {
  const json: Record<string, unknown> = toCheckoutJson(deps.config, c, deps.now());
  for (const ext of extendJson) Object.assign(json, await ext(c));
  return json;
}

/** Lets other modules (splits) add sections to the checkout JSON without checkout knowing them. */
export type CheckoutJsonExtension = (c: Awaited<ReturnType<typeof getCheckout>>) => Promise<Record<string, unknown>>;
