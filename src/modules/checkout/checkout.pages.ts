import { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import { setErrorHeaders, toAppError } from '../../http/error-handler';
import QRCode from 'qrcode';
import type { AppDeps } from '../../app.types';
import { beijingShopperTime } from '../../lib/beijing';
import { AppError, ChannelError } from '../../lib/errors';
import { fenToYuan } from '../../lib/money';
import { makeOpenidCookie, parseCookies, readOpenidCookie } from '../../lib/signed';
import { syncCheckoutWithChannel } from '../payments/payment.sync';
import { checkoutIdSchema } from './checkout.schemas';
import { checkoutUrl, effectiveStatus, merchantReturnUrl } from './checkout.service';
import { completeOAuth, decideCheckoutPage, resultUrl, type PageCheckout, type PageDecision } from './checkout.page';

const OPENID_COOKIE = 'wxoid';
/** Binds an OAuth round trip to the browser that started it. */
const OAUTH_NONCE_COOKIE = 'wxos';

const UNSUPPORTED_COPY: Record<string, { title: string; message: string; hint: string }> = {
  wecom: {
    title: '企业微信暂不支持此支付方式',
    message: '企业微信内无法调起微信支付。',
    hint: '请复制链接，在微信中打开，或使用手机浏览器打开后支付。',
  },
  miniprogram: {
    title: '小程序内网页暂不支持微信支付',
    message: '微信不允许在小程序的网页中调起支付。',
    hint: '请返回小程序使用小程序内的支付，或复制链接到微信/手机浏览器中打开。',
  },
};

/** Shopper-facing pages. Every route answers JSON instead when the client asks for it. */
export function checkoutPagesRouter(deps: AppDeps): Router {
  const r = Router();
  const base = (title: string) => ({ title, sandbox: deps.config.sandbox });
  const simBase = deps.config.sandbox ? deps.config.WECHATPAY_BASE_URL : null;
  const secureCookies = deps.config.PUBLIC_BASE_URL.startsWith('https:');

  const view = (c: PageCheckout) => {
    return {
      id: c.id,
      description: c.description,
      amountYuan: fenToYuan(c.amountFen),
      amountFen: c.amountFen,
      status: effectiveStatus(c, deps.now()),
      merchantName: c.merchant.name,
      expiresAt: c.expiresAt.toISOString(),
      expiresText: beijingShopperTime(c.expiresAt),
      returnUrl: merchantReturnUrl(c),
    };
  };
  const wantsJson = (req: Request) => req.accepts(['html', 'json']) === 'json';
  const parseId = (req: Request) => {
    const p = checkoutIdSchema.safeParse(req.params.id);
    return p.success ? p.data : null;
  };
  const notFound = (req: Request, res: Response) =>
    wantsJson(req)
      ? res.status(404).json({ error: { code: 'NOT_FOUND', message: 'No such checkout' } })
      : res.status(404).render('checkout/not-found', { base: base('订单不存在') });

  r.get('/checkout/:id', async (req, res) => {
    const id = parseId(req);
    if (!id) return notFound(req, res);
    const cookie = parseCookies(req.get('cookie'))[OPENID_COOKIE];
    const visitor = {
      userAgent: req.get('user-agent'),
      ip: clientIp(req),
      openid: null,
      openidFor: (appid: string) => readOpenidCookie(deps.config.STATE_SECRET, appid, cookie),
    };
    let d: PageDecision;
    try {
      d = await decideCheckoutPage(deps, id, visitor);
    } catch (err) {
      if (wantsJson(req) || !(err instanceof ChannelError || err instanceof AppError)) throw err;
      // Shoppers get a page with a retry, never a JSON error body.
      deps.logger.warn({ err, checkoutId: id }, 'checkout page: could not prepare the payment');
      const channelDown = err instanceof ChannelError;
      return res.status(channelDown ? 502 : (err as AppError).status).render('checkout/error', {
        base: base('支付暂不可用'),
        message: channelDown ? '支付通道暂时不可用，请稍后重试。' : '支付暂时无法完成，请稍后重试。',
        retryUrl: req.originalUrl,
      });
    }
    res.setHeader('Cache-Control', 'no-store');
    if (d.kind === 'oauth')
      res.cookie(OAUTH_NONCE_COOKIE, d.browserNonce, { httpOnly: true, sameSite: 'lax', secure: secureCookies, maxAge: 10 * 60_000, path: '/checkout' });
    if (wantsJson(req)) return res.status(d.kind === 'not_found' ? 404 : 200).json(decisionJson(d));
    if (d.kind === 'not_found') return notFound(req, res);
    const checkout = view(d.checkout);
    switch (d.kind) {
      case 'status':
        return res.render(`checkout/${d.status}`, { base: base(d.status === 'paid' ? '已支付' : '订单已失效'), checkout, returnUrl: checkout.returnUrl });
      case 'oauth':
        return res.redirect(302, d.redirect);
      case 'unsupported': {
        const copy = UNSUPPORTED_COPY[d.env] ?? UNSUPPORTED_COPY.wecom!;
        return res.render('checkout/unsupported', { base: base(copy.title), checkout, env: d.env, ...copy, checkoutUrl: checkoutUrl(deps.config, id) });
      }
      case 'jsapi':
        return res.render('checkout/jsapi', {
          base: base('微信支付'), checkout, jsapiParams: d.jsapiParams, resultUrl: resultUrl(deps.config, id),
          bridgeShimUrl: simBase ? new URL('/_sim/jsbridge.js', simBase).toString() : undefined,
        });
      case 'h5':
        // WeChat refuses h5_url without a Referer from our H5 domain: this page alone sends its origin.
        res.setHeader('Referrer-Policy', 'origin');
        return res.render('checkout/h5-hop', { base: base('前往微信支付'), checkout, h5Url: d.h5Url, resultUrl: resultUrl(deps.config, id) });
      case 'native':
        return res.render('checkout/native', {
          base: base('微信扫码支付'), checkout, codeUrl: d.codeUrl,
          qrSvg: await QRCode.toString(d.codeUrl, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' }),
          // `waiting=1`: the QR page's poll means the shopper is waiting, as on the result page.
          statusUrl: `/checkout/${id}/status?waiting=1`, resultUrl: resultUrl(deps.config, id),
          sandboxScanUrl: simBase ? `${new URL('/_sim/scan', simBase).toString()}?code_url=${encodeURIComponent(d.codeUrl)}` : undefined,
        });
    }
  });

  r.get('/checkout/:id/oauth/callback', async (req, res) => {
    const id = parseId(req);
    if (!id) return notFound(req, res);
    try {
      const browserNonce = parseCookies(req.get('cookie'))[OAUTH_NONCE_COOKIE];
      const { openid, appid } = await completeOAuth(deps, id, { code: str(req.query.code), state: str(req.query.state), browserNonce });
      res.clearCookie(OAUTH_NONCE_COOKIE, { path: '/checkout' });
      res.cookie(OPENID_COOKIE, makeOpenidCookie(deps.config.STATE_SECRET, appid, openid), {
        httpOnly: true, sameSite: 'lax', secure: secureCookies, maxAge: 24 * 3600_000, path: '/checkout',
      });
      res.redirect(302, `/checkout/${id}`);
    } catch (err) {
      if (wantsJson(req) || !(err instanceof AppError || err instanceof ChannelError)) throw err;
      res.status(400).render('checkout/error', { base: base('授权失败'), message: '微信授权失败，请重新打开支付链接。', retryUrl: `/checkout/${id}` });
    }
  });

  r.get('/checkout/:id/result', async (req, res) => {
    const id = parseId(req);
    if (!id) return notFound(req, res);
    const c = await deps.prisma.checkout.findUnique({ where: { id }, include: { merchant: { select: { name: true } } } });
    if (!c) return notFound(req, res);
    await markWaiting(id, c.returnedAt);
    if (wantsJson(req)) return res.json(await statusJson(id));
    res.setHeader('Cache-Control', 'no-store');
    res.render('checkout/result', { base: base('支付结果'), checkout: view(c), statusUrl: `/checkout/${id}/status`, returnUrl: merchantReturnUrl(c), checkoutUrl: `/checkout/${id}` });
  });

  /** Polled by the QR and result pages. Asks the channel itself when a notify seems lost. */
  r.get('/checkout/:id/status', async (req, res) => {
    const id = parseId(req);
    if (!id) return notFound(req, res);
    if (req.query.waiting === '1') {
      const c = await deps.prisma.checkout.findUnique({ where: { id }, select: { returnedAt: true } });
      if (c) await markWaiting(id, c.returnedAt);
    }
    const s = await statusJson(id);
    if (!s) return notFound(req, res);
    res.setHeader('Cache-Control', 'no-store');
    res.json(s);
  });

  /** The shopper is waiting for the result (result page, or polling the QR page) from now on. */
  async function markWaiting(id: string, returnedAt: Date | null) {
    if (!returnedAt) await deps.prisma.checkout.updateMany({ where: { id, returnedAt: null }, data: { returnedAt: deps.now() } });
  }

  async function statusJson(id: string) {
    let c = await deps.prisma.checkout.findUnique({ where: { id } });
    if (!c) return null;
    const now = deps.now();
    const waited = c.returnedAt && now.getTime() - c.returnedAt.getTime() >= deps.config.PAYMENT_QUERY_AFTER_SECONDS * 1000;
    if (c.status === 'open' && waited) {
      // One channel query per checkout per interval across all instances, however many tabs poll:
      // every 3 s at first, slowing to once a minute for a QR page left open (a tenth of the wait).
      const waitedMs = now.getTime() - c.returnedAt!.getTime();
      const everyMs = Math.min(60_000, Math.max(3_000, Math.floor(waitedMs / 10)));
      // Redis down: skip the query this time rather than fail the shopper's poll.
      const first = await deps.redis.set(`checkout:sync:${id}`, '1', 'PX', everyMs, 'NX').catch(() => null);
      if (first) {
        try {
          if (await syncCheckoutWithChannel(deps, id)) c = await deps.prisma.checkout.findUniqueOrThrow({ where: { id } });
        } catch (err) {
          deps.logger.warn({ err, checkoutId: id }, 'status: channel query failed');
        }
      }
    }
    return { id: c.id, status: effectiveStatus(c, now), paid_at: c.paidAt?.toISOString() ?? null, return_url: c.returnUrl };
  }

  /**
   * A browser on a shopper page never gets a JSON error body: whatever failed (PostgreSQL down → 503
   * with Retry-After), it sees the error page with the mapped status. JSON clients fall through to the
   * one error mapper. Mounted on /checkout only, so API errors never reach it.
   */
  r.use('/checkout', ((err, req, res, next) => {
    if (res.headersSent || wantsJson(req)) return next(err);
    const appErr = toAppError(err);
    if (appErr.status >= 500) deps.logger.error({ err, requestId: res.locals.requestId, path: req.path }, appErr.opts.internal ?? appErr.message);
    setErrorHeaders(res, appErr);
    res.setHeader('Cache-Control', 'no-store');
    res.status(appErr.status).render('checkout/error', {
      base: base('支付暂不可用'),
      message: appErr.status >= 500 ? '服务暂时不可用，请稍后重试。' : '请求无效，请重新打开支付链接。',
      retryUrl: appErr.status >= 500 ? req.originalUrl : undefined,
    });
  }) as ErrorRequestHandler);

  return r;
}

/** The shopper's IP as WeChat wants it (payer_client_ip): IPv4-mapped IPv6 back to plain IPv4. */
function clientIp(req: Request): string {
  const ip = req.ip ?? req.socket.remoteAddress ?? '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function decisionJson(d: PageDecision): Record<string, unknown> {
  switch (d.kind) {
    case 'not_found':
      return { error: { code: 'NOT_FOUND', message: 'No such checkout' } };
    case 'status':
      return { id: d.checkout.id, status: d.status, channel: null };
    case 'oauth':
      return { id: d.checkout.id, status: 'open', channel: 'jsapi', redirect: d.redirect };
    case 'jsapi':
      return { id: d.checkout.id, status: 'open', channel: 'jsapi', jsapi_params: d.jsapiParams };
    case 'h5':
      return { id: d.checkout.id, status: 'open', channel: 'h5', h5_url: d.h5Url };
    case 'native':
      return { id: d.checkout.id, status: 'open', channel: 'native', code_url: d.codeUrl };
    case 'unsupported':
      return { id: d.checkout.id, status: 'open', channel: 'unsupported', environment: d.env };
  }
}
