import { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { SourceLimiter } from '../../lib/source-limiter';
import { notifyAccountChannel, notifyBytes, notifySourceIp, rawNotifyBody, sendNotifyAnswer } from './notify.http';
import { ingestPaymentNotify } from './payment.notify';

/** The notify webhook does almost nothing itself: raw bytes in, the use case's answer out. No auth: the signature is the auth. */
export function paymentNotifyRouter(deps: AppDeps): Router {
  const r = Router();
  const rejectedLimiter = new SourceLimiter(deps.config.NOTIFY_REJECTED_PER_MINUTE, () => deps.now().getTime());
  // The default account (WECHATPAY_* env): the URL existing deployments registered.
  r.post('/notify/wechatpay/transactions', rawNotifyBody, async (req, res) => {
    sendNotifyAnswer(res, await ingestPaymentNotify({ ...deps, rejectedLimiter }, req.headers, notifyBytes(req), notifySourceIp(req)));
  });
  // A merchant's own account: verified and decrypted with that account's keys only, and applied only to its orders.
  r.post('/notify/wechatpay/:accountId/transactions', rawNotifyBody, async (req, res) => {
    const accountId = String(req.params.accountId);
    const channel = await notifyAccountChannel(deps, accountId, res);
    if (!channel) return;
    sendNotifyAnswer(res, await ingestPaymentNotify({ ...deps, channel, rejectedLimiter }, req.headers, notifyBytes(req), notifySourceIp(req), accountId));
  });
  return r;
}
