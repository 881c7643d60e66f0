import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { AppError, ChannelError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { isDatabaseUnavailable } from '../lib/prisma';
import { replaceControlChars } from '../lib/validation';

/** Seconds a client should wait before retrying a 503 (PostgreSQL down): long enough for a failover. */
export const RETRY_AFTER_SECONDS = 5;

/** The one place where errors become HTTP answers: `{ error: { code, message, field?, request_id } }`. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const requestId = String(res.locals.requestId ?? '');
    const appErr = toAppError(err);

    if (appErr.status >= 500) logger.error({ err, requestId, path: req.path }, appErr.opts.internal ?? appErr.message);
    else logger.info({ code: appErr.code, requestId, path: req.path }, appErr.message);

    if (res.headersSent) return;
    setErrorHeaders(res, appErr);
    res.status(appErr.status).json({
      error: {
        code: appErr.code,
        message: appErr.message,
        ...(appErr.opts.field ? { field: appErr.opts.field } : {}),
        ...(appErr.opts.details !== undefined ? { details: appErr.opts.details } : {}),
        request_id: requestId,
      },
    });
  };
}

/** A browser opening an unknown URL gets a page; API clients (and every /v1 call) keep the JSON error. */
export function browserNotFound(sandbox: boolean): RequestHandler {
  return (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || req.path.startsWith('/v1/') || req.accepts(['json', 'html']) !== 'html') return next();
    res.status(404).render('page-not-found', { sandbox });
  };
}

/** Browsers ask for it on every page: an empty answer, cached, instead of a logged 404. */
export const noFavicon: RequestHandler = (_req, res) => {
  res.status(204).set('Cache-Control', 'public, max-age=86400').end();
};

/** Headers that go with an error answer, JSON or page. */
export function setErrorHeaders(res: { setHeader(name: string, value: string): unknown }, appErr: AppError): void {
  if (appErr.code === 'SERVICE_UNAVAILABLE') res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
}

/** Any thrown value → the AppError that answers it (status mapping only; no side effects). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) return fromZod(err);
  if (err instanceof ChannelError)
    return new AppError(err.retryable ? 'CHANNEL_UNAVAILABLE' : 'CHANNEL_REJECTED',
      err.retryable ? 'The payment channel is unavailable, please retry' : `The payment channel refused the request: ${err.code}`,
      { internal: err.message, cause: err });
  if (isDatabaseUnavailable(err))
    return new AppError('SERVICE_UNAVAILABLE', 'The service is temporarily unavailable, please retry', { internal: 'database unavailable', cause: err });
  const clientErr = clientHttpError(err);
  if (clientErr) return clientErr;
  return new AppError('INTERNAL', 'Internal error', { cause: err });
}

export const notFoundHandler: RequestHandler = (_req, _res, next) => {
  next(new AppError('NOT_FOUND', 'No such route'));
};

/** zod reports unknown keys on the parent object: name the first unknown key as the field. */
function issueField(i: ZodError['issues'][number]): string {
  const path = i.code === 'unrecognized_keys' && i.keys.length ? [...i.path, i.keys[0]] : i.path;
  // A key the client sent can hold anything: keep control characters out of our answers and of stored (jsonb) replays.
  return path.map((p) => replaceControlChars(String(p))).join('.');
}

function fromZod(err: ZodError): AppError {
  const first = err.issues[0];
  const field = first ? issueField(first) || undefined : undefined;
  const message = first ? `${field ? `${field}: ` : ''}${first.message}` : 'Invalid request';
  return new AppError('VALIDATION_FAILED', message, {
    field,
    details: err.issues.map((i) => ({ field: issueField(i), message: i.message })),
  });
}

/**
 * Errors that Express and body-parser raise for bad requests (http-errors: `status` 4xx,
 * `expose: true`), mapped by their own status: a 5 MB body is 413, a compressed body 415,
 * broken JSON or a malformed %-escape in a path 400. Never a 500 for what the client sent.
 */
function clientHttpError(err: unknown): AppError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; expose?: unknown };
  const status = Number(e.status ?? e.statusCode);
  if (!Number.isInteger(status) || status < 400 || status > 499) return null;
  const type = String(e.type ?? '');
  if (status === 413) return new AppError('PAYLOAD_TOO_LARGE', 'Request body too large');
  if (status === 415)
    return new AppError('UNSUPPORTED_MEDIA_TYPE', type === 'charset.unsupported' ? 'Unsupported charset' : 'Unsupported Content-Encoding: send the body uncompressed');
  if (type === 'entity.parse.failed') return new AppError('INVALID_JSON', 'Request body is not valid JSON');
  // Express's router marks an undecodable path parameter as a 400 URIError.
  if (e.expose !== true && !(err instanceof URIError)) return null;
  return new AppError('BAD_REQUEST', 'Malformed request');
}
