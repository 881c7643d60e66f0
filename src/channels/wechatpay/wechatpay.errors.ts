import { ChannelError } from '../../lib/errors';

/**
 * The one place where WeChat Pay failures become `ChannelError`s.
 * WeChat answers errors as HTTP status + `{code, message, detail?}`
 * (SKILLS 排障手册.md; FACTS §5 "Error codes").
 *
 * `detail` of every mapped error: `{ httpStatus, channelCode, channelMessage, requestId, verified, retryAfterMs? }`.
 * `retryAfterMs` is a hint for schedulers (split worker): present on every retryable error.
 */

/** "Paid less than ~1 min ago / not settled yet": retry the same request later (FACTS §5, SKILLS 分账常见问题.md). */
const NOT_READY_PATTERN = /订单处理中/;
/**
 * Extended settlement cycle as a penalty: retrying will not help until the cycle is reached (FACTS §5).
 * WeChat's full text is "订单处理中，请在到达结算周期之后再请求分账": it ALSO contains 订单处理中, so
 * this test must come first.
 */
const SETTLEMENT_CYCLE_PATTERN = /结算周期/;
/** Per-order split rate ("1秒1次"): wechatpay-go maps "对同笔订单分账频率过高" to 429 RATELIMIT_EXCEED. */
const PER_ORDER_RATE_PATTERN = /同笔订单分账频率过高/;

/**
 * The paid-order refusal of close / re-order: `ORDER_PAID` in the v3 docs (排障手册 "订单已支付"),
 * `ORDERPAID` in v2 and older v3 tables. Both become ORDER_PAID; the channel's own code stays in detail.
 */
const ORDER_PAID_CODES = new Set(['ORDER_PAID', 'ORDERPAID']);

const RETRY_AFTER_MS = {
  NOT_READY: 60_000, // WeChat wants ≥ 1 min after payment
  FREQUENCY_LIMITED: 1_000,
  SERVER: 5_000,
  NETWORK: 2_000,
} as const;

/** Codes WeChat documents as "retry with the same parameters". */
const RETRYABLE_CODES = new Set(['SYSTEM_ERROR', 'FREQUENCY_LIMITED', 'RATELIMIT_EXCEED']);

export interface WechatPayErrorBody {
  code?: string;
  message?: string;
  detail?: unknown;
}

function readErrorBody(body: unknown): WechatPayErrorBody {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    return {
      code: typeof b.code === 'string' ? b.code : undefined,
      message: typeof b.message === 'string' ? b.message : undefined,
      detail: b.detail,
    };
  }
  return {};
}

/**
 * Maps a non-2xx answer. `body` is the parsed JSON (or undefined when it was not JSON).
 * `verified` says whether the answer carried a valid WeChat Pay signature (see client for why
 * unsigned error answers are still mapped).
 */
export function mapHttpError(
  httpStatus: number,
  body: unknown,
  meta: { requestId?: string; verified: boolean } = { verified: false },
): ChannelError {
  const { code: channelCode, message: channelMessage, detail: channelDetail } = readErrorBody(body);
  const message = channelMessage ?? `WeChat Pay answered HTTP ${httpStatus}`;
  const base = { httpStatus, channelCode, channelMessage, channelDetail, requestId: meta.requestId, verified: meta.verified };

  if (channelMessage && SETTLEMENT_CYCLE_PATTERN.test(channelMessage)) {
    return new ChannelError('SETTLEMENT_CYCLE_NOT_REACHED', message, { retryable: false, httpStatus, detail: base });
  }
  if (channelMessage && NOT_READY_PATTERN.test(channelMessage)) {
    return new ChannelError('NOT_READY', message, {
      retryable: true,
      httpStatus,
      detail: { ...base, retryAfterMs: RETRY_AFTER_MS.NOT_READY },
    });
  }
  if (channelCode !== undefined && ORDER_PAID_CODES.has(channelCode)) {
    return new ChannelError('ORDER_PAID', message, { retryable: false, httpStatus, detail: base });
  }
  if (channelCode === 'RATELIMIT_EXCEED' || (channelMessage && PER_ORDER_RATE_PATTERN.test(channelMessage))) {
    // Never a failed batch: the same out_order_no is sent again after the order's second has passed.
    return new ChannelError('RATELIMIT_EXCEED', message, {
      retryable: true,
      httpStatus,
      detail: { ...base, retryAfterMs: RETRY_AFTER_MS.FREQUENCY_LIMITED },
    });
  }

  const code = channelCode ?? `HTTP_${httpStatus}`;
  if (httpStatus === 429 || channelCode === 'FREQUENCY_LIMITED') {
    return new ChannelError(channelCode ?? 'FREQUENCY_LIMITED', message, {
      retryable: true,
      httpStatus,
      detail: { ...base, retryAfterMs: RETRY_AFTER_MS.FREQUENCY_LIMITED },
    });
  }
  if (httpStatus >= 500 || httpStatus === 408 || (channelCode !== undefined && RETRYABLE_CODES.has(channelCode))) {
    return new ChannelError(code, message, {
      retryable: true,
      httpStatus,
      detail: { ...base, retryAfterMs: RETRY_AFTER_MS.SERVER },
    });
  }
  // PARAM_ERROR, INVALID_REQUEST, SIGN_ERROR, NOT_ENOUGH, NO_AUTH, RESOURCE_NOT_EXISTS, ORDER_NOT_EXIST,
  // RULE_LIMIT, ... and any unknown 4xx: the same request will fail again.
  return new ChannelError(code, message, { retryable: false, httpStatus, detail: base });
}

