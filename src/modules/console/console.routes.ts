/**
 * /console: server-rendered pages for operators and merchant staff. Sign-in by email + password
 * (argon2id), a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS, path /console),
 * a synchroniser CSRF token in every form (and a double-submit token on the sign-in form, against
 * login CSRF), sign-in attempts limited per address and per email in Redis.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { randomBytes } from 'node:crypto';
import type { AppDeps } from '../../app.types';
import { setErrorHeaders, toAppError } from '../../http/error-handler';
import { beijingTime } from '../../lib/beijing';
import { AppError } from '../../lib/errors';
import { fenToYuan } from '../../lib/money';
import { parseCookies } from '../../lib/signed';
import { checkoutTimeline, overview, receiverTotals, searchCheckouts, type Scope } from './console.queries';
import { checkoutIdSchema } from '../checkout/checkout.schemas';
import { actionKeySchema } from './console.actions';
import { mountCheckoutActions } from './console.checkout-actions';
import { checkCredentials, createSession, csrfMatches, destroySession, loadSession, SESSION_TTL_MS, type ConsoleSessionRef } from './console.users';

export const SESSION_COOKIE = 'gw_console';
const LOGIN_COOKIE = 'gw_console_login';
const LOGIN_WINDOW_S = 15 * 60;
/** Per email (guessing one account) and per address (spraying many): an office behind one NAT gets more. */
const LOGIN_MAX_PER_EMAIL = 10;
const LOGIN_MAX_PER_IP = 100;


export const scopeOf = (s: ConsoleSessionRef): Scope => ({ merchantId: s.user.role === 'operator' ? null : s.user.merchantId });
const session = (res: Response) => res.locals.console as ConsoleSessionRef;

/** Renders a console page with what every console view needs (the signed-in user, the CSRF token). */
export const consoleView = (deps: AppDeps) => (res: Response, name: string, locals: Record<string, unknown> = {}) =>
  res.render(`console/${name}`, { sandbox: deps.config.sandbox, yuan: fenToYuan, bj: beijingTime, me: res.locals.console?.user, csrf: res.locals.console?.csrfToken, ...locals });

/**
 * Console errors are pages, never JSON, with the same status mapping as the JSON errors (toAppError):
 * a body too large or with too many fields is a 413, an undecodable path a 400, PostgreSQL down a 503;
 * only the unexpected is a 500.
 */
export const consoleErrorPage = (deps: AppDeps, what: string, locals: Record<string, unknown> = {}) => {
  const view = consoleView(deps);
  return (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const appErr = toAppError(err);
    if (appErr.status >= 500) deps.logger.error({ err }, `${what} failed`);
    setErrorHeaders(res, appErr);
    res.status(appErr.status);
    view(res, 'error', { ...locals, title: '出错了 Error', message: err instanceof AppError || appErr.status < 500 ? appErr.message : '服务暂时不可用，请稍后再试 · Something went wrong, please retry' });
  };
};

