import { pooledRandomBytes } from '../lib/random';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import type { Config } from '../config/config';

/** Views put `nonce="<%= locals.cspNonce %>"` on every inline <script> and <style>. */
export const CSP_NONCE_LOCAL = 'cspNonce';

/**
 * Security headers on every response (npm `helmet`): a Content-Security-Policy that runs no inline
 * script or style without this response's nonce, no framing (frame-ancestors 'none' + X-Frame-Options
 * DENY), nosniff, and Referrer-Policy strict-origin-when-cross-origin (the H5 hop page relaxes it to
 * `origin` for itself: WeChat checks that Referer). In sandbox only, the pages may also load and call
 * the simulator (its WeixinJSBridge shim, which styles its sheet with style attributes) and post forms
 * that end up there (the demo shop's redirect to the simulator's OAuth page).
 */
export function securityHeaders(config: Pick<Config, 'sandbox' | 'WECHATPAY_BASE_URL' | 'PUBLIC_BASE_URL'>): RequestHandler[] {
  const https = config.PUBLIC_BASE_URL.startsWith('https:');
  const sim = config.sandbox ? [new URL(config.WECHATPAY_BASE_URL).origin] : [];
  const nonce = (_req: unknown, res: unknown) => `'nonce-${String((res as { locals: Record<string, unknown> }).locals[CSP_NONCE_LOCAL])}'`;
  const setNonce: RequestHandler = (_req, res, next) => {
    res.locals[CSP_NONCE_LOCAL] = pooledRandomBytes(16).toString('base64');
    next();
  };
  return [
    setNonce,
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          baseUri: ["'none'"],
          objectSrc: ["'none'"],
          frameAncestors: ["'none'"],
          frameSrc: ["'none'"],
          formAction: ["'self'", ...sim],
          scriptSrc: ["'self'", nonce, ...sim],
          styleSrc: ["'self'", nonce],
          ...(config.sandbox ? { styleSrcAttr: ["'unsafe-inline'"] } : {}),
          imgSrc: ["'self'", 'data:'],
          connectSrc: ["'self'", ...sim],
          fontSrc: ["'self'"],
          // Only where we are served over HTTPS: the sandbox on http://127.0.0.1 would break its own requests.
          ...(https ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
      strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: false } : false,
      xContentTypeOptions: true,
    }),
  ];
}
