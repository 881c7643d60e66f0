import express, { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { SourceLimiter } from '../../lib/source-limiter';
import { ingestPaymentNotify } from './payment.notify';

/** The notify webhook does almost nothing itself: raw bytes in, the use case's answer out. No auth: the signature is the auth. */
export function paymentNotifyRouter(deps: AppDeps): Router {
  const r = Router();
  const rejectedLimiter = new SourceLimiter(deps.config.NOTIFY_REJECTED_PER_MINUTE, () => deps.now().getTime());
  // inflate: false: WeChat sends plain JSON; a compressed body is 415, not inflated.
  r.post('/notify/wechatpay/transactions', express.raw({ type: () => true, limit: '64kb', inflate: false }), async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await ingestPaymentNotify({ ...deps, rejectedLimiter }, req.headers, raw, req.ip ?? req.socket.remoteAddress ?? '');
    if (answer.body) res.status(answer.status).json(answer.body);
    else res.status(answer.status).end();
  });
  return r;
}