/** Connection refused/reset, DNS, TLS...: nothing reached (or came back from) WeChat. */
export function networkError(cause: unknown, what: string): ChannelError {
  return new ChannelError('NETWORK', `network error calling WeChat Pay ${what}`, {
    retryable: true,
    cause,
    detail: { retryAfterMs: RETRY_AFTER_MS.NETWORK },
  });
}

/** Outcome unknown: callers must re-send with the same idempotency key (out_trade_no / out_order_no) or query. */
export function timeoutError(timeoutMs: number, what: string, cause?: unknown): ChannelError {
  return new ChannelError('TIMEOUT', `WeChat Pay ${what} did not answer within ${timeoutMs} ms`, {
    retryable: true,
    cause,
    detail: { retryAfterMs: RETRY_AFTER_MS.NETWORK },
  });
}

/**
 * A response whose WeChat Pay signature is missing/invalid/stale/from an unknown key.
 * retryable:false — it means something between us and WeChat is wrong (tampering proxy, a platform
 * key we were never given, clock skew ≥ 5 min). Blind retries cannot fix that, would keep hammering
 * WeChat with a request whose effect is unknown, and would hide the alarm. The caller must treat
 * the outcome as UNKNOWN and reconcile by query (all our writes use idempotency keys) once fixed.
 */
export function badResponseSignature(reason: string, message: string, meta: { httpStatus: number; requestId?: string }): ChannelError {
  return new ChannelError('BAD_RESPONSE_SIGNATURE', message, {
    retryable: false,
    httpStatus: meta.httpStatus,
    detail: { reason, requestId: meta.requestId, outcomeUnknown: true },
  });
}

/**
 * A verified answer that does not have the shape we depend on. On a 2xx the channel DID act and we
 * cannot tell the result: outcomeUnknown, so money paths query or re-send the same idempotency key
 * instead of treating it as a refusal.
 */
export function badResponse(message: string, meta: { httpStatus: number; requestId?: string; issues?: unknown }): ChannelError {
  const outcomeUnknown = meta.httpStatus >= 200 && meta.httpStatus < 300;
  return new ChannelError('BAD_RESPONSE', message, { retryable: false, httpStatus: meta.httpStatus, detail: { ...meta, outcomeUnknown } });
}

/** Input rejected before anything is sent (a programming error in the caller). */
export function invalidInput(message: string, detail?: unknown): ChannelError {
  return new ChannelError('INVALID_INPUT', message, { retryable: false, detail });
}

/** The scheduler hint carried by retryable errors (ms), or undefined. */
export function retryAfterMsOf(err: unknown): number | undefined {
  if (!(err instanceof ChannelError) || !err.retryable) return undefined;
  const d = err.opts.detail as { retryAfterMs?: unknown } | undefined;
  return typeof d?.retryAfterMs === 'number' ? d.retryAfterMs : undefined;
}

/** True when WeChat says the object does not exist (query → null). */
export function isNotFound(err: unknown): boolean {
  return (
    err instanceof ChannelError &&
    err.opts.httpStatus === 404 &&
    (err.code === 'ORDER_NOT_EXIST' || err.code === 'RESOURCE_NOT_EXISTS' || err.code === 'NOT_FOUND')
  );
}
