import express, { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import { fenToYuan } from '../../lib/money';
import { demoWebhooksRouter } from './demo.webhooks';
import { SANDBOX_MERCHANT_ID } from '../merchants/merchant.service';
import { SANDBOX_PARTNER_MERCHANT_ID } from '../merchants/sandbox.seed';
import { createCheckoutSchema } from '../checkout/checkout.schemas';
import { checkoutUrl, createCheckout, effectiveStatus, splitLimitsOf } from '../checkout/checkout.service';
import { createRefundSchema } from '../refunds/refund.schemas';
import { createRefund } from '../refunds/refund.service';
import { splitBudget } from '../splits/split.rules';

/** The demo receiver's share of a planned split: 10%, at least 1 fen. */
const demoShare = (amount: number) => Math.max(1, Math.floor(amount * 0.1));

/** A page error in the shopper's language: the demo shop is a page, not the API. */
function pageMessage(err: unknown): string {
  if (err instanceof AppError && err.code === 'VALIDATION_FAILED' && /[\u4e00-\u9fff]/.test(err.message)) return err.message;
  if (err instanceof AppError) return `无法创建订单（${err.code}），请检查输入后重试`;
  return '输入不正确，请检查商品描述和金额';
}

/** Sandbox-only demo shop at `/`: create a checkout from a form and watch it get paid. */
export function demoRouter(deps: AppDeps): Router {
  const r = Router();
  const base = { title: '演示商店 Demo shop', sandbox: true };
  const budget = (amount: number) => splitBudget(amount, splitLimitsOf(deps.config));

  const list = async () =>
    (
      await deps.prisma.checkout.findMany({
        where: { merchantId: { in: [SANDBOX_MERCHANT_ID, SANDBOX_PARTNER_MERCHANT_ID] } },
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

  r.use(demoWebhooksRouter(deps));
  r.get('/', async (_req, res) => res.render('demo/shop', { base, checkouts: await list() }));

  r.post('/demo/checkouts', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const form = {
      description: String(req.body?.description ?? '').trim(),
      amount: String(req.body?.amount ?? '').trim(),
      profitSharing: req.body?.profitSharing === 'planned' ? 'planned' : 'off',
    };
    try {
      if (!/^\d{1,7}(\.\d{1,2})?$/.test(form.amount)) throw new AppError('VALIDATION_FAILED', '金额格式不正确，例如 1.00（最多两位小数）');
      const amount = yuanToFen(form.amount);
      if (amount < 1) throw new AppError('VALIDATION_FAILED', '金额至少为 0.01 元');
      const split = form.profitSharing === 'planned';
      if (split && demoShare(amount) > budget(amount)) {
        let min = amount;
        while (demoShare(min) > budget(min)) min += 1;
        throw new AppError('VALIDATION_FAILED', `金额太小，无法预设分账：可分账金额最多为订单金额的 ${Math.round(deps.config.PROFIT_SHARING_MAX_RATIO * 100)}%，请至少输入 ${fenToYuan(min)} 元`);
      }
      const input = createCheckoutSchema.parse({
        out_trade_no: newId('demo', 16),
        amount,
        description: form.description || '演示商品',
        // After paying, the result page links back here.
        return_url: `${deps.config.PUBLIC_BASE_URL}/`,
        ...(split
          ? { profit_sharing: { receivers: [{ type: 'PERSONAL_OPENID', account: 'o_demo_receiver_openid_0001', amount: demoShare(amount), description: '演示分账' }] } }
          : {}),
      });
      // The demo shop can sell as either sandbox merchant: direct, or a service provider's sub-merchant.
      const merchantId = req.body?.merchant === 'partner' ? SANDBOX_PARTNER_MERCHANT_ID : SANDBOX_MERCHANT_ID;
      const c = await createCheckout(deps, merchantId, input);
      res.redirect(303, `/checkout/${c.id}`);
    } catch (err) {
      if (!(err instanceof AppError) && !(err instanceof Error && err.name === 'ZodError')) throw err;
      res.status(400).render('demo/shop', { base, checkouts: await list(), error: pageMessage(err), form });
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
