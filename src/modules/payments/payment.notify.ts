import type { PaymentChannel, PaymentNotifyEvent } from '../../channels/channel';
import { ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import { Prisma, sqlUtc, type PrismaClient } from '../../lib/prisma';
import type { Metrics } from '../../lib/metrics';
import type { SourceLimiter } from '../../lib/source-limiter';
import { applyNotifiedPayment, PaymentMismatch } from './payment.apply';
import { rawExecute } from '../../lib/raw-sql';

/** What WeChat gets back: 2xx means "stored, stop retrying"; anything else makes it retry. */
export interface NotifyAnswer {
  status: number;
  body?: { code: 'FAIL'; message: string };
}

/** How much of a rejected (unauthenticated) notify we keep: enough to see what it was. */
export const REJECTED_BODY_BYTES = 2048;
const REJECTED_HEADER_CHARS = 256;

/** Failures after the signature passed: WeChat sent it, so it is kept whole and never rate-limited. */
const AUTHENTIC_FAILURES = new Set(['DECRYPT_FAILED', 'BAD_NOTIFY']);

const fail = (status: number, message: string): NotifyAnswer => ({ status, body: { code: 'FAIL', message } });

export interface NotifyDeps {
  prisma: PrismaClient;
  channel: PaymentChannel;
  logger: Logger;
  now: () => Date;
  /** Per-source allowance for storing rejected notifies. */
  rejectedLimiter: SourceLimiter;
  metrics?: Metrics;
}

/**
 * Payment notify, in named steps: verify + decrypt (channel; tens of microseconds, before any write)
 * → keep the raw bytes → check against our order and apply once (with its outbox row) → acknowledge.
 * A verified notify is stored before we answer 2xx, and answered 5xx when it cannot be; a rejected
 * one is stored cut short, rate-limited per source, and purged after a short retention.
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
  const logId = newId('ntf');
  const count = (outcome: string) => (deps.metrics?.notifies.inc({ kind: 'payment', outcome }), true);
  // Raw: on every payment's path, where the typed create cost ~0.3 ms more CPU per notify (docs/performance.md).
  const store = (outcome: string, body: string, hdrs: Record<string, string>, extra: { error?: string; eventId?: string; outTradeNo?: string } = {}) =>
    rawExecute(prisma, Prisma.sql`INSERT INTO notify_logs (id, channel, kind, received_at, headers, body, outcome, error, event_id, out_trade_no, source_ip, body_bytes)
      VALUES (${logId}, ${channel.name}, 'payment', ${sqlUtc(deps.now())}, ${JSON.stringify(hdrs)}::jsonb, ${body}, ${outcome},
              ${extra.error ?? null}, ${extra.eventId ?? null}, ${extra.outTradeNo ?? null}, ${sourceIp}, ${rawBody.length})`);

  // 1. Verify the signature over the raw bytes, then decrypt. Probes (WECHATPAY/SIGNTEST/) fail here.
  let event: PaymentNotifyEvent;
  try {
    event = channel.parsePaymentNotify(headers, rawBody);
  } catch (err) {
    const code = err instanceof ChannelError ? err.code : 'BAD_NOTIFY';
    if (AUTHENTIC_FAILURES.has(code)) {
      // Signed by WeChat but unusable (e.g. a wrong APIv3 key): keep it whole, WeChat will retry.
      logger.error({ code, logId }, 'notify: signed by WeChat but not decryptable or not understood');
      count(`invalid:${code}`);
      await store('invalid', keepText(rawBody), pickHeaders(headers), { error: code }).catch((e: unknown) => logger.warn({ err: e, logId }, 'notify: not recorded'));
      return fail(400, code);
    }
    count(`rejected:${code}`);
    return rejectUnauthenticated(deps, { logId, code, headers, rawBody, sourceIp, store });
  }

  // 2. Audit: a verified notify is stored before anything else; if we cannot, WeChat must retry.
  const tx = event.transaction;
  try {
    await store('received', keepText(rawBody), pickHeaders(headers), { eventId: event.eventId, outTradeNo: tx.outTradeNo });
  } catch (err) {
    logger.error({ err }, 'notify: cannot store a verified notify');
    return fail(500, 'storage unavailable');
  }
  const setOutcome = (outcome: string, extra: { error?: string } = {}) =>
    count(outcome) && prisma.notifyLog.update({ where: { id: logId }, data: { outcome, ...extra } }).catch((err: unknown) => logger.warn({ err, logId }, 'notify: outcome not recorded'));

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

/**
 * A notify that failed verification: anyone can send these, so they never cost more than a small
 * row, and past the per-source allowance not even that (counted and answered 429). Whatever
 * happens to the row, the answer is 4xx: an unauthenticated request never earns a 5xx.
 */
async function rejectUnauthenticated(
  deps: NotifyDeps,
  a: { logId: string; code: string; headers: Record<string, string | string[] | undefined>; rawBody: Buffer; sourceIp: string; store: (outcome: string, body: string, hdrs: Record<string, string>, extra: { error?: string }) => Promise<unknown> },
): Promise<NotifyAnswer> {
  const { logger } = deps;
  if (!deps.rejectedLimiter.take(a.sourceIp)) {
    logger.debug({ code: a.code, sourceIp: a.sourceIp, limited: deps.rejectedLimiter.totals.limited }, 'notify: rejected, over the per-source allowance, not stored');
    return fail(429, 'too many rejected notifies');
  }
  logger.warn({ code: a.code, logId: a.logId, sourceIp: a.sourceIp, bytes: a.rawBody.length }, 'notify: rejected before decryption');
  await a.store('rejected', keepText(a.rawBody.subarray(0, REJECTED_BODY_BYTES)), pickHeaders(a.headers, REJECTED_HEADER_CHARS), { error: a.code })
    .catch((err: unknown) => logger.warn({ err, logId: a.logId }, 'notify: rejected notify not recorded'));
  return fail(401, a.code);
}

/** PostgreSQL text cannot hold NUL: keep it visible as the JSON escape it would be. */
function keepText(b: Buffer): string {
  return b.toString('utf8').replace(/\u0000/g, '\\u0000');
}

export function pickHeaders(h: Record<string, string | string[] | undefined>, maxChars = 4096): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (/^(wechatpay-|content-type|user-agent|request-id)/i.test(k) && v !== undefined)
      out[k.toLowerCase()] = (Array.isArray(v) ? v.join(',') : v).slice(0, maxChars).replace(/\u0000/g, '');
  return out;
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
        ? await prisma.$executeRaw`DELETE FROM notify_logs WHERE id IN (SELECT id FROM notify_logs WHERE outcome = 'rejected' AND received_at < ${before} LIMIT ${batch})`
        : await prisma.$executeRaw`DELETE FROM notify_logs WHERE id IN (SELECT id FROM notify_logs WHERE outcome <> 'rejected' AND received_at < ${before} LIMIT ${batch})`;
      total += n;
      if (n < batch) return total;
    }
  };
  return { rejected: await purge('rejected', rejectedBefore), verified: await purge('verified', verifiedBefore) };
}
