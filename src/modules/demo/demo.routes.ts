import express, { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import { fenToYuan } from '../../lib/money';
import { SANDBOX_MERCHANT_ID } from '../merchants/merchant.service';
import { SANDBOX_PARTNER_MERCHANT_ID } from '../merchants/sandbox.seed';
import { createCheckoutSchema } from '../checkout/checkout.schemas';
import { checkoutUrl, createCheckout, effectiveStatus } from '../checkout/checkout.service';

/** Sandbox-only demo shop at `/`: create a checkout from a form and watch it get paid. */
export function demoRouter(deps: AppDeps): Router {
  const r = Router();
  const base = { title: '演示商店 Demo shop', sandbox: true };

  const list = async () =>
    (await deps.prisma.checkout.findMany({ where: { merchantId: { in: [SANDBOX_MERCHANT_ID, SANDBOX_PARTNER_MERCHANT_ID] } }, orderBy: { createdAt: 'desc' }, take: 10 })).map((c) => ({
      id: c.id,
      description: c.description,
      amountYuan: fenToYuan(c.amountFen),
      status: effectiveStatus(c, deps.now()),
      checkoutUrl: checkoutUrl(deps.config, c.id),
      createdAt: c.createdAt.toISOString(),
    }));

  r.get('/', async (_req, res) => res.render('demo/shop', { base, checkouts: await list() }));

  r.post('/demo/checkouts', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const yuan = String(req.body?.amount ?? '').trim();
    try {
      if (!/^\d{1,7}(\.\d{1,2})?$/.test(yuan)) throw new AppError('VALIDATION_FAILED', '金额格式不正确 (e.g. 0.01)');
      const [whole, frac = ''] = yuan.split('.');
      const amount = Number(whole) * 100 + Number(frac.padEnd(2, '0'));
      const split = req.body?.profitSharing === 'planned';
      const input = createCheckoutSchema.parse({
        out_trade_no: newId('demo', 16),
        amount,
        description: String(req.body?.description ?? '').trim() || '演示商品',
        ...(split
          ? { profit_sharing: { receivers: [{ type: 'PERSONAL_OPENID', account: 'o_demo_receiver_openid_0001', amount: Math.max(1, Math.floor(amount * 0.1)), description: '演示分账' }] } }
          : {}),
      });
      // The demo shop can sell as either sandbox merchant: direct, or a service provider's sub-merchant.
      const merchantId = req.body?.merchant === 'partner' ? SANDBOX_PARTNER_MERCHANT_ID : SANDBOX_MERCHANT_ID;
      const c = await createCheckout(deps, merchantId, input);
      res.redirect(303, `/checkout/${c.id}`);
    } catch (err) {
      if (!(err instanceof AppError) && !(err instanceof Error && err.name === 'ZodError')) throw err;
      res.status(400).render('demo/shop', { base, checkouts: await list(), error: err instanceof AppError ? err.message : '输入不正确' });
    }
  });
  return r;
}
