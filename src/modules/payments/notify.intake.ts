/**
 * What WeChat's payment and refund notifies share before their use cases: verify + decrypt (the
 * channel; tens of microseconds, before any write), then keep the raw bytes. A verified notify is
 * stored whole before we answer 2xx, and answered 5xx when it cannot be; one signed by WeChat but
 * unusable is kept whole and answered 400; one that fails verification (anyone can send those) is
 * stored cut short, rate-limited per source, answered 4xx whatever happens to its row, and purged
 * after a short retention (NOTIFY_REJECTED_RETENTION_DAYS).
 */
import type { PaymentChannel } from '../../channels/channel';
import { ChannelError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { Logger } from '../../lib/logger';
import type { Metrics } from '../../lib/metrics';
import { Prisma, sqlUtc, type PrismaClient } from '../../lib/prisma';
import { rawExecute } from '../../lib/raw-sql';
import type { SourceLimiter } from '../../lib/source-limiter';

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

export const fail = (status: number, message: string): NotifyAnswer => ({ status, body: { code: 'FAIL', message } });

export interface NotifyDeps {
  prisma: PrismaClient;
  channel: PaymentChannel;
  logger: Logger;
  now: () => Date;
  /** Per-source allowance for storing rejected notifies (one per notify route). */
  rejectedLimiter: SourceLimiter;
  metrics?: Metrics;
}

export type NotifyKind = 'payment' | 'refund';

/** A verified notify, stored: its event, its log row, and the row's outcome to write when known. */
export interface TakenNotify<E> {
  event: E;
  logId: string;
  /** Counts `outcome` in gateway_notifies_total{kind} (the caller's use case names it). */
  count(outcome: string): void;
  /** Writes the log row's outcome; a failure is logged, never thrown (the notify's answer stands). */
  setOutcome(outcome: string, extra?: { error?: string }): Promise<unknown>;
}

/**
 * Verify + decrypt with `parse`, then store: `{ answer }` when the notify ends here (refused, or not
 * storable), else the stored notify for the use case.
 */
export async function takeNotify<E extends { eventId: string }>(
  deps: NotifyDeps,
  n: {
    kind: NotifyKind;
    headers: Record<string, string | string[] | undefined>;
    rawBody: Buffer;
    sourceIp: string;
    parse: () => E;
    /** The out_trade_no a verified notify names, stored with it (the console finds notifies by it). */
    outTradeNo: (event: E) => string | undefined;
  },
): Promise<{ answer: NotifyAnswer } | TakenNotify<E>> {
  const { prisma, channel, logger } = deps;
  const logId = newId('ntf');
  const count = (outcome: string) => void deps.metrics?.notifies.inc({ kind: n.kind, outcome });
  // Raw: on every payment's path, where the typed create cost ~0.3 ms more CPU per notify (docs/performance.md).
  const store = (outcome: string, body: string, hdrs: Record<string, string>, extra: { error?: string; eventId?: string; outTradeNo?: string } = {}) =>
    rawExecute(prisma, Prisma.sql`INSERT INTO notify_logs (id, channel, kind, received_at, headers, body, outcome, error, event_id, out_trade_no, source_ip, body_bytes)
      VALUES (${logId}, ${channel.name}, ${n.kind}, ${sqlUtc(deps.now())}, ${JSON.stringify(hdrs)}::jsonb, ${body}, ${outcome},
              ${extra.error ?? null}, ${extra.eventId ?? null}, ${extra.outTradeNo ?? null}, ${n.sourceIp}, ${n.rawBody.length})`);

  // 1. Verify the signature over the raw bytes, then decrypt. Probes (WECHATPAY/SIGNTEST/) fail here.
  let event: E;
  try {
    event = n.parse();
  } catch (err) {
    const code = err instanceof ChannelError ? err.code : 'BAD_NOTIFY';
    if (AUTHENTIC_FAILURES.has(code)) {
      // Signed by WeChat but unusable (e.g. a wrong APIv3 key): keep it whole, WeChat will retry.
      logger.error({ code, logId, kind: n.kind }, 'notify: signed by WeChat but not decryptable or not understood');
      count(`invalid:${code}`);
      await store('invalid', keepText(n.rawBody), pickHeaders(n.headers), { error: code }).catch((e: unknown) => logger.warn({ err: e, logId }, 'notify: not recorded'));
      return { answer: fail(400, code) };
    }
    count(`rejected:${code}`);
    return { answer: await rejectUnauthenticated(deps, n, { logId, code, store }) };
  }

  // 2. Audit: a verified notify is stored before anything else; if we cannot, WeChat must retry.
  try {
    await store('received', keepText(n.rawBody), pickHeaders(n.headers), { eventId: event.eventId, outTradeNo: n.outTradeNo(event) });
  } catch (err) {
    logger.error({ err, kind: n.kind }, 'notify: cannot store a verified notify');
    return { answer: fail(500, 'storage unavailable') };
  }
  return {
    event,
    logId,
    count,
    setOutcome: (outcome, extra = {}) =>
      prisma.notifyLog.update({ where: { id: logId }, data: { outcome, ...extra } }).catch((err: unknown) => logger.warn({ err, logId }, 'notify: outcome not recorded')),
  };
}

/**
 * A notify that failed verification: anyone can send these, so they never cost more than a small
 * row, and past the per-source allowance not even that (counted and answered 429). Whatever
 * happens to the row, the answer is 4xx: an unauthenticated request never earns a 5xx.
 */
async function rejectUnauthenticated(
  deps: NotifyDeps,
  n: { kind: NotifyKind; headers: Record<string, string | string[] | undefined>; rawBody: Buffer; sourceIp: string },
  a: { logId: string; code: string; store: (outcome: string, body: string, hdrs: Record<string, string>, extra: { error?: string }) => Promise<unknown> },
): Promise<NotifyAnswer> {
  const { logger } = deps;
  if (!deps.rejectedLimiter.take(n.sourceIp)) {
    logger.debug({ code: a.code, kind: n.kind, sourceIp: n.sourceIp, limited: deps.rejectedLimiter.totals.limited }, 'notify: rejected, over the per-source allowance, not stored');
    return fail(429, 'too many rejected notifies');
  }
  logger.warn({ code: a.code, kind: n.kind, logId: a.logId, sourceIp: n.sourceIp, bytes: n.rawBody.length }, 'notify: rejected before decryption');
  await a.store('rejected', keepText(n.rawBody.subarray(0, REJECTED_BODY_BYTES)), pickHeaders(n.headers, REJECTED_HEADER_CHARS), { error: a.code })
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
