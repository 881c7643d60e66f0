import express, { Router } from 'express';
import type { AppDeps } from '../../app.types';
import { SourceLimiter } from '../../lib/source-limiter';
import { AppError } from '../../lib/errors';
import { channelsOf } from '../merchants/channel-resolver';
import { ingestPaymentNotify } from './payment.notify';

const ACCOUNT_ID = /^acct_[0-9a-z]{20}$/;

/** The notify webhook does almost nothing itself: raw bytes in, the use case's answer out. No auth: the signature is the auth. */
export function paymentNotifyRouter(deps: AppDeps): Router {
  const r = Router();
  const rejectedLimiter = new SourceLimiter(deps.config.NOTIFY_REJECTED_PER_MINUTE, () => deps.now().getTime());
  // inflate: false: WeChat sends plain JSON; a compressed body is 415, not inflated.
  const raw = express.raw({ type: () => true, limit: '64kb', inflate: false });
  const body = (req: express.Request) => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
  const sourceIp = (req: express.Request) => req.ip ?? req.socket.remoteAddress ?? '';
  const send = (res: express.Response, answer: Awaited<ReturnType<typeof ingestPaymentNotify>>) => {
    if (answer.body) res.status(answer.status).json(answer.body);
    else res.status(answer.status).end();
  };
  // The default account (WECHATPAY_* env): the URL existing deployments registered.
  r.post('/notify/wechatpay/transactions', raw, async (req, res) => {
    send(res, await ingestPaymentNotify({ ...deps, rejectedLimiter }, req.headers, body(req), sourceIp(req)));
  });
  // A merchant's own account: verified and decrypted with that account's keys only, and applied only to its orders.
  r.post('/notify/wechatpay/:accountId/transactions', raw, async (req, res) => {
    const accountId = String(req.params.accountId);
    let channel;
    try {
      if (!ACCOUNT_ID.test(accountId)) throw new AppError('NOT_FOUND', 'unknown account');
      channel = await channelsOf(deps).forAccount(accountId);
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
      deps.logger.warn({ accountId }, 'notify for an unknown channel account');
      return res.status(404).json({ code: 'FAIL', message: 'unknown account' });
    }
    send(res, await ingestPaymentNotify({ ...deps, channel, rejectedLimiter }, req.headers, body(req), sourceIp(req), accountId));
  });
  return r;
}
