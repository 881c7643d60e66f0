import type { PaymentChannel } from '../../channels/channel';
import { ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import type { PrismaClient } from '../../lib/prisma';
import { applyPaidTransaction, PaymentMismatch } from './payment.apply';

/** What WeChat gets back: 2xx means "stored, stop retrying"; anything else makes it retry. */
export interface NotifyAnswer {
  status: number;
  body?: { code: 'FAIL'; message: string };
}

const fail = (status: number, message: string): NotifyAnswer => ({ status, body: { code: 'FAIL', message } });

/**
 * Payment notify, in named steps: keep the raw bytes → verify + decrypt (channel) → check against our
 * order and apply once (with its outbox row) → acknowledge. We answer 2xx only after the commit.
 * https://pay.weixin.qq.com/doc/v3/merchant/4012791861 (支付成功回调通知)
 */
export async function ingestPaymentNotify(
  deps: { prisma: PrismaClient; channel: PaymentChannel; logger: Logger; now: () => Date },
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer,
  /** The channel account whose notify URL this came to (`channel` is its channel); undefined = the default URL. */
  accountId: string | null = null,
): Promise<NotifyAnswer> {
  const { prisma, channel, logger } = deps;
  const logId = newId('ntf');

  // 1. Audit first: if we cannot even store the raw notify, WeChat must retry.
  try {
    await prisma.notifyLog.create({
      data: { id: logId, channel: channel.name, kind: 'payment', headers: pickHeaders(headers), body: rawBody.toString('utf8'), outcome: 'received' },
    });
  } catch (err) {
    logger.error({ err }, 'notify: cannot store raw notify');
    return fail(500, 'storage unavailable');
  }
  const setOutcome = (outcome: string, extra: { error?: string; eventId?: string; outTradeNo?: string } = {}) =>
    prisma.notifyLog.update({ where: { id: logId }, data: { outcome, ...extra } }).catch((err: unknown) => logger.warn({ err, logId }, 'notify: outcome not recorded'));

  // 2. Verify the signature over the raw bytes, then decrypt. Probes (WECHATPAY/SIGNTEST/) fail here.
  let event;
  try {
    event = channel.parsePaymentNotify(headers, rawBody);
  } catch (err) {
    const code = err instanceof ChannelError ? err.code : 'BAD_NOTIFY';
    logger.warn({ code, logId }, 'notify: rejected before decryption');
    await setOutcome('rejected', { error: code });
    return fail(code === 'DECRYPT_FAILED' || code === 'BAD_NOTIFY' ? 400 : 401, code);
  }
  const tx = event.transaction;
  if (event.eventType !== 'TRANSACTION.SUCCESS') {
    await setOutcome('ignored', { eventId: event.eventId, outTradeNo: tx.outTradeNo, error: event.eventType });
    return { status: 204 };
  }

  // 3. Check against our order and apply exactly once.
  try {
    const { outcome, checkoutId } = await applyPaidTransaction(prisma, channel.name, tx, deps.now(), accountId);
    await setOutcome(outcome, { eventId: event.eventId, outTradeNo: tx.outTradeNo });
    if (outcome === 'double_payment') logger.error({ checkoutId, transactionId: tx.transactionId }, 'checkout paid twice: refund needed');
    else logger.info({ checkoutId, outcome, transactionId: tx.transactionId }, 'payment notify applied');
    return { status: 204 };
  } catch (err) {
    if (err instanceof PaymentMismatch) {
      logger.error({ code: err.code, outTradeNo: tx.outTradeNo, logId }, `notify does not match our order: ${err.message}`);
      await setOutcome('mismatch', { eventId: event.eventId, outTradeNo: tx.outTradeNo, error: `${err.code}: ${err.message}` });
      return fail(err.code === 'UNKNOWN_ORDER' ? 404 : 400, err.code);
    }
    logger.error({ err, logId }, 'notify: could not apply');
    await setOutcome('error', { eventId: event.eventId, outTradeNo: tx.outTradeNo, error: String((err as Error)?.message ?? err).slice(0, 500) });
    return fail(500, 'internal error');
  }
}

function pickHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (/^(wechatpay-|content-type|user-agent|request-id)/i.test(k) && v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return out;
}
