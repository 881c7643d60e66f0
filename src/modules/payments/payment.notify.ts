import type { PrismaClient } from '../../lib/prisma';
import { fail, takeNotify, type NotifyAnswer, type NotifyDeps } from './notify.intake';
import { applyNotifiedPayment, PaymentMismatch } from './payment.apply';

/**
 * Payment notify, in named steps: verify + decrypt, keep the raw bytes (notify.intake.ts) → check
 * against our order and apply once (with its outbox row) → acknowledge.
 * https://pay.weixin.qq.com/doc/v3/merchant/4012791861 (支付成功回调通知)
 */
export async function ingestPaymentNotify(
  deps: NotifyDeps,
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer,
  sourceIp: string,
  /** The channel account whose notify URL this came to (`channel` is its channel); undefined = the default URL. */
  accountId: string | null = null,
): Promise<NotifyAnswer> {
  const { prisma, channel, logger } = deps;
  const taken = await takeNotify(deps, {
    kind: 'payment', headers, rawBody, sourceIp,
    parse: () => channel.parsePaymentNotify(headers, rawBody),
    outTradeNo: (e) => e.transaction.outTradeNo,
  });
  if ('answer' in taken) return taken.answer;
  const { event, logId, count } = taken;
  const tx = event.transaction;
  const setOutcome = (outcome: string, extra: { error?: string } = {}) => (count(outcome), taken.setOutcome(outcome, extra));

  if (event.eventType !== 'TRANSACTION.SUCCESS') {
    await setOutcome('ignored', { error: event.eventType });
    return { status: 204 };
  }

  // 3. Check against our order and apply exactly once (the outcome is written by the same statement when it applies).
  try {
    const { outcome, checkoutId, outcomeStored } = await applyNotifiedPayment(prisma, channel.name, tx, deps.now(), accountId, logId);
    if (outcomeStored) count(outcome);
    else await setOutcome(outcome);
    if (outcome === 'applied') deps.metrics?.checkoutsPaid.inc({ trade_type: tx.tradeType });
    if (outcome === 'double_payment') logger.error({ checkoutId, transactionId: tx.transactionId }, 'checkout paid twice: refund needed');
    else logger.info({ checkoutId, outcome, transactionId: tx.transactionId }, 'payment notify applied');
    return { status: 204 };
  } catch (err) {
    if (err instanceof PaymentMismatch) {
      logger.error({ code: err.code, outTradeNo: tx.outTradeNo, logId }, `notify does not match our order: ${err.message}`);
      await setOutcome('mismatch', { error: `${err.code}: ${err.message}` });
      return fail(err.code === 'UNKNOWN_ORDER' ? 404 : 400, err.code);
    }
    logger.error({ err, logId }, 'notify: could not apply');
    await setOutcome('error', { error: String((err as Error)?.message ?? err).slice(0, 500) });
    return fail(500, 'internal error');
  }
}

/** Retention: verified notifies for NOTIFY_RETENTION_DAYS, rejected ones for NOTIFY_REJECTED_RETENTION_DAYS. */
export async function purgeNotifyLogs(
  prisma: PrismaClient,
  policy: { retentionDays: number; rejectedRetentionDays: number },
  now: Date,
  batch = 5000,
): Promise<{ rejected: number; verified: number }> {
  const day = 86_400_000;
  const rejectedBefore = new Date(now.getTime() - policy.rejectedRetentionDays * day);
  const verifiedBefore = new Date(now.getTime() - policy.retentionDays * day);
  // Small batches: a purge after a flood must not hold a long lock or a huge transaction.
  const purge = async (where: 'rejected' | 'verified', before: Date) => {
    let total = 0;
    for (;;) {
      const n = where === 'rejected'
        ? // A rejected notify was never decrypted, so it has no event id: notify_logs_unverified_received_at_idx lists those only.
          await prisma.$executeRaw`DELETE FROM notify_logs WHERE id IN (SELECT id FROM notify_logs WHERE outcome = 'rejected' AND event_id IS NULL AND received_at < ${before} LIMIT ${batch})`
        : // Everything the rejected purge does not take (its exact complement), so no row outlives both.
          await prisma.$executeRaw`DELETE FROM notify_logs WHERE id IN (SELECT id FROM notify_logs WHERE NOT (outcome = 'rejected' AND event_id IS NULL) AND received_at < ${before} LIMIT ${batch})`;
      total += n;
      if (n < batch) return total;
    }
  };
  return { rejected: await purge('rejected', rejectedBefore), verified: await purge('verified', verifiedBefore) };
}
