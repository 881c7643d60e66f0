import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

/** Query parameters that carry credentials or personal data (OAuth code/state, openid). */
const SECRET_PARAMS = /([?&](?:code|state|openid|token|key|sign)=)[^&#]*/gi;

/** A URL fit for a log line. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[redacted]');
}

/**
 * JSON lines (production: for machines); `pretty` gives one short readable line per event (the
 * sandbox's terminal), written synchronously so nothing is lost at Ctrl-C.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}, opts: { pretty?: boolean } = {}): Logger {
  const options: pino.LoggerOptions = {
    level,
    base,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', '*.apiKey', '*.privateKey'],
      censor: '[redacted]',
    },
  };
  // Asynchronous writes (sonic-boom): lines logged in the same tick go out in one write() instead of
  // one synchronous write each, off the request's path; pino flushes what is pending at exit.
  if (!opts.pretty) return pino(options, pino.destination({ dest: 1, sync: false }));
  return pino(
    options,
    pretty({ sync: true, colorize: process.stderr.isTTY, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,service,req,res,responseTime,reqId', destination: 2 }),
  );
}
