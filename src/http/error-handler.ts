import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { AppError, ChannelError } from '../lib/errors';
import type { Logger } from '../lib/logger';

/** The one place where errors become HTTP answers: `{ error: { code, message, field?, request_id } }`. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const requestId = String(res.locals.requestId ?? '');
    let appErr: AppError;
    if (err instanceof AppError) appErr = err;
    else if (err instanceof ZodError) appErr = fromZod(err);
    else if (err instanceof ChannelError)
      appErr = new AppError(err.retryable ? 'CHANNEL_UNAVAILABLE' : 'CHANNEL_REJECTED',
        err.retryable ? 'The payment channel is unavailable, please retry' : `The payment channel refused the request: ${err.code}`,
        { internal: err.message, cause: err });
    else if (isBodyParserError(err))
      appErr = new AppError(err.type === 'entity.too.large' ? 'VALIDATION_FAILED' : 'INVALID_JSON',
        err.type === 'entity.too.large' ? 'Request body too large' : 'Request body is not valid JSON');
    else appErr = new AppError('INTERNAL', 'Internal error', { cause: err });

    if (appErr.status >= 500) logger.error({ err, requestId, path: req.path }, appErr.opts.internal ?? appErr.message);
    else logger.info({ code: appErr.code, requestId, path: req.path }, appErr.message);

    if (res.headersSent) return;
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

export const notFoundHandler: RequestHandler = (_req, _res, next) => {
  next(new AppError('NOT_FOUND', 'No such route'));
};

/** zod reports unknown keys on the parent object: name the first unknown key as the field. */
function issueField(i: ZodError['issues'][number]): string {
  const path = i.code === 'unrecognized_keys' && i.keys.length ? [...i.path, i.keys[0]] : i.path;
  return path.map(String).join('.');
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

function isBodyParserError(err: unknown): err is { type: string } {
  return typeof err === 'object' && err !== null && 'type' in err &&
    ['entity.parse.failed', 'entity.too.large', 'encoding.unsupported', 'charset.unsupported'].includes(String((err as { type: unknown }).type));
}
