/**
 * One error type for everything the API reports, with stable machine-readable codes.
 * `message` is safe to show to a merchant; `internal` is for logs only.
 * HTTP statuses live in one table (`httpStatusOf`), used by the single error mapper.
 */
export const errorStatus = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  BAD_REQUEST: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  IDEMPOTENCY_IN_PROGRESS: 409,
  DUPLICATE_OUT_TRADE_NO: 409,
  CHECKOUT_NOT_OPEN: 409,
  SPLIT_NOT_ALLOWED: 409,
  SPLIT_MODE_CONFLICT: 409,
  SPLIT_BUDGET_EXCEEDED: 422,
  SPLIT_RATIO_EXCEEDED: 422,
  SPLIT_NOT_AUTHORISED: 422,
  SPLIT_REQUEST_LIMIT: 422,
  UNPROCESSABLE: 422,
  REFUND_NOT_ALLOWED: 409,
  REFUND_AMOUNT_EXCEEDED: 422,
  RETURN_NOT_POSSIBLE: 422,
  CHANNEL_UNAVAILABLE: 502,
  CHANNEL_REJECTED: 502,
  NOTIFY_REJECTED: 400,
  INTERNAL: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly opts: { field?: string; internal?: string; cause?: unknown; details?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'AppError';
  }
  get status(): number {
    return errorStatus[this.code];
  }
}

/**
 * A failure reported by (or on the way to) a payment channel. Kept apart from AppError:
 * the caller decides whether it becomes an API error, a retry or a recorded batch failure.
 */
export class ChannelError extends Error {
  constructor(
    /** The channel's own code (e.g. SYSTEM_ERROR, PARAM_ERROR, NOT_ENOUGH) or NETWORK / TIMEOUT / BAD_SIGNATURE. */
    readonly code: string,
    message: string,
    readonly opts: { retryable: boolean; httpStatus?: number; detail?: unknown; cause?: unknown },
  ) {
    super(message, { cause: opts.cause });
    this.name = 'ChannelError';
  }
  get retryable(): boolean {
    return this.opts.retryable;
  }
}
