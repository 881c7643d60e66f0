import express, { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { ingestPaymentNotify } from './payment.notify';

/** The notify webhook does almost nothing itself: raw bytes in, the use case's answer out. No auth: the signature is the auth. */
export function paymentNotifyRouter(deps: AppDeps): Router {
  const r = Router();
  r.post('/notify/wechatpay/transactions', express.raw({ type: () => true, limit: '64kb' }), async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await ingestPaymentNotify(deps, req.headers, raw);
    if (answer.body) res.status(answer.status).json(answer.body);
    else res.status(answer.status).end();
  });
  return r;
}
