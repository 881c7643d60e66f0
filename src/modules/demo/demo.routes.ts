import express, { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import { fenToYuan } from '../../lib/money';
import { SANDBOX_MERCHANT_ID } from '../merchants/merchant.service';
import { createCheckoutSchema } from '../checkout/checkout.schemas';
import { checkoutUrl, createCheckout, effectiveStatus } from '../checkout/checkout.service';
import { createRefundSchema } from '../refunds/refund.schemas';
import { createRefund } from '../refunds/refund.service';

/** Sandbox-only demo shop at `/`: create a checkout from a form and watch it get paid. */
export function demoRouter(deps: AppDeps): Router {
  const r = Router();
  const base = { title: '演示商店 Demo shop', sandbox: true };

  const list = async () =>
    (
      await deps.prisma.checkout.findMany({
        where: { merchantId: SANDBOX_MERCHANT_ID },
        orderBy: { createdAt: 'desc' },
        take: 10,
        include: { refunds: { orderBy: { seq: 'desc' }, take: 1 } },
      })
    ).map((c) => ({
      id: c.id,
      description: c.description,
      amountYuan: fenToYuan(c.amountFen),
      status: effectiveStatus(c, deps.now()),
      checkoutUrl: checkoutUrl(deps.config, c.id),
      createdAt: c.createdAt.toISOString(),
      refundableYuan: c.status === 'paid' && c.paidTotalFen !== null ? fenToYuan(c.paidTotalFen - c.refundedFen) : null,
      lastRefund: c.refunds[0] ? { status: c.refunds[0].status, amountYuan: fenToYuan(c.refunds[0].amountFen), reason: c.refunds[0].failureReason } : null,
    }));

  r.get('/', async (_req, res) => res.render('demo/shop', { base, checkouts: await list() }));

  r.post('/demo/checkouts', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const yuan = String(req.body?.amount ?? '').trim();
    try {
      const amount = yuanToFen(yuan);
      const split = req.body?.profitSharing === 'planned';
      const input = createCheckoutSchema.parse({
        out_trade_no: newId('demo', 16),
        amount,
        description: String(req.body?.description ?? '').trim() || '演示商品',
        ...(split
          ? { profit_sharing: { receivers: [{ type: 'PERSONAL_OPENID', account: 'o_demo_receiver_openid_0001', amount: Math.max(1, Math.floor(amount * 0.1)), description: '演示分账' }] } }
          : {}),
      });
      const c = await createCheckout(deps, SANDBOX_MERCHANT_ID, input);
      res.redirect(303, `/checkout/${c.id}`);
    } catch (err) {
      if (!(err instanceof AppError) && !(err instanceof Error && err.name === 'ZodError')) throw err;
      res.status(400).render('demo/shop', { base, checkouts: await list(), error: err instanceof AppError ? err.message : '输入不正确' });
    }
  });
  /** The refund button of a paid checkout: the same use case as POST /v1/checkouts/{id}/refunds. */
  r.post('/demo/checkouts/:id/refunds', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    try {
      const input = createRefundSchema.parse({ amount: yuanToFen(String(req.body?.amount ?? '')), reason: '演示退款', split_return: 'proportional' });
      await createRefund(deps, SANDBOX_MERCHANT_ID, String(req.params.id), input, newId('demo_refund'));
      res.redirect(303, '/');
    } catch (err) {
      if (!(err instanceof AppError) && !(err instanceof Error && err.name === 'ZodError')) throw err;
      res.status(err instanceof AppError ? err.status : 400).render('demo/shop', { base, checkouts: await list(), error: err instanceof AppError ? `退款失败：${err.message}` : '退款金额不正确' });
    }
  });
  return r;
}

function yuanToFen(yuan: string): number {
  const v = yuan.trim();
  if (!/^\d{1,7}(\.\d{1,2})?$/.test(v)) throw new AppError('VALIDATION_FAILED', '金额格式不正确 (e.g. 0.01)');
  const [whole, frac = ''] = v.split('.');
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'));
}
