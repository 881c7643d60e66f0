/**
 * The HTTP side shared by WeChat's notify routes (payments and refunds): raw bytes in (the signature
 * is over them), the use case's answer out, and the per-account URLs' account lookup.
 */
import express from 'express';
import type { AppDeps } from '../../app.types';
import type { PaymentChannel } from '../../channels/channel';
import { AppError } from '../../lib/errors';
import { channelsOf } from '../merchants/channel-resolver';

// inflate: false: WeChat sends plain JSON; a compressed body is 415, not inflated.
export const rawNotifyBody = express.raw({ type: () => true, limit: '64kb', inflate: false });

export const notifyBytes = (req: express.Request): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

/** Who sent it (behind the trusted proxy, the client it names): the per-source allowance for forged notifies. */
export const notifySourceIp = (req: { ip?: string; socket: { remoteAddress?: string } }): string => req.ip ?? req.socket.remoteAddress ?? '';

export function sendNotifyAnswer(res: express.Response, answer: { status: number; body?: object }): void {
  if (answer.body) res.status(answer.status).json(answer.body);
  else res.status(answer.status).end();
}

const ACCOUNT_ID = /^acct_[0-9a-z]{20}$/;

/**
 * The channel of `/notify/wechatpay/{accountId}/…`, or null after answering 404 for an unknown or
 * malformed account id. Other failures (the database down) propagate: a 5xx makes WeChat retry.
 */
export async function notifyAccountChannel(deps: AppDeps, accountId: string, res: express.Response): Promise<PaymentChannel | null> {
  try {
    if (!ACCOUNT_ID.test(accountId)) throw new AppError('NOT_FOUND', 'unknown account');
    return await channelsOf(deps).forAccount(accountId);
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'NOT_FOUND')) throw err;
    deps.logger.warn({ accountId }, 'notify for an unknown channel account');
    res.status(404).json({ code: 'FAIL', message: 'unknown account' });
    return null;
  }
}
