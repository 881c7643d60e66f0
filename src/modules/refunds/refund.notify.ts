import { fail, takeNotify, type NotifyAnswer, type NotifyDeps } from '../payments/notify.intake';
import { applyRefundResult } from './refund.apply';

/**
 * Refund notify (退款结果通知, REFUND.SUCCESS | REFUND.ABNORMAL | REFUND.CLOSED), the payment notify's
 * steps: verify + decrypt, keep the raw bytes (notify.intake.ts: a forged one is cut short and
 * rate-limited per source, as a forged payment notify is) → check against our refund → apply once by
 * compare-and-set with its merchant event → 2xx only after the commit. Ten concurrent copies make one
 * transition (the others find the status already moved).
 */
export async function ingestRefundNotify(
  deps: NotifyDeps,
  headers: Record<string, string | string[] | undefined>,
  rawBody: Buffer,
  sourceIp: string,
): Promise<NotifyAnswer> {
  const { prisma, channel, logger } = deps;
  const taken = await takeNotify(deps, {
    kind: 'refund', headers, rawBody, sourceIp,
    parse: () => channel.parseRefundNotify(headers, rawBody),
    outTradeNo: (e) => e.refund.outTradeNo,
  });
  if ('answer' in taken) return taken.answer;
  const { event, logId } = taken;
  // Counted as payment notifies are (kind=refund), a mismatch with its code.
  const setOutcome = (outcome: string, extra: { error?: string } = {}) => {
    taken.count(outcome === 'mismatch' ? `${outcome}:${extra.error?.split(':')[0]}` : outcome);
    return taken.setOutcome(outcome, extra);
  };

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
    await setOutcome('mismatch', { error: `${mismatch}: ${rf.outRefundNo}` });
    return fail(mismatch === 'UNKNOWN_REFUND' ? 404 : 400, mismatch ?? 'UNKNOWN_REFUND');
  }
  try {
    const outcome = await applyRefundResult(prisma, refund.id, rf, deps.now());
    await setOutcome(outcome);
    logger.info({ refundId: refund.id, status: rf.status, outcome }, 'refund notify applied');
    return { status: 204 };
  } catch (err) {
    logger.error({ err, logId }, 'refund notify: could not apply');
    await setOutcome('error', { error: String((err as Error)?.message ?? err).slice(0, 500) });
    return fail(500, 'internal error');
  }
}
