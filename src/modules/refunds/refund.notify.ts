import type { PaymentChannel } from '../../channels/channel';
import { ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import type { Metrics } from '../../lib/metrics';
import type { PrismaClient } from '../../lib/prisma';
import { pickHeaders, type NotifyAnswer } from '../payments/payment.notify';
import { applyRefundResult } from './refund.apply';

const fail = (status: number, message: string): NotifyAnswer => ({ status, body: { code: 'FAIL', message } });

/**
 * Refund notify (退款结果通知, REFUND.SUCCESS | REFUND.ABNORMAL | REFUND.CLOSED), the payment notify's
 * steps: keep the raw bytes → verify + decrypt (channel) → check against our refund → apply once by
 * compare-and-set with its merchant event → 2xx only after the commit. Ten concurrent copies make one
 * transition (the others find the status already moved).
 */
export async function ingestRefundNotify(
  deps: { prisma: PrismaClient; channel: PaymentChannel; logger: Logger; now: () => Date; metrics?: Metrics },
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer,
): Promise<NotifyAnswer> {
  const { prisma, channel, logger } = deps;
  const logId = newId('ntf');
  try {
    await prisma.notifyLog.create({
      data: { id: logId, channel: channel.name, kind: 'refund', headers: pickHeaders(headers), body: rawBody.toString('utf8'), outcome: 'received' },
    });
  } catch (err) {
    logger.error({ err }, 'refund notify: cannot store raw notify');
    return fail(500, 'storage unavailable');
  }
  // Metrics as for payment notifies (kind=refund): the outcome, with the code of a rejection or mismatch.
  const setOutcome = (outcome: string, extra: { error?: string; eventId?: string; outTradeNo?: string } = {}) => {
    deps.metrics?.notifies.inc({ kind: 'refund', outcome: ['rejected', 'mismatch'].includes(outcome) ? `${outcome}:${extra.error?.split(':')[0]}` : outcome });
    return prisma.notifyLog.update({ where: { id: logId }, data: { outcome, ...extra } }).catch((err: unknown) => logger.warn({ err, logId }, 'refund notify: outcome not recorded'));
  };

  let event;
  try {
    event = channel.parseRefundNotify(headers, rawBody);
  } catch (err) {
    const code = err instanceof ChannelError ? err.code : 'BAD_NOTIFY';
    logger.warn({ code, logId }, 'refund notify: rejected before decryption');
    await setOutcome('rejected', { error: code });
    return fail(code === 'DECRYPT_FAILED' || code === 'BAD_NOTIFY' ? 400 : 401, code);
  }
  const rf = event.refund;
  const refund = await prisma.refund.findUnique({ where: { channelRefundNo: rf.outRefundNo } });
  const mismatch = !refund
    ? 'UNKNOWN_REFUND'
    : event.mchid !== undefined && event.mchid !== channel.mchid
      ? 'MCHID_MISMATCH'
      : // A partner account's refund must be its own sub-merchant's (another sub-merchant of the same SP shares the keys).
        channel.partner && event.subMchid !== channel.partner.subMchid
        ? 'SUB_MCHID_MISMATCH'
      : rf.refundFen !== undefined && rf.refundFen !== refund.amountFen
        ? 'AMOUNT_MISMATCH'
        : null;
  if (mismatch || !refund) {
    logger.error({ code: mismatch, outRefundNo: rf.outRefundNo, logId }, 'refund notify does not match our refund');
    await setOutcome('mismatch', { eventId: event.eventId, outTradeNo: rf.outTradeNo, error: `${mismatch}: ${rf.outRefundNo}` });
    return fail(mismatch === 'UNKNOWN_REFUND' ? 404 : 400, mismatch ?? 'UNKNOWN_REFUND');
  }
  try {
    const outcome = await applyRefundResult(prisma, refund.id, rf, deps.now());
    await setOutcome(outcome, { eventId: event.eventId, outTradeNo: rf.outTradeNo });
    logger.info({ refundId: refund.id, status: rf.status, outcome }, 'refund notify applied');
    return { status: 204 };
  } catch (err) {
    logger.error({ err, logId }, 'refund notify: could not apply');
    await setOutcome('error', { eventId: event.eventId, error: String((err as Error)?.message ?? err).slice(0, 500) });
    return fail(500, 'internal error');
  }
}