export function consoleRouter(deps: AppDeps): Router {
  const r = express.Router();
  // Secure wherever the gateway is served over HTTPS (production always is: WeChat requires it).
  const secure = deps.config.PUBLIC_BASE_URL.startsWith('https:');
  const cookieOpts = { httpOnly: true, sameSite: 'strict' as const, secure, path: '/console' };
  const view = consoleView(deps);

  r.use('/console', express.urlencoded({ extended: false, limit: '20kb', parameterLimit: 50 }));
  r.use('/console', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  r.get('/console/login', (req, res) => {
    const token = randomBytes(18).toString('base64url');
    res.cookie(LOGIN_COOKIE, token, { ...cookieOpts, maxAge: 30 * 60_000 });
    view(res, 'login', { title: '登录 Sign in', loginToken: token, email: '', error: null });
  });

  r.post('/console/login', async (req, res) => {
    const email = String(req.body?.email ?? '').slice(0, 254);
    const password = String(req.body?.password ?? '').slice(0, 1024);
    const fresh = randomBytes(18).toString('base64url');
    const again = (status: number, error: string) => {
      res.cookie(LOGIN_COOKIE, fresh, { ...cookieOpts, maxAge: 30 * 60_000 });
      res.status(status);
      view(res, 'login', { title: '登录 Sign in', loginToken: fresh, email, error });
    };
    const expected = parseCookies(req.get('cookie'))[LOGIN_COOKIE];
    if (!expected || !csrfMatches(expected, req.body?._login)) return again(403, '页面已过期，请重新登录 · The form expired, please sign in again');
    if (await tooManyAttempts(deps, req.ip ?? '', email)) return again(429, '尝试次数过多，请 15 分钟后再试 · Too many attempts, try again in 15 minutes');
    const user = await checkCredentials(deps.prisma, email, password);
    if (!user) return again(401, '邮箱或密码错误 · Wrong email or password');
    const { token } = await createSession(deps.prisma, user.id, deps.now());
    res.clearCookie(LOGIN_COOKIE, cookieOpts);
    res.cookie(SESSION_COOKIE, token, { ...cookieOpts, maxAge: SESSION_TTL_MS });
    deps.logger.info({ userId: user.id, role: user.role }, 'console sign-in');
    res.redirect(303, '/console');
  });

  // Everything below needs a session; every POST needs the session's CSRF token.
  r.use('/console', async (req, res, next) => {
    const s = await loadSession(deps.prisma, parseCookies(req.get('cookie'))[SESSION_COOKIE], deps.now());
    if (!s) return res.redirect(303, '/console/login');
    res.locals.console = s;
    if (req.method === 'POST' && !csrfMatches(s.csrfToken, req.body?._csrf)) throw new AppError('FORBIDDEN', '表单已失效，请刷新页面后重试 · The form is stale: reload the page and try again');
    next();
  });

  r.post('/console/logout', async (_req, res) => {
    await destroySession(deps.prisma, session(res).sessionId);
    res.clearCookie(SESSION_COOKIE, cookieOpts);
    res.redirect(303, '/console/login');
  });

  r.get('/console', async (_req, res) => {
    const o = await overview(deps.prisma, scopeOf(session(res)), deps.now());
    view(res, 'overview', { title: '概览 Overview', o, now: deps.now() });
  });

  r.get('/console/checkouts', async (req, res) => {
    const q = (k: string) => (typeof req.query[k] === 'string' ? (req.query[k] as string).slice(0, 100) : '');
    const search = { q: q('q'), status: q('status'), amount: q('amount'), from: q('from'), to: q('to') };
    const rows = await searchCheckouts(deps.prisma, scopeOf(session(res)), search);
    view(res, 'checkouts', { title: '订单 Checkouts', rows, search });
  });

  r.get('/console/checkouts/:id', async (req, res) => {
    const found = checkoutIdSchema.safeParse(req.params.id).success ? await checkoutTimeline(deps.prisma, scopeOf(session(res)), req.params.id!) : null;
    if (!found) throw new AppError('NOT_FOUND', '没有这个订单 · No such checkout');
    // ?done=<actionKey>: the outcome of the action just confirmed (only an action on this checkout).
    const key = actionKeySchema.safeParse(req.query.done);
    const done = key.success ? found.actions.find((a) => a.actionKey === key.data) ?? null : null;
    view(res, 'checkout', { title: `订单 ${found.checkout.outTradeNo}`, c: found.checkout, timeline: found.timeline, done });
  });

  mountCheckoutActions(r, deps, { prisma: deps.prisma, render: view, session, scope: (res) => scopeOf(session(res)) });

  r.get('/console/receivers', async (req, res) => {
    const byDay = req.query.by === 'day';
    const rows = await receiverTotals(deps.prisma, scopeOf(session(res)), { byDay });
    if (req.query.format === 'csv') {
      res.type('text/csv; charset=utf-8').attachment(byDay ? 'receivers-by-day.csv' : 'receivers.csv');
      const head = ['day', 'account', 'type', 'succeeded_fen', 'in_flight_fen', 'closed_fen', 'receivers'];
      const cell = (v: string | number) => (/[",\r\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : /^[=+\-@]/.test(String(v)) ? `'${v}` : String(v));
      res.send('\uFEFF' + [head.join(','), ...rows.map((x) => [x.day, x.account, x.type, x.succeededFen, x.inFlightFen, x.closedFen, x.receivers].map(cell).join(','))].join('\r\n') + '\r\n');
      return;
    }
    view(res, 'receivers', { title: '分账接收方 Receivers', rows, byDay });
  });

  r.use('/console', consoleErrorPage(deps, 'console page'));
  return r;
}

/** Counts an attempt per address and per email; true once either passed the limit in the window. */
async function tooManyAttempts(deps: AppDeps, ip: string, email: string): Promise<boolean> {
  try {
    const limits: Array<[string, number]> = [[`console:login:ip:${ip}`, LOGIN_MAX_PER_IP], [`console:login:email:${email.trim().toLowerCase()}`, LOGIN_MAX_PER_EMAIL]];
    const m = deps.redis.multi();
    for (const [k] of limits) m.incr(k).expire(k, LOGIN_WINDOW_S, 'NX');
    const out = (await m.exec()) ?? [];
    return limits.some(([, max], i) => Number(out[i * 2]?.[1]) > max);
  } catch (err) {
    // Redis down: refuse rather than allow unlimited guessing.
    deps.logger.warn({ err }, 'console sign-in limiter unavailable');
    return true;
  }
}
